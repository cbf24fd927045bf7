"""Run the real Pulumi program offline, under Pulumi's mock engine, with the real stack files.

``run("dev")`` reads ``Pulumi.yaml`` (config schema and defaults) and ``Pulumi.dev.yaml`` as the
CLI would, executes ``__main__.py`` with ``pulumi.runtime.set_mocks`` (no Azure account, no Pulumi
CLI, no network) and returns every registered resource with its parent, inputs and outputs, and
the stack outputs. The offline preview (``python -m preview``) and the test fixtures both use it.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import pickle
import runpy
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pulumi
import yaml
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import SETTINGS, _get_rpc_manager, set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.config import stand_ins
from components.config.reader import stack_file_problems
from preview import fakes
from preview.aliases import alias_urns_skipped

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# Values as the engine shows them
# ---------------------------------------------------------------------------------------------
class Secret:
    """A value the program marked secret (shown masked)."""

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return "[secret]"


class Computed:
    """A value known only after apply (shown as such)."""

    def __repr__(self) -> str:
        return "(known after apply)"


COMPUTED = Computed()


def plain(value: Any) -> Any:
    """Normalise a mock-engine value: wrapped secrets -> Secret, unknowns -> COMPUTED."""
    if isinstance(value, Unknown):
        return COMPUTED
    if rpc.is_rpc_secret(value):
        return Secret(plain(value["value"]) if "value" in value else COMPUTED)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def reveal(value: Any) -> Any:
    """The value with Secret wrappers removed (for assertions on secret content)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def to_json(value: Any, *, show_secrets: bool = False) -> Any:
    if isinstance(value, Secret):
        return to_json(value.value, show_secrets=True) if show_secrets else "[secret]"
    if isinstance(value, Computed):
        return "(known after apply)"
    if isinstance(value, dict):
        return {k: to_json(v, show_secrets=show_secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v, show_secrets=show_secrets) for v in value]
    if isinstance(value, pulumi.Asset | pulumi.Archive):  # FileAsset(path) etc.: show the source
        kind = type(value).__name__
        source = getattr(value, "path", None) or getattr(value, "uri", None) or "..."
        return f"{kind}({source})"
    return value


# ---------------------------------------------------------------------------------------------
# Recording mocks
# ---------------------------------------------------------------------------------------------
@dataclass
class Registered:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str]
    retain_on_delete: bool = False
    ignore_changes: tuple[str, ...] = ()

    @property
    def azure_name(self) -> str:
        return fakes.azure_name(self.type, self.name, reveal(self.inputs))


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, preview: bool):
        self.preview = preview
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        name = fakes.azure_name(args.typ, args.name, inputs)
        if args.typ.startswith("azure-native:"):
            inputs.setdefault("name", name)
        read = bool(args.resource_id)  # Resource.get: an existing resource, read in preview too
        if not args.custom and not read:
            return None, inputs
        fake = fakes.computed(args.typ, name, fakes.unwrap(inputs))
        if read:
            return args.resource_id, {**inputs, **fake}
        if self.preview:  # what Azure computes is unknown until apply, as in `pulumi preview`
            return None, _merge_unknown(inputs, fake)
        return fakes.arm_id(args.typ, name), {**inputs, **fake}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        fake = fakes.CALLS.get(args.token)
        if fake is None:
            raise NotImplementedError(
                f"the mock engine has no answer for {args.token}: add one to preview/fakes.py"
            )
        return fake(dict(args.args)), []


def _merge_unknown(inputs: dict[str, Any], computed: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` plus every key of ``computed`` that the inputs do not have, as unknown."""
    merged = dict(inputs)
    for key, value in computed.items():
        if key not in inputs:
            merged[key] = Unknown()
        elif isinstance(value, dict) and isinstance(inputs[key], dict):
            merged[key] = _merge_unknown(inputs[key], value)
        elif isinstance(value, dict) and isinstance(inputs[key], list):
            # Azure answers a map for some list inputs (user-assigned identity IDs -> details):
            # the SDK's output type is the map, so keep its keys and leave the details unknown.
            merged[key] = {k: Unknown() for k in value}
    return merged


class DuplicateUrn(Exception):
    """Two resources with the same type and name under the same parent."""


class _Monitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: _Mocks):
        super().__init__(mocks)
        self.registered: dict[str, Registered] = {}
        self.duplicates: list[str] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        with self._lock:  # registrations run in a thread pool, two of them at the same time
            if urn in self._seen:  # the real engine refuses the whole update (see run())
                self.duplicates.append(urn)
            self._seen.add(urn)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        state = self.resources[response.urn].state
        self.registered[response.urn] = Registered(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=plain(rpc.deserialize_properties(request.object, keep_unknowns=True)),
            outputs=plain(state),
            dependencies=list(request.dependencies),
            retain_on_delete=bool(request.retainOnDelete),
            ignore_changes=tuple(request.ignoreChanges),
        )
        return response


# ---------------------------------------------------------------------------------------------
# Stack config, as the Pulumi CLI assembles it
# ---------------------------------------------------------------------------------------------
class StackConfigError(Exception):
    pass


def project_file() -> dict[str, Any]:
    path = ROOT / "Pulumi.yaml"
    return copy.deepcopy(_parsed(path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _parsed(path: Path, _mtime_ns: int) -> dict[str, Any]:
    """Pulumi.yaml parsed once per version of the file (libyaml's loader, the same safe subset):
    a run of the program read it twice, a tenth of the run's time."""
    return yaml.load(path.read_text(), Loader=yaml.CSafeLoader)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` items (bare or namespaced keys) as ``run``'s overrides."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StackConfigError(
                f"--set takes KEY=VALUE (e.g. --set aksNodeCount=3), not {item!r}"
            )
        overrides[key] = value
    return overrides


def stacks() -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


def stack_config(
    stack: str, overrides: Mapping[str, Any] | None = None, *, stack_file: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """The config map the CLI would hand the program: defaults from Pulumi.yaml, the stack file's
    values on top, then ``overrides`` (bare or namespaced keys). Returns (config, secret keys).

    ``stack_file``: read the stack's values from that file instead of ``Pulumi.<stack>.yaml`` in
    the project (e.g. a file ``python -m migrate --out`` wrote elsewhere)."""
    project = project_file()
    name = project["name"]
    path = stack_file or ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        if stack_file is not None:
            raise StackConfigError(f"no stack file {path}")
        raise StackConfigError(f"no stack file {path.name}; stacks here: {', '.join(stacks())}")
    declared = project.get("config", {})
    values: dict[str, Any] = {
        k: spec["default"] for k, spec in declared.items() if "default" in spec
    }
    secret_keys: list[str] = []
    stack_values = (yaml.safe_load(path.read_text()) or {}).get("config", {}) or {}
    unread = stack_file_problems(stack_values, path.name)  # as the CLI would, and more
    if unread:
        lines = "".join(f"\n  - {p}" for p in unread)
        raise StackConfigError(f"{len(unread)} key(s) of {path.name} would not be read:{lines}")
    for key, value in {**stack_values, **_namespaced(name, overrides or {})}.items():
        if isinstance(value, dict) and "secure" in value:
            value, _ = "<encrypted in stack file>", secret_keys.append(key)
        if key.startswith(f"{name}:") and key not in declared:
            raise StackConfigError(f"{path.name}: {key} is not declared in Pulumi.yaml's config")
        values[key] = value
    config = {
        k: json.dumps(v) if isinstance(v, list | dict) else _cli_str(v) for k, v in values.items()
    }
    return config, secret_keys


def _namespaced(project: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    return {(k if ":" in k else f"{project}:{k}"): v for k, v in overrides.items()}


def _cli_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Running the program
# ---------------------------------------------------------------------------------------------
@dataclass
class Run:
    stack: str
    preview: bool
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seconds: float = 0.0

    # Helpers for tests and the printer ---------------------------------------------------------
    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Registered:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_)]
            raise AssertionError(f"expected one {type_} named {name!r}, found {names}")
        return found[0]

    def children(self, urn: str) -> list[Registered]:
        return [r for r in self.resources if r.parent == urn]

    @property
    def problems(self) -> list[Any]:
        return list(getattr(self.error, "problems", []) or [])


def _ensure_event_loop() -> None:
    """Pulumi's runtime creates futures on the thread's current loop; ``asyncio.run`` elsewhere
    in the same process (a test, a caller) leaves none set, and the run would fail."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    preview: bool = True,
    stack_file: Path | None = None,
    offline: bool = True,
) -> Run:
    """Run ``__main__.py`` for ``stack`` under mocks (its values from ``stack_file`` if given).
    Never raises for program errors: they are in ``Run.error`` (a SettingsError carries
    ``.problems``).

    ``offline`` (the default) marks the run as the offline engine's (``stand_ins.OFFLINE_ENGINE``):
    the program then accepts the stand-in values the stack files ship. ``offline=False`` runs it
    as the Pulumi CLI does (no marker), where ``pulumi up`` or a real preview refuses them."""
    started = time.perf_counter()
    config, secret_keys = stack_config(stack, overrides, stack_file=stack_file)
    project = project_file()["name"]
    mocks = _Mocks(preview)
    monitor = _Monitor(mocks)

    _ensure_event_loop()
    set_root_resource(None)  # type: ignore[arg-type]  # a fresh root stack for every run
    _forget_unfinished_work()
    marker = dict([stand_ins.OFFLINE_ENGINE]) if offline else {}
    set_all_config({**config, **marker}, secret_keys)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    result = Run(stack=stack, preview=preview)

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    def fake_exchange(login_server: str, tenant_id: str, *_: Any, **__: Any) -> str:
        mocks.calls.append(("acr:oauth2/exchange", {"service": login_server, "tenant": tenant_id}))
        return fakes.fake_secret(f"acr-refresh:{login_server}")

    try:
        # A deploy-mode run (tests) would exchange a real Entra token for the registry push; the
        # fake Azure answers that too. A preview never asks (see components/platform/acr_token.py).
        with (
            patch("components.platform.acr_token.exchange_refresh_token", fake_exchange),
            _pickler_restored(),
            alias_urns_skipped(),  # dead work for an engine with alias specs (preview/aliases.py)
        ):
            _sync_await(run_pulumi_func(program))
        root = pulumi.runtime.get_root_resource()
        raw = dict(getattr(root, "outputs", {}) or {})
        result.outputs = {k: _sync_await(_resolve(v)) for k, v in raw.items()}
    except Exception as exc:  # reported, not raised: the caller decides
        result.error = exc
    if monitor.duplicates and result.error is None:
        result.error = DuplicateUrn(
            "; ".join(f"Duplicate resource URN '{u}'" for u in monitor.duplicates)
            + ": try giving it a unique name"
        )
    result.resources = list(monitor.registered.values())
    result.calls = mocks.calls
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def _pickler_restored() -> Iterator[None]:
    """Undo what serialising a dynamic provider leaves on ``pickle._Pickler``.

    ``pulumi.dynamic.serialize_provider`` wraps ``_Pickler._batch_setitems`` (to sort dicts) and
    replaces ``save_dict``, and restores neither: every provider serialised in a process wraps
    the method once more. The real engine serialises in a short-lived program process; runs of
    the program in one long test process would stack the wrappers until any later pure-Python
    pickling (joblib's, for a model) exceeds the recursion limit.
    """
    saved = {name: pickle._Pickler.__dict__[name] for name in ("_batch_setitems", "save_dict")}
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(pickle._Pickler, name, method)


def _forget_unfinished_work() -> None:
    """Drop what a failed run left behind in Pulumi's process-wide state.

    Pulumi stops at the first failed registration; the outputs it still tracks (and the RPCs)
    stay in SETTINGS, and the next run's wait for outstanding work would re-raise that error.
    """
    _get_rpc_manager().clear()
    # lock and outputs are Pulumi "contextproperty" attributes, which pyright cannot see
    with SETTINGS.lock:  # pyright: ignore[reportAttributeAccessIssue]
        SETTINGS.outputs.clear()  # pyright: ignore[reportAttributeAccessIssue]


async def _resolve(value: Any) -> Any:
    """Resolve a stack output (possibly nested Outputs) to plain values with Secret/COMPUTED."""
    if isinstance(value, pulumi.Output):
        known = await value.is_known()
        secret = await value.is_secret()
        inner = await value.future(with_unknowns=True)
        resolved = COMPUTED if not known or isinstance(inner, Unknown) else await _resolve(inner)
        return Secret(resolved) if secret else resolved
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [await _resolve(v) for v in value]
    if isinstance(value, Unknown):
        return COMPUTED
    return value
