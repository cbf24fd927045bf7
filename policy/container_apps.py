"""The policy pack's checks of a container app (``azure-native:app:ContainerApp``), added to
the rules of every resource (:func:`extend`): HTTPS only, no plain secrets, images pulled by
identity."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from policy.hygiene import _get

CONTAINER_APP = "azure-native:app:ContainerApp"
Check = Callable[[str, Mapping[str, Any]], list[str]]


def extend(check: Check, for_apps: Callable[[Mapping[str, Any]], list[str]]) -> Check:
    """``check``, and ``for_apps`` on container apps."""

    def both(type_: str, props: Mapping[str, Any]) -> list[str]:
        return check(type_, props) + (for_apps(props) if type_ == CONTAINER_APP else [])

    return both


def insecure_ingress(props: Mapping[str, Any]) -> list[str]:
    """HTTPS only: ``allowInsecure`` false redirects HTTP to HTTPS, true serves plain HTTP too
    (https://learn.microsoft.com/azure/container-apps/ingress-overview)."""
    ingress = _get(props, "configuration", "ingress")
    if isinstance(ingress, Mapping) and ingress.get("allowInsecure") is not False:
        return [
            f"ingress.allowInsecure is {ingress.get('allowInsecure')!r}: set "
            "allow_insecure=False (HTTP is then redirected to HTTPS)"
        ]
    return []


def plain_secrets(
    props: Mapping[str, Any], plain_secret: Callable[[str, Any], str | None]
) -> list[str]:
    """Secrets as plain environment values, or held in the app instead of Key Vault."""
    found: list[str] = []
    for container in _get(props, "template", "containers") or []:
        for item in container.get("env") or []:
            why = plain_secret(str(item.get("name")), item.get("value"))
            if why:
                found.append(f"container {container.get('name')}: {why}: use secretRef")
    for secret in _get(props, "configuration", "secrets") or []:
        if secret.get("value"):
            found.append(
                f"secret {secret.get('name')} has its value in the app: use keyVaultUrl with "
                "the identity that reads it"
            )
    return found


def registry_credentials(props: Mapping[str, Any]) -> list[str]:
    """Registries pulled with a user name and password (secret) instead of the identity."""
    return [
        f"configuration.registries for {r.get('server')}: use identity=<user assigned identity "
        "id> instead of username/passwordSecretRef"
        for r in _get(props, "configuration", "registries") or []
        if r.get("username") or r.get("passwordSecretRef") or not r.get("identity")
    ]
