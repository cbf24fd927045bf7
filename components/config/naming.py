"""Resource names that follow Azure's rules, made in one place.

Every name in the program comes from :class:`Naming`. Globally unique names (storage, registry,
key vault, Redis, web and function apps, IoT Hub, Service Bus) carry the stack's suffix; the
rules below are checked by settings validation before any resource is declared.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    kind: str
    pattern: str
    min_len: int
    max_len: int
    explain: str

    def problem(self, name: str) -> str | None:
        """Why ``name`` breaks this rule, or None when it is valid."""
        if not self.min_len <= len(name) <= self.max_len:
            return f"{len(name)} characters; {self.kind} names take {self.explain}"
        if not re.fullmatch(self.pattern, name) or ("--" in name and "--" not in self.pattern):
            return f"{self.kind} names take {self.explain}"
        return None


RULES: dict[str, NameRule] = {
    "storage": NameRule(
        "storage account", r"[a-z0-9]+", 3, 24, "3-24 lowercase letters and digits"
    ),
    "registry": NameRule("container registry", r"[a-zA-Z0-9]+", 5, 50, "5-50 letters and digits"),
    "keyvault": NameRule(
        "key vault",
        r"[a-zA-Z](?:-?[a-zA-Z0-9])+",
        3,
        24,
        "3-24 letters, digits and single hyphens, starting with a letter",
    ),
    # The stricter of the two services: an Azure Managed Redis (Redis Enterprise) cluster name
    # "must be 1-60 characters long" (https://learn.microsoft.com/en-us/dotnet/api/microsoft.azure.
    # powershell.cmdlets.redisenterprisecache.models.iredisenterprisecacheidentity.clustername);
    # Azure Cache for Redis allows 63.
    "redis": NameRule(
        "Redis cache",
        r"[a-zA-Z0-9](?:-?[a-zA-Z0-9])*",
        1,
        60,
        "1-60 letters, digits and hyphens, no '--', not starting or ending with '-'",
    ),
    "webapp": NameRule(
        "web/function app",
        r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?",
        2,
        60,
        "2-60 letters, digits and hyphens (a DNS label), not starting or ending with '-'",
    ),
    "workspace": NameRule(
        "ML workspace",
        r"[a-zA-Z0-9][a-zA-Z0-9_-]*",
        3,
        33,
        "3-33 letters, digits, '-' and '_', starting with a letter or digit",
    ),
    "aks_pool": NameRule(
        "AKS node pool", r"[a-z][a-z0-9]*", 1, 12, "1-12 lowercase letters and digits"
    ),
    "dns_label": NameRule(
        "DNS label",
        r"[a-z][a-z0-9-]*[a-z0-9]",
        3,
        63,
        "3-63 lowercase letters, digits and hyphens, starting with a letter",
    ),
    "iothub": NameRule(
        "IoT Hub",
        r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?",
        3,
        50,
        "3-50 letters, digits and hyphens, not ending with '-'",
    ),
    # Microsoft.App (https://learn.microsoft.com/azure/azure-resource-manager/management/
    # resource-name-rules#microsoftapp), as PSRule for Azure checks them: a container app takes
    # 2-32 lowercase letters, digits and hyphens, starting with a letter, ending alphanumeric, no
    # '--' (https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.ContainerApp.Name/); an
    # environment 2-60 lowercase letters, digits and hyphens
    # (https://azure.github.io/PSRule.Rules.Azure/en/rules/Azure.ContainerApp.EnvNaming), here
    # also starting with a letter and ending alphanumeric, as resource-name-rules has it.
    "container_app": NameRule(
        "container app",
        r"[a-z](?:-?[a-z0-9])*",
        2,
        32,
        "2-32 lowercase letters, digits and hyphens, starting with a letter, no '--', not "
        "ending with '-'",
    ),
    "container_apps_env": NameRule(
        "Container Apps environment",
        r"[a-z](?:[a-z0-9-]*[a-z0-9])?",
        2,
        60,
        "2-60 lowercase letters, digits and hyphens, starting with a letter, not ending with '-'",
    ),
    "servicebus": NameRule(
        "Service Bus namespace",
        r"[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]",
        6,
        50,
        "6-50 letters, digits and hyphens, starting with a letter",
    ),
}


def stable_suffix(seed: str, length: int = 5) -> str:
    """A short lowercase suffix derived from ``seed``: the same stack always gets the same one."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return "".join(c for c in digest if c.isalnum())[:length]


@dataclass(frozen=True)
class Naming:
    """Builds every resource name of one stack from ``prefix``, ``stack`` and ``suffix``."""

    prefix: str
    stack: str
    suffix: str

    @property
    def _stack(self) -> str:
        return re.sub(r"[^a-z0-9]", "", self.stack.lower())[:8] or "stack"

    def dashed(self, role: str) -> str:
        """``prefix-stack-role``: names that are unique only inside their resource group."""
        return f"{self.prefix}-{self._stack}-{role}"

    def global_dashed(self, role: str) -> str:
        """``prefix-stack-role-suffix``: DNS labels that must be unique across Azure."""
        return (
            f"{self.prefix}-{self._stack}-{role}-{self.suffix}"
            if self.suffix
            else self.dashed(role)
        )

    def compact(self, role: str, max_len: int = 24) -> str:
        """``prefixstackrolesuffix`` without separators (storage accounts, registries)."""
        head = f"{self.prefix}{self._stack}{role}"
        return (head[: max_len - len(self.suffix)] + self.suffix).lower()

    # The names the program uses, one method each so that validation checks the same strings.
    def resource_group(self) -> str:
        return f"rg-{self.dashed('scoring')}"

    def workspace(self) -> str:
        return self.dashed("mlw")

    def storage(self, role: str = "ml") -> str:
        return self.compact(role, 24)

    def registry(self) -> str:
        return self.compact("acr", 50)

    def key_vault(self) -> str:
        return self.global_dashed("kv")[:24].rstrip("-")

    def redis(self) -> str:
        return self.global_dashed("redis")

    def web_app(self) -> str:
        return self.global_dashed("app")

    def function_app(self) -> str:
        return self.global_dashed("func")

    def aci_dns_label(self) -> str:
        return self.global_dashed("aci").lower()

    def iot_hub(self) -> str:
        return self.global_dashed("iot")

    def service_bus(self) -> str:
        return self.global_dashed("sb")

    def container_apps_environment(self) -> str:
        return self.dashed("cae")

    def container_app(self) -> str:
        return self.dashed("scoring")

    def globally_unique(self) -> dict[str, tuple[str, str]]:
        """Every name with a global or constrained namespace: ``{label: (rule, name)}``."""
        return {
            "storage account (workspace)": ("storage", self.storage("ml")),
            "storage account (functions host)": ("storage", self.storage("fnh")),
            "storage account (trigger data)": ("storage", self.storage("fnd")),
            "container registry": ("registry", self.registry()),
            "key vault": ("keyvault", self.key_vault()),
            "Redis cache": ("redis", self.redis()),
            "web app": ("webapp", self.web_app()),
            "function app": ("webapp", self.function_app()),
            "ML workspace": ("workspace", self.workspace()),
            "ACI DNS label": ("dns_label", self.aci_dns_label()),
            "IoT Hub": ("iothub", self.iot_hub()),
            "Service Bus namespace": ("servicebus", self.service_bus()),
            "Container Apps environment": ("container_apps_env", self.container_apps_environment()),
            "container app": ("container_app", self.container_app()),
        }
