"""Stack outputs, the contract between the Pulumi program and its clients.

Read from ``pulumi stack output --json --show-secrets [--stack S]`` or from a file saved with that
command. The ``endpoints`` output maps a target name to ``scoring_uri``, ``swagger_uri``,
``health_uri`` and ``auth: {scheme, header, key}``; a target switched off has no entry.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.errors import ClientError, TargetOffError, UnknownTargetError

# Target name in the ``endpoints`` output -> the config key that switches it on (Pulumi.yaml).
KNOWN_TARGETS: dict[str, str] = {
    "app_service": "mlscore:appServiceEnabled",
    "functions": "mlscore:functionsEnabled",
    "aci": "mlscore:aciEnabled",
    "container_apps": "mlscore:containerAppsEnabled",
    "aks": "mlscore:aksEnabled",
    "aks_accelerator": "mlscore:acceleratorEnabled",
    "iot_edge": "mlscore:iotEnabled",
    "aml_online": "mlscore:onlineEndpointEnabled",
}

SCHEMES = ("bearer-key", "function-key", "aml-key", "none")
MASKED = "[secret]"


@dataclass(frozen=True)
class Auth:
    scheme: str
    key: str | None = None

    def headers(self) -> dict[str, str]:
        if self.scheme == "none":
            return {}
        if not self.key:
            raise ClientError(f"auth scheme {self.scheme!r} needs a key, and the outputs have none")
        if self.key == MASKED:
            raise ClientError(
                "the key is masked ('[secret]'): read the outputs with "
                "`pulumi stack output --json --show-secrets`"
            )
        if self.scheme in ("bearer-key", "aml-key"):
            return {"Authorization": f"Bearer {self.key}"}
        if self.scheme == "function-key":
            return {"x-functions-key": self.key}
        raise ClientError(f"unknown auth scheme {self.scheme!r}; this client knows {SCHEMES}")


@dataclass(frozen=True)
class Target:
    name: str
    scoring_uri: str
    auth: Auth
    swagger_uri: str | None = None
    health_uri: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StackOutputs:
    raw: Mapping[str, Any]
    source: str

    @property
    def endpoints(self) -> Mapping[str, Any]:
        eps = self.raw.get("endpoints")
        if not isinstance(eps, Mapping):
            raise ClientError(f"{self.source} has no 'endpoints' output")
        return eps

    def target(self, name: str) -> Target:
        eps = self.endpoints
        if name not in eps:
            if name in KNOWN_TARGETS:
                raise TargetOffError(name, KNOWN_TARGETS[name], sorted(eps))
            raise UnknownTargetError(name, sorted(eps), sorted(set(KNOWN_TARGETS) - set(eps)))
        entry = eps[name]
        if not isinstance(entry, Mapping):
            raise ClientError(f"endpoint {name!r} in {self.source} is not an object: {entry!r}")
        uri = entry.get("scoring_uri")
        if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
            raise ClientError(f"target {name!r} has no usable scoring_uri ({uri!r})")
        auth = entry.get("auth") or {}
        scheme = str(auth.get("scheme") or "none")
        if scheme not in SCHEMES:
            raise ClientError(f"target {name!r}: unknown auth scheme {scheme!r} (known: {SCHEMES})")
        known = {"scoring_uri", "swagger_uri", "health_uri", "auth"}
        return Target(
            name=name,
            scoring_uri=uri,
            auth=Auth(scheme, auth.get("key")),
            swagger_uri=entry.get("swagger_uri"),
            health_uri=entry.get("health_uri"),
            extra={k: v for k, v in entry.items() if k not in known},
        )


def load_file(path: str | Path) -> StackOutputs:
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise ClientError(f"outputs file {p} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ClientError(f"outputs file {p} is not JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ClientError(f"outputs file {p} is not a JSON object")
    return StackOutputs(raw, str(p))


def load_stack(stack: str | None, cwd: str | Path | None = None) -> StackOutputs:
    exe = shutil.which("pulumi")
    if exe is None:
        raise ClientError(
            "the pulumi CLI is not on PATH: install it, or save the outputs elsewhere with "
            "`pulumi stack output --json --show-secrets > outputs.json` and pass --outputs"
        )
    cmd = [exe, "stack", "output", "--json", "--show-secrets"]
    if stack:
        cmd += ["--stack", stack]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=120, check=False)
    if proc.returncode != 0:
        raise ClientError(f"{' '.join(cmd[1:])} failed: {proc.stderr.strip()}")
    try:
        raw = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ClientError(f"pulumi stack output did not print JSON: {exc}") from None
    return StackOutputs(raw, f"stack {stack or '(current)'}")
