"""The Azure checks (checkov's ARM rules) the ``prod`` program does not pass, each with its reason.

This is the one list: ``tests/delivery/test_azure_checks.py`` fails when prod fails a check that
is not here (or one listed here no longer fails), ``docs/security.md``'s table is generated from
it (``python -m policy.azure_checks`` prints the table; the test compares), and the policy pack
quotes the same reasons where it has a rule for the same setting (``policies.py``).

A resource is named by its Pulumi logical name and azure-native type (stable across stacks and
name suffixes); ``*`` is every resource of the type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ISSUE_18 = "network isolation, issue 18, open"
BY_DESIGN = "by design"
MISREAD = "met; checkov misreads it"
STATUSES = (ISSUE_18, BY_DESIGN, MISREAD)


@dataclass(frozen=True)
class Exemption:
    check: str  # checkov ID, e.g. CKV_AZURE_17
    type: str  # azure-native type token of the resources
    names: tuple[str, ...]  # Pulumi logical names, or ("*",)
    status: str  # BY_DESIGN, ISSUE_18, ...
    reason: str

    def covers(self, check: str, type_: str, name: str) -> bool:
        named = "*" in self.names or name in self.names
        return check == self.check and type_ == self.type and named


_ALLOW_LIST = (
    "on in prod's allow-list mode (networkIsolation with publicNetworkAccess true): the firewall "
    "denies by default and admits only deployerIpRanges{extra}, the rest goes through its private "
    "endpoint. mlscore:publicNetworkAccess false turns it off (deploy from a runner in the VNet)."
)
EXEMPTIONS: tuple[Exemption, ...] = (
    # --- by design ---------------------------------------------------------------------------
    Exemption("CKV_AZURE_139", "azure-native:containerregistry:Registry", ("acr",), BY_DESIGN,
              "public network access " + _ALLOW_LIST.format(
                  extra=" (image push) and the IoT Edge devices' iotHubIpFilter (they pull the "
                  "scoring image over the internet)")),
    Exemption("CKV_AZURE_59", "azure-native:storage:StorageAccount", ("*",), BY_DESIGN,
              "public network access " + _ALLOW_LIST.format(extra=" (model upload)")),
    Exemption("CKV_AZURE_222", "azure-native:web:WebApp", ("app",), BY_DESIGN,
              "the scoring endpoints of App Service and Functions are public by design: their "
              "clients call them over the internet, authenticated by keys (the policy pack's "
              "network rules list them as public by design); their outbound traffic goes "
              "through the VNet."),
    Exemption("CKV_AZURE_17", "azure-native:web:WebApp", ("app",), BY_DESIGN,
              "a public scoring API authenticated by bearer keys (App Service) and function keys "
              "(Functions), as Azure ML's web services are; mutual TLS would make every client "
              "hold a certificate. clientCertMode Optional would pass the scan and check "
              "nothing (the app does not validate the forwarded certificate)."),
    Exemption("CKV_AZURE_212", "azure-native:web:WebApp", ("app",), BY_DESIGN,
              "the failover minimum is the plan's: zone redundant with sku.capacity >= 2 and the "
              "autoscale minimum (the policy pack's zone-redundancy rule checks it). The check "
              "reads siteConfig.numberOfWorkers, the per-app scaling count, which the plans do "
              "not use (perSiteScaling off: each app runs on every plan instance)."),
    Exemption("CKV_AZURE_8", "azure-native:containerservice:ManagedCluster", ("cluster",),
              BY_DESIGN, "the Kubernetes dashboard add-on no longer exists, so it cannot be on: "
              "AKS removed it for Kubernetes 1.19+ (learn.microsoft.com/azure/aks/"
              "kubernetes-dashboard) and the API version the program uses has no kubeDashboard "
              "add-on; the check passes only an explicit kubeDashboard.enabled=false."),
    Exemption("CKV_AZURE_172", "azure-native:containerservice:ManagedCluster", ("cluster",),
              MISREAD, "rotation is on: addonProfiles.azureKeyvaultSecretsProvider.config has "
              "enableSecretRotation \"true\" (poll 2m). The API types add-on config as a map of "
              "strings; checkov's ARM rule wants the JSON boolean true (verified with a one-"
              "resource template: boolean passes, the string fails)."),
    Exemption("CKV_AZURE_166", "azure-native:containerregistry:Registry", ("acr",), BY_DESIGN,
              "ACR's quarantine policy (preview) keeps every pushed image unpullable until an "
              "external scanner marks it verified; with none, the deployment that follows the "
              "push could not pull. Scanning: enable Microsoft Defender for Containers on the "
              "subscription (vulnerability assessment of pushed images), a subscription-level "
              "plan outside this stack."),
)  # fmt: skip

# Checks a reviewer may raise that checkov's ARM framework does not run (their Terraform twins do),
# with the program's answer.
NOT_SCANNED: tuple[tuple[str, str, str], ...] = (
    ("CKV_AZURE_214", "function app (Elastic Premium)",
     "Always On stays off on Elastic Premium: the plan keeps its always-ready instances warm, and "
     "Always On there causes needless scale-out and 503 responses (Azure Functions wiki, 'Enable "
     "Always On when running on dedicated App Service Plan'). Dedicated (P*v3) plans get it on."),
)  # fmt: skip


def exemption(check: str, type_: str, name: str) -> Exemption | None:
    return next((e for e in EXEMPTIONS if e.covers(check, type_, name)), None)


def reason(check: str) -> str:
    """The reason given for ``check`` (the policy pack quotes it)."""
    return next(e.reason for e in EXEMPTIONS if e.check == check)


def markdown_table(exemptions: Iterable[Exemption] = EXEMPTIONS) -> str:
    lines = ["| check | resource | status | reason |", "|---|---|---|---|"]
    for e in exemptions:
        names = "every one" if "*" in e.names else ", ".join(e.names)
        resource = f"`{e.type.removeprefix('azure-native:')}` ({names})"
        lines.append(f"| {e.check} | {resource} | {e.status} | {e.reason} |")
    return "\n".join(lines)


def not_scanned_table() -> str:
    lines = ["| check | resource | answer |", "|---|---|---|"]
    lines += [f"| {c} | {r} | {why} |" for c, r, why in NOT_SCANNED]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
    print()
    print(not_scanned_table())
