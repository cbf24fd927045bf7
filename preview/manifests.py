"""The Kubernetes objects the program declares, rendered as plain manifests.

A pulumi-kubernetes resource is registered with its type token (``kubernetes:apps/v1:Deployment``)
and its inputs in manifest form (``apiVersion``, ``kind``, ``metadata``, ``spec``...). This module
turns the resources recorded by a mock ``engine.Run`` back into the documents ``kubectl`` would
apply, so that the tools of the field can check them: ``kubernetes-validate`` (the Kubernetes
JSON schema of the cluster's version) and checkov's Kubernetes checks.

Secret values are replaced by ``<redacted>``; values Azure or the cluster computes at apply time
by ``<computed>``.

    python -m preview.manifests [STACK] [--set KEY=VALUE ...]   # prints the YAML
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from preview import engine

REDACTED = "<redacted>"
COMPUTED = "<computed>"
_SKIP_INPUTS = {"__provider", "__defaults"}


def api_version_and_kind(type_token: str) -> tuple[str, str]:
    """``kubernetes:apps/v1:Deployment`` -> (``apps/v1``, ``Deployment``); core is ``v1``."""
    provider, group_version, kind = type_token.split(":")
    if provider != "kubernetes" or "/" not in group_version:
        raise ValueError(f"not a pulumi-kubernetes resource type: {type_token}")
    group, version = group_version.split("/", 1)
    return (version if group == "core" else f"{group}/{version}"), kind


def _plain(value: Any, *, secret: bool = False) -> Any:
    if isinstance(value, engine.Secret):
        return _plain(value.value, secret=True)
    if isinstance(value, engine.Computed):
        return COMPUTED
    if isinstance(value, dict):
        return {k: _plain(v, secret=secret) for k, v in value.items() if k not in _SKIP_INPUTS}
    if isinstance(value, list):
        return [_plain(v, secret=secret) for v in value]
    if secret and isinstance(value, str):
        return REDACTED
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine's wire format has only doubles; manifests have integers
    return value


def manifest(resource: engine.Registered) -> dict[str, Any]:
    api_version, kind = api_version_and_kind(resource.type)
    body = _plain(resource.inputs)
    doc: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    doc["metadata"] = body.pop("metadata", {}) or {}
    doc["metadata"].setdefault("name", resource.name)
    for key in ("apiVersion", "kind"):
        body.pop(key, None)
    doc.update(body)
    return doc


def is_kubernetes_object(resource: engine.Registered) -> bool:
    return (
        resource.custom
        and resource.type.startswith("kubernetes:")
        and resource.type.count(":") == 2
    )


def render(run: engine.Run) -> list[dict[str, Any]]:
    """Every Kubernetes object of ``run``: the Namespaces first (what ``kubectl apply -f`` needs
    before the objects in them), then the rest in registration order, which the engine's
    concurrent registrations do not keep from run to run."""
    docs = [manifest(r) for r in run.resources if is_kubernetes_object(r)]
    return sorted(docs, key=lambda d: d.get("kind") != "Namespace")


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preview.manifests", description=__doc__)
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        overrides = engine.parse_overrides(args.set)
    except engine.StackConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    run = engine.run(args.stack, overrides, preview=False)
    if run.error is not None:
        print(f"error: {run.error}", file=sys.stderr)
        return 1
    sys.stdout.write(to_yaml(render(run)))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    import os

    os._exit(code)
