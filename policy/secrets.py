"""No plaintext secrets in app settings or container env (the pack's ``no-plaintext-secrets``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policy.hygiene import _get
from policy.types import (
    ACI,
    K8S_WORKLOADS,
    ONLINE_DEPLOYMENT,
    WEB_APP_SETTINGS,
    WEB_APPS,
)

# --- no plaintext secrets in app settings or container env ---------------------------------------
_SECRET_WORDS = re.compile(r"password|passwd|secret|token|connection_?string|apikey|api_key", re.I)
_SECRET_TOKENS = {"key", "keys", "pwd", "sas"}
# Identity-based connection settings of the Functions host (``<prefix>__credential`` etc.).
_IDENTITY_SUFFIXES = (
    "__credential",
    "__clientid",
    "__accountname",
    "__fullyqualifiednamespace",
    "__blobserviceuri",
    "__queueserviceuri",
    "__serviceuri",
    "__tenantid",
)
_CREDENTIAL_IN_VALUE = re.compile(
    r"(AccountKey|SharedAccessKey|SharedAccessSignature|Password|pwd)\s*=\s*[^;\s]+", re.I
)
KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(", re.I)


def secret_like(name: str) -> bool:
    """Whether a setting's name says it holds a secret."""
    lowered = name.lower()
    if lowered.endswith(_IDENTITY_SUFFIXES):
        return False
    if _SECRET_WORDS.search(lowered):
        return True
    return any(tok in _SECRET_TOKENS for tok in re.split(r"[^a-z0-9]+", lowered))


# Kubernetes dependent variables ("$(A),$(B)") hold references, no value (kubernetes.io).
_ONLY_ENV_REFERENCES = re.compile(r"(?:\$\([A-Za-z_][A-Za-z0-9_]*\)[,;: ]?)+")


def plain_secret(name: str, value: Any) -> str | None:
    """Why a plain ``name=value`` setting leaks a secret, or None."""
    if not isinstance(value, str) or value == "" or KEY_VAULT_REFERENCE.match(value):
        return None
    if _ONLY_ENV_REFERENCES.fullmatch(value):
        return None
    if _CREDENTIAL_IN_VALUE.search(value):
        return f"{name} carries a credential in its value"
    if secret_like(name):
        return f"{name} looks like a secret and has a plain value"
    return None


def named_values(items: Any) -> list[tuple[str, Any, Mapping[str, Any]]]:
    return [(str(i.get("name")), i.get("value"), i) for i in items or [] if isinstance(i, Mapping)]


def check_plaintext_secrets(type_: str, props: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    if type_ in WEB_APPS:
        for name, value, _ in named_values(_get(props, "siteConfig", "appSettings")):
            if why := plain_secret(name, value):
                found.append(f"app setting {why}: use a Key Vault reference")
        for name, value, _ in named_values(_get(props, "siteConfig", "connectionStrings")):
            if isinstance(value, str) and value and not KEY_VAULT_REFERENCE.match(value):
                found.append(f"connection string {name} is plain: use a Key Vault reference")
    elif type_ == WEB_APP_SETTINGS:
        for name, value in (props.get("properties") or {}).items():
            if why := plain_secret(str(name), value):
                found.append(f"app setting {why}: use a Key Vault reference")
    elif type_ == ACI:
        for container in props.get("containers") or []:
            for name, value, _ in named_values(container.get("environmentVariables")):
                if why := plain_secret(name, value):
                    found.append(
                        f"container {container.get('name')}: {why}: use secure_value, not value"
                    )
    elif type_ in K8S_WORKLOADS:
        spec = props.get("spec") or {}
        cron = _get(spec, "jobTemplate", "spec", "template", "spec")
        pod = cron or _get(spec, "template", "spec") or spec  # CronJob, workloads, a bare Pod
        for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
            for name, value, _ in named_values(container.get("env")):
                if why := plain_secret(name, value):
                    found.append(
                        f"container {container.get('name')}: {why}: use valueFrom.secretKeyRef"
                    )
    elif type_ == ONLINE_DEPLOYMENT:
        env = _get(props, "properties", "environmentVariables") or {}
        for name, value in env.items():
            if why := plain_secret(str(name), value):
                found.append(
                    f"environment variable {why}: Azure ML keeps deployment env in clear; read "
                    "the secret from Key Vault with the endpoint's identity instead"
                )
    return found
