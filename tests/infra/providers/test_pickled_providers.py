"""Every dynamic provider, pickled by the real program, loads in a fresh process as the engine's.

Pulumi serialises a dynamic provider with dill into the resource's ``__provider`` input, stores it
in the stack's state, and loads it again in its provider process (``python -m pulumi.dynamic``,
started in the project folder) for every later ``refresh``, ``up`` and ``destroy``. Classes are
pickled by module path: a provider module that moved, or one that imports something the project
folder does not provide, breaks those commands for every deployed stack.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
import textwrap

from pulumi import dynamic

import components.providers
from components import PROJECT_ROOT
from preview.engine import reveal

# The class paths stacks store from now on. Changing one breaks every stack deployed before:
# the change needs a migration (keep the old path importable), not an edit of this set.
STORED = {
    "components.providers.arm_patch._Provider",
    "components.providers.feature_check.FeatureRegistrationProvider",
    "components.providers.function_keys.FunctionHostKeysProvider",
    "components.providers.gateway_address.GatewayAddressProvider",
    "components.providers.iot_edge.EdgeDeploymentProvider",
    "components.providers.iot_edge.EdgeDeviceProvider",
    "components.providers.iot_edge.RegistryTokenPasswordProvider",
    "components.providers.kube_access.KubeAccessProvider",
    "components.providers.redundancy_check.RedundancyCheckProvider",
}

LOAD = textwrap.dedent(
    """
    import base64, json, sys
    import dill
    from pulumi import dynamic
    loaded = []
    for blob in json.load(sys.stdin):
        provider = dill.loads(base64.b64decode(blob))
        assert isinstance(provider, dynamic.ResourceProvider), type(provider)
        loaded.append(f"{type(provider).__module__}.{type(provider).__qualname__}")
    print(json.dumps(loaded))
    """
)


def _declared_providers() -> set[str]:
    """Every ResourceProvider class defined in components/providers/."""
    found = set()
    for info in pkgutil.iter_modules(components.providers.__path__):
        module = importlib.import_module(f"components.providers.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, dynamic.ResourceProvider) and cls.__module__ == module.__name__:
                found.add(f"{cls.__module__}.{cls.__qualname__}")
    return found


def _load_in_fresh_process(blobs: list[str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOAD],
        input=json.dumps(blobs),
        cwd=PROJECT_ROOT,  # where the engine starts the provider process; no sys.path set-up
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_each_pickled_provider_of_both_stacks_loads_from_the_project_folder(dev, prod) -> None:
    blobs = {
        reveal(r.inputs["__provider"]): r.type
        for run in (dev, prod)
        for r in run.resources
        if r.type.startswith("pulumi-python:dynamic")
    }
    assert blobs, "the stacks declare no dynamic resource"
    loaded = set(_load_in_fresh_process(list(blobs)))
    assert loaded == STORED
    assert _declared_providers() == STORED
