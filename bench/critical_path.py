"""The critical path of ``pulumi up`` from the program's dependency graph, against Azure's floor.

Runs the real program for a stack under the mock engine (``preview.engine``), which records each
resource's dependencies and parent, and weighs each resource with a documented creation time
(``MINUTES``). Pulumi creates a resource once everything it depends on exists, so the time of a
first ``pulumi up`` is the longest path through that graph (resources are created in parallel
otherwise). Two figures:

- **path**: every recorded dependency counts (inputs, ``depends_on``, a custom parent).
- **floor**: what Azure itself imposes. A resource waits only for the values it takes as inputs,
  its custom parent, and the orderings Azure requires (``AZURE_ORDERINGS``: one deployment at a
  time per online endpoint, one update at a time per cache, a role assignment before its use).
  Every other ``depends_on`` is overhead the program chose.

The program should stay within ``TOLERANCE`` (10 %) of the floor::

    .venv/bin/python -m bench.critical_path dev prod          # table, exit 1 if over tolerance
    .venv/bin/python -m bench.critical_path prod --json out.json --show-edges

The figures are only as good as ``MINUTES`` (typical creation times from the sources noted
there); the ratio path/floor is what the tool guards.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from preview import engine  # noqa: E402

TOLERANCE = 0.10

# Typical creation times in minutes. Sources: ../shared/DESIGN.md ("Redis and AKS take 10-20
# minutes to create"; role assignments propagate in up to 10 minutes, awaited by the program's
# own waits where it needs them), issue 14 (online deployments and the cache on the prod path),
# and the Azure quickstarts' "takes a few minutes" for the rest. Unknown custom types: DEFAULT.
MINUTES: dict[str, float] = {
    "azure-native:resources:ResourceGroup": 0.2,
    "azure-native:redis:Redis": 15.0,
    "azure-native:redis:AccessPolicyAssignment": 1.5,
    "azure-native:redisenterprise:RedisEnterprise": 12.0,
    "azure-native:redisenterprise:Database": 2.0,
    "azure-native:redisenterprise:AccessPolicyAssignment": 1.5,
    "azure-native:containerservice:ManagedCluster": 10.0,
    "azure-native:containerservice:AgentPool": 5.0,
    "azure-native:machinelearningservices:Workspace": 2.0,
    "azure-native:machinelearningservices:OnlineEndpoint": 2.0,
    "azure-native:machinelearningservices:OnlineDeployment": 10.0,
    "azure-native:machinelearningservices:Compute": 1.0,
    "azure-native:machinelearningservices:BatchEndpoint": 1.0,
    "azure-native:machinelearningservices:BatchDeployment": 3.0,
    "azure-native:keyvault:Vault": 1.0,
    "azure-native:storage:StorageAccount": 0.5,
    "azure-native:containerregistry:Registry": 1.0,
    "azure-native:operationalinsights:Workspace": 1.0,
    "azure-native:applicationinsights:Component": 0.5,
    "azure-native:web:AppServicePlan": 1.0,
    "azure-native:web:WebApp": 1.5,
    "azure-native:servicebus:Namespace": 2.0,
    "azure-native:iothub:IotHubResource": 4.0,
    "azure-native:containerinstance:ContainerGroup": 2.0,
    "docker:index/image:Image": 4.0,  # build and push
    "kubernetes:apps/v1:Deployment": 2.0,  # rollout until the pods are ready
    "kubernetes:core/v1:Service": 1.0,  # a LoadBalancer gets its public IP
}
DEFAULT = 0.2

# Orderings Azure imposes beyond the inputs: (dependent type, dependency type) -> why.
_POLICY = (
    "azure-native:redis:AccessPolicyAssignment",
    "azure-native:redisenterprise:AccessPolicyAssignment",
)
AZURE_ORDERINGS: dict[tuple[str, str], str] = {
    (
        "azure-native:machinelearningservices:OnlineDeployment",
        "azure-native:machinelearningservices:OnlineDeployment",
    ): "one deployment at a time per endpoint (Azure/azure-sdk-for-net#36961)",
    (
        "kubernetes:apps/v1:Deployment",
        "azure-native:containerservice:AgentPool",
    ): "pods scheduled only on that pool (the system pool is tainted CriticalAddonsOnly, "
    "https://learn.microsoft.com/azure/aks/use-system-pools) need its nodes before "
    "pulumi-kubernetes' rollout await can succeed",
    **{
        (a, b): "one update at a time per cache (Azure/bicep-types-az#1760)"
        for a in _POLICY
        for b in _POLICY
    },
}
# What a resource uses must exist: a grant before its use (the waits for propagation are resources
# of their own), uploaded bytes before the asset that names them, a service account before the
# pods that run as it.
REQUIRED_BEFORE_USE = (
    "azure-native:authorization:RoleAssignment",
    "azure-native:storage:Blob",
    "kubernetes:core/v1:ServiceAccount",
)
# Azure serialises these on the same parent resource whether the program chains them or not:
# type -> the input naming that parent.
SERIALISED_BY_AZURE = {
    "azure-native:machinelearningservices:OnlineDeployment": "endpointName",
    "azure-native:redis:AccessPolicyAssignment": "cacheName",
    "azure-native:redisenterprise:AccessPolicyAssignment": "clusterName",
}


def minutes(type_: str) -> float:
    return MINUTES.get(type_, DEFAULT)


def _is_azure_ordering(dependent: str, dependency: str) -> bool:
    return (dependent, dependency) in AZURE_ORDERINGS or dependency in REQUIRED_BEFORE_USE


@dataclass
class Graph:
    """Custom resources with their edges: ``all`` as recorded, ``floor`` as Azure imposes."""

    types: dict[str, str] = field(default_factory=dict)
    all: dict[str, set[str]] = field(default_factory=dict)
    floor: dict[str, set[str]] = field(default_factory=dict)


class _RecordingMonitor(engine._Monitor):  # pyright: ignore[reportPrivateUsage]
    """The engine's monitor, also keeping which dependencies come from inputs."""

    property_dependencies: dict[str, set[str]]

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        response = super().RegisterResource(request)
        deps = {u for prop in request.propertyDependencies.values() for u in prop.urns}
        if request.provider:  # a resource waits for its provider (e.g. the AKS kubeconfig)
            deps.add(request.provider.rsplit("::", 1)[0])
        if not hasattr(self, "property_dependencies"):
            self.property_dependencies = {}
        self.property_dependencies[response.urn] = deps
        return response


def record(stack: str, overrides: Mapping[str, Any] | None = None) -> Graph:
    """Run the program for ``stack`` and build its graph of custom resources."""
    monitors: list[_RecordingMonitor] = []

    def make(mocks: Any) -> _RecordingMonitor:
        monitor = _RecordingMonitor(mocks)
        monitors.append(monitor)
        return monitor

    original = engine._Monitor  # pyright: ignore[reportPrivateUsage]
    engine._Monitor = make  # type: ignore[assignment]  # pyright: ignore[reportPrivateUsage]
    try:
        run = engine.run(stack, overrides, preview=False)
    finally:
        engine._Monitor = original  # pyright: ignore[reportPrivateUsage]
    if run.error is not None:
        raise SystemExit(f"the {stack} program failed under mocks: {run.error!r}")
    from_inputs = getattr(monitors[0], "property_dependencies", {})
    return build(run.resources, from_inputs)


def build(resources: Iterable[engine.Registered], from_inputs: Mapping[str, set[str]]) -> Graph:
    by_urn = {r.urn: r for r in resources}
    children: dict[str, list[str]] = {}
    for r in by_urn.values():
        children.setdefault(r.parent, []).append(r.urn)

    def customs(urn: str) -> set[str]:
        """A dependency on a component is one on every custom resource under it."""
        r = by_urn.get(urn)
        if r is None:
            return set()
        if r.custom:
            return {urn}
        return {c for child in children.get(urn, []) for c in customs(child)}

    g = Graph()
    for r in by_urn.values():
        if not r.custom:
            continue
        g.types[r.urn] = r.type
        parent = by_urn.get(r.parent)
        waits = {r.parent} if parent is not None and parent.custom else set()
        data = {c for u in from_inputs.get(r.urn, set()) for c in customs(u)}
        recorded = {c for u in r.dependencies for c in customs(u)}
        g.all[r.urn] = (recorded | data | waits) - {r.urn}
        ordered = {u for u in recorded - data if _is_azure_ordering(r.type, by_urn[u].type)}
        g.floor[r.urn] = (data | waits | ordered) - {r.urn}
    _serialise(g, by_urn)
    return g


def _serialise(g: Graph, by_urn: Mapping[str, engine.Registered]) -> None:
    """Add Azure's one-at-a-time orderings (in declaration order) where the program has none:
    Azure applies them anyway (or fails the second request), so both figures include them."""
    last: dict[tuple[str, str], str] = {}
    for urn, type_ in g.types.items():
        key = SERIALISED_BY_AZURE.get(type_)
        if key is None:
            continue
        group = (type_.rsplit(":", 1)[-1], str(engine.reveal(by_urn[urn].inputs).get(key)))
        if group in last:
            g.all[urn].add(last[group])
            g.floor[urn].add(last[group])
        last[group] = urn


def longest(g: Graph, edges: Mapping[str, set[str]]) -> tuple[float, list[str]]:
    """Length of the longest path (in minutes) and its resources, first created first."""
    finish: dict[str, tuple[float, str | None]] = {}

    def visit(urn: str) -> float:
        if urn not in finish:
            finish[urn] = (0.0, None)  # a cycle cannot occur in a Pulumi graph; guard anyway
            best, via = 0.0, None
            for dep in edges.get(urn, ()):
                if dep in g.types and visit(dep) > best:
                    best, via = finish[dep][0], dep
            finish[urn] = (best + minutes(g.types[urn]), via)
        return finish[urn][0]

    end = max(g.types, key=visit, default=None)
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = finish[end][1]
    return (finish[path[0]][0] if path else 0.0), path[::-1]


def overhead_edges(g: Graph) -> list[tuple[str, str]]:
    """Recorded edges that Azure does not impose: what the program could drop."""
    return sorted((u, d) for u, deps in g.all.items() for d in deps - g.floor[u])


def report(stack: str, g: Graph) -> dict[str, Any]:
    path_min, path = longest(g, g.all)
    floor_min, floor = longest(g, g.floor)
    return {
        "stack": stack,
        "path_minutes": round(path_min, 1),
        "floor_minutes": round(floor_min, 1),
        "ratio": round(path_min / floor_min, 3) if floor_min else 1.0,
        "path": [_label(u, g) for u in path],
        "floor": [_label(u, g) for u in floor],
        "overhead_edges": [f"{_label(u, g)} -> {_label(d, g)}" for u, d in overhead_edges(g)],
    }


def _label(urn: str, g: Graph) -> str:
    return f"{urn.rsplit('::', 1)[-1]} ({minutes(g.types[urn]):g} min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("stacks", nargs="*", default=["dev", "prod"])
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--show-edges", action="store_true", help="list the overhead edges")
    args = parser.parse_args(argv)
    results = [report(stack, record(stack)) for stack in args.stacks]
    ok = True
    for res in results:
        within = res["ratio"] <= 1 + TOLERANCE
        ok &= within
        print(
            f"{res['stack']:>5}: critical path {res['path_minutes']:5.1f} min, floor "
            f"{res['floor_minutes']:5.1f} min, ratio {res['ratio']:.3f} "
            f"({'within' if within else 'OVER'} {TOLERANCE:.0%})"
        )
        print("       path: " + " -> ".join(res["path"]))
        if args.show_edges:
            for edge in res["overhead_edges"]:
                print(f"       overhead: {edge}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
