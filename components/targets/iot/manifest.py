"""The IoT Edge deployment manifest (``modulesContent``) of the scoring module: a pure function.

Structure as documented in "Learn how to deploy modules and establish routes in IoT Edge"
(module-composition) and the ``applyConfigurationContent`` REST operation:

```
{"modulesContent": {
  "$edgeAgent": {"properties.desired": {
      "schemaVersion": "1.1",
      "runtime": {"type": "docker", "settings": {"registryCredentials": {...}}},
      "systemModules": {"edgeAgent": {...}, "edgeHub": {...}},
      "modules": {"<name>": {"version", "type", "status", "restartPolicy", "startupOrder",
                             "settings": {"image", "createOptions": "<JSON string>"}, "env"}}}},
  "$edgeHub": {"properties.desired": {
      "schemaVersion": "1.1", "routes": {...},
      "storeAndForwardConfiguration": {"timeToLiveSecs": N}}}}}
```

``createOptions`` is a *string* holding Docker's create options as JSON; the service stores at
most 512 characters per field, so longer options continue in ``createOptions01``,
``createOptions02``... (documented for the portal and the CLI alike).

Leaf values (the image reference, the registry password, env values) may be Pulumi Outputs: the
builder only places them, so a secret leaf stays secret on its own and the rest of the manifest
stays readable in ``pulumi preview``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# IoT Edge 1.5 LTS reached the end of its servicing on 12 Nov 2026; 1.6 is the LTS release
# current in November 2026 (github.com/Azure/iotedge releases, tag 1.6.0).
DEFAULT_RUNTIME_VERSION = "1.6"
EDGE_AGENT_IMAGE = "mcr.microsoft.com/azureiotedge-agent"
EDGE_HUB_IMAGE = "mcr.microsoft.com/azureiotedge-hub"
SCHEMA_VERSION = "1.1"  # $edgeAgent and $edgeHub; 1.1 adds startupOrder and route priority/TTL
CREATE_OPTIONS_CHUNK = 512
RESTART_POLICIES = ("never", "on-failure", "on-unhealthy", "always")
STATUSES = ("running", "stopped")
# The edge hub's own ports: AMQPS 5671, MQTTS 8883, AMQP/MQTT over WebSockets on 443.
EDGE_HUB_PORTS = (443, 5671, 8883)

# Module IDs: up to 128 ASCII letters, digits and - : . + % _ # * ? ! ( ) , = @ $ ' (IoT Hub
# identity registry rules). Names starting with '$' are reserved for the runtime's own modules,
# and a route addresses a module as /messages/modules/<name>/..., so '/' and spaces are out too.
_MODULE_NAME = re.compile(r"[A-Za-z0-9\-:.+%_#*?!(),=@'][A-Za-z0-9\-:.+%_#*?!(),=@$']{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROUTE = re.compile(r"\s*FROM\s+\S+.*\s+INTO\s+\S+.*", re.IGNORECASE | re.DOTALL)


class ManifestError(ValueError):
    """The manifest would be rejected by IoT Hub or the edge agent."""


@dataclass(frozen=True)
class RegistryCredential:
    address: Any  # login server, e.g. myacr.azurecr.io
    username: Any
    password: Any  # secret


@dataclass(frozen=True)
class EdgeModule:
    name: str
    image: Any  # <login server>/<repository>@sha256:<digest>
    env: Mapping[str, Any] = field(default_factory=dict)
    port_bindings: Mapping[int, int] = field(default_factory=dict)  # container port -> host port
    restart_policy: str = "always"
    status: str = "running"
    startup_order: int = 1
    version: str = "1.0"


@dataclass(frozen=True)
class EdgeManifestSpec:
    modules: tuple[EdgeModule, ...]
    registries: Mapping[str, RegistryCredential] = field(default_factory=dict)
    runtime_version: str = DEFAULT_RUNTIME_VERSION
    store_and_forward_ttl_seconds: int = 7200
    routes: Mapping[str, str] | None = None  # default: every module's outputs to $upstream


def create_options(port_bindings: Mapping[int, int], extra: Mapping[str, Any] | None = None) -> str:
    """Docker create options as the JSON *string* the edge agent expects."""
    options: dict[str, Any] = dict(extra or {})
    if port_bindings:
        options["HostConfig"] = {
            **options.get("HostConfig", {}),
            "PortBindings": {
                f"{c}/tcp": [{"HostPort": str(h)}] for c, h in sorted(port_bindings.items())
            },
        }
    return json.dumps(options, separators=(",", ":"), sort_keys=True)


def _settings(image: Any, options: str) -> dict[str, Any]:
    settings: dict[str, Any] = {"image": image}
    chunks = [
        options[i : i + CREATE_OPTIONS_CHUNK] for i in range(0, len(options), CREATE_OPTIONS_CHUNK)
    ] or [""]
    for i, chunk in enumerate(chunks):
        settings["createOptions" if i == 0 else f"createOptions{i:02d}"] = chunk
    return settings


def default_routes(module_names: list[str]) -> dict[str, str]:
    return {
        f"{name}ToUpstream": f"FROM /messages/modules/{name}/outputs/* INTO $upstream"
        for name in module_names
    }


def _check(spec: EdgeManifestSpec, *, require_modules: bool = True) -> None:
    problems: list[str] = []
    names = [m.name for m in spec.modules]
    if not names and require_modules:
        problems.append("a deployment needs at least one module besides the runtime's own")
    if len(set(names)) != len(names):
        problems.append(f"module names repeat: {names}")
    if len(names) > 50:
        problems.append(f"{len(names)} modules; IoT Edge runs at most 50 besides its own")
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", spec.runtime_version):
        problems.append(f"runtime version {spec.runtime_version!r} is not like 1.6 or 1.6.2")
    if spec.store_and_forward_ttl_seconds < 1:
        problems.append("storeAndForwardConfiguration.timeToLiveSecs must be positive")
    for m in spec.modules:
        if not _MODULE_NAME.fullmatch(m.name) or m.name in ("edgeAgent", "edgeHub"):
            problems.append(
                f"module name {m.name!r}: use 1-128 letters, digits and - : . + % _ # * ? ! ( ) "
                ", = @ ' (not starting with $, not edgeAgent/edgeHub)"
            )
        if m.restart_policy not in RESTART_POLICIES:
            problems.append(
                f"{m.name}: restartPolicy {m.restart_policy!r} not in {RESTART_POLICIES}"
            )
        if m.status not in STATUSES:
            problems.append(f"{m.name}: status {m.status!r} not in {STATUSES}")
        for key, value in m.env.items():
            if not _ENV_NAME.fullmatch(key):
                problems.append(f"{m.name}: environment variable name {key!r}")
            if isinstance(value, bytes | int | float | bool) or value is None:
                problems.append(f"{m.name}: env {key} must be a string, not {type(value).__name__}")
        for c, h in m.port_bindings.items():
            if not (1 <= int(c) <= 65535 and 1 <= int(h) <= 65535):
                problems.append(f"{m.name}: port binding {c}->{h} out of 1-65535")
            if int(h) in EDGE_HUB_PORTS:
                problems.append(f"{m.name}: host port {h} is taken by the edge hub")
    for name in spec.registries:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            problems.append(f"registry credential name {name!r}: letters, digits, '-' and '_'")
    for name, route in (spec.routes or {}).items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not _ROUTE.fullmatch(route):
            problems.append(f"route {name!r}: {route!r} is not 'FROM <source> INTO <sink>'")
    if problems:
        raise ManifestError("invalid IoT Edge deployment manifest: " + "; ".join(problems))


def build_modules_content(
    spec: EdgeManifestSpec, *, require_modules: bool = True
) -> dict[str, Any]:
    """``modulesContent`` for ``applyConfigurationContent`` (or an at-scale deployment)."""
    _check(spec, require_modules=require_modules)
    return {
        "$edgeAgent": {"properties.desired": _edge_agent(spec)},
        "$edgeHub": {"properties.desired": _edge_hub(spec)},
    }


def _edge_agent(spec: EdgeManifestSpec) -> dict[str, Any]:
    """``$edgeAgent``: the registries, the runtime's own modules and the deployment's."""
    version = spec.runtime_version
    return {
        "schemaVersion": SCHEMA_VERSION,
        "runtime": {
            "type": "docker",
            "settings": {
                "registryCredentials": {
                    name: {"address": c.address, "username": c.username, "password": c.password}
                    for name, c in spec.registries.items()
                }
            },
        },
        "systemModules": {
            "edgeAgent": {
                "type": "docker",
                "settings": _settings(f"{EDGE_AGENT_IMAGE}:{version}", ""),
            },
            "edgeHub": {
                "type": "docker",
                "status": "running",
                "restartPolicy": "always",
                "startupOrder": 0,
                "settings": _settings(
                    f"{EDGE_HUB_IMAGE}:{version}",
                    create_options({p: p for p in EDGE_HUB_PORTS}),
                ),
            },
        },
        "modules": {
            m.name: {
                "version": m.version,
                "type": "docker",
                "status": m.status,
                "restartPolicy": m.restart_policy,
                "startupOrder": m.startup_order,
                "settings": _settings(m.image, create_options(m.port_bindings)),
                "env": {k: {"value": v} for k, v in sorted(m.env.items())},
            }
            for m in spec.modules
        },
    }


def _edge_hub(spec: EdgeManifestSpec) -> dict[str, Any]:
    """``$edgeHub``: the routes (by default every module's outputs upstream) and their TTL."""
    ttl = spec.store_and_forward_ttl_seconds
    routes = (
        spec.routes if spec.routes is not None else default_routes([m.name for m in spec.modules])
    )
    return {
        "schemaVersion": SCHEMA_VERSION,
        "routes": {
            name: {"route": route, "priority": 0, "timeToLiveSecs": ttl}
            for name, route in routes.items()
        },
        "storeAndForwardConfiguration": {"timeToLiveSecs": ttl},
    }


def runtime_only_modules_content(
    runtime_version: str = DEFAULT_RUNTIME_VERSION, ttl: int = 7200
) -> dict[str, Any]:
    """A manifest with the runtime's own modules only: what removing the deployment applies, so
    the edge agent stops and removes the scoring module."""
    spec = EdgeManifestSpec(
        modules=(), runtime_version=runtime_version, store_and_forward_ttl_seconds=ttl
    )
    return build_modules_content(spec, require_modules=False)
