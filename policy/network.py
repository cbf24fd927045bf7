"""Rules of the policy pack for network isolation (issue 18), where the stack's policy config says
``"required": true`` (prod; dev is public and cheap by design, so nothing is checked there).

- ``data-plane-private`` (per resource): the data planes (key vault, storage, registry, cache, ML
  workspace) have public network access disabled, or (key vault, storage, registry) a firewall
  that denies by default and admits only the allow-listed deployer (``deployerIpRanges``) and, for
  the registry, the edge devices. The caches and the workspace have no IP firewall to lean on:
  public access off.
- ``data-plane-private-endpoints`` (stack): each of those resources has a private endpoint with
  the resource's sub-resource, and every private endpoint has a private DNS zone group (without
  one, clients still resolve the public address).

What stays public by design, not checked here (:data:`PUBLIC_BY_DESIGN`): the scoring endpoints
and the IoT Hub's device endpoint, whose clients are on the internet.

Plain functions over a resource's inputs as the engine hands them to an analyzer (camelCase
azure-native v3 names), like the other rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.hygiene import _get

KEY_VAULT = "azure-native:keyvault:Vault"
STORAGE = "azure-native:storage:StorageAccount"
REGISTRY = "azure-native:containerregistry:Registry"
REDIS = "azure-native:redis:Redis"
REDIS_ENTERPRISE = "azure-native:redisenterprise:RedisEnterprise"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"

# type -> (the input naming the resource, the private endpoint's group ID, where its public
# access and firewall default are: (path to publicNetworkAccess, path to defaultAction or None)).
# Group IDs: https://learn.microsoft.com/azure/private-link/private-endpoint-dns
DATA_PLANES: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...] | None]] = {
    KEY_VAULT: (
        "vaultName",
        "vault",
        ("properties", "publicNetworkAccess"),
        ("properties", "networkAcls", "defaultAction"),
    ),
    STORAGE: ("accountName", "blob", ("publicNetworkAccess",), ("networkRuleSet", "defaultAction")),
    REGISTRY: (
        "registryName",
        "registry",
        ("publicNetworkAccess",),
        ("networkRuleSet", "defaultAction"),
    ),
    REDIS: ("name", "redisCache", ("publicNetworkAccess",), None),
    REDIS_ENTERPRISE: ("clusterName", "redisEnterprise", ("publicNetworkAccess",), None),
    WORKSPACE: ("workspaceName", "amlworkspace", ("publicNetworkAccess",), None),
}

# Public by design: what the checkov list (policy/azure_checks.py) says for each as well.
PUBLIC_BY_DESIGN = {
    "azure-native:web:WebApp": "the App Service and Functions scoring endpoints: their clients "
    "(API consumers) are on the internet; callers authenticate with the scoring key, and the apps' "
    "outbound traffic goes through the VNet",
    "azure-native:containerservice:ManagedCluster": "the AKS ingress (the Istio add-on's external "
    "ingress gateway) serves scoring to the internet over TLS; the API server admits "
    "aksApiAuthorizedIpRanges only",
    "azure-native:machinelearningservices:OnlineEndpoint": "the Azure ML online endpoint's inbound "
    "is the scoring endpoint (key or Entra auth); the workspace behind it is private",
    "azure-native:iothub:IotHubResource": "the IoT Hub's device endpoint: edge devices connect "
    "over the internet, admitted by iotHubIpFilter",
}


def check_data_plane_private(type_: str, props: Mapping[str, Any], required: bool) -> list[str]:
    """Public network access Disabled, or a default-deny firewall (allow-list)."""
    if not required or type_ not in DATA_PLANES:
        return []
    key, _, access_path, default_path = DATA_PLANES[type_]
    what = f"{type_.rsplit(':', 1)[-1]} {props.get(key)!r}"
    access = _get(props, *access_path)
    if access == "Disabled":
        return []
    default = _get(props, *default_path) if default_path else None
    if default_path and default == "Deny":
        return []
    where = ".".join(access_path)
    if default_path is None:
        return [f"{what}: {where} is {access!r}: set it to 'Disabled' (reached through its private "
                "endpoint; this resource has no IP firewall)"]  # fmt: skip
    firewall = ".".join(default_path)
    return [f"{what}: {where} is {access!r} and {firewall} is {default!r}: disable public "
            "access, or deny by default and allow only deployerIpRanges"]  # fmt: skip


def _name_of(link_id: Any) -> str | None:
    return link_id.rstrip("/").rsplit("/", 1)[-1].lower() if isinstance(link_id, str) else None


def check_private_endpoints(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Each data plane has a private endpoint on its sub-resource; each endpoint a zone group.

    An endpoint names its target by ARM ID (``privateLinkServiceId``), matched here by the
    resource's name; an ID unknown at preview matches any target of its group ID."""
    listed = list(resources)
    targets: dict[str, set[str | None]] = {}  # group ID -> target names (None: unknown yet)
    endpoints: list[str] = []
    for type_, props in listed:
        if type_ != PRIVATE_ENDPOINT:
            continue
        endpoints.append(str(props.get("privateEndpointName")))
        for c in props.get("privateLinkServiceConnections") or []:
            for group in (c or {}).get("groupIds") or []:
                targets.setdefault(group, set()).add(_name_of(c.get("privateLinkServiceId")))
    found: list[str] = []
    for type_, props in listed:
        if type_ not in DATA_PLANES:
            continue
        key, group, _, _ = DATA_PLANES[type_]
        name = str(props.get(key, "")).lower()
        names = targets.get(group, set())
        if name not in names and None not in names:
            found.append(f"{type_.rsplit(':', 1)[-1]} {props.get(key)!r} has no private endpoint "
                         f"with group ID {group!r}")  # fmt: skip
    grouped = {str(p.get("privateEndpointName")) for t, p in listed if t == ZONE_GROUP}
    found += [f"private endpoint {e!r} has no private DNS zone group: its clients resolve the "
              "public address" for e in endpoints if e not in grouped]  # fmt: skip
    return found


PRIVATE_NAME = "data-plane-private"
ENDPOINTS_NAME = "data-plane-private-endpoints"
REMEDIATION = (
    "mlscore:networkIsolation true (components/platform/network_settings.py): private endpoints "
    "for every data plane, public access disabled or default deny with mlscore:deployerIpRanges. "
    "Public by design: " + "; ".join(PUBLIC_BY_DESIGN.values()) + "."
)
_SCHEMA = PolicyConfigSchema(properties={"required": {"type": "boolean"}})


def _required(config: Mapping[str, Any] | None) -> bool:
    return bool((config or {}).get("required", False))


def _validate_private(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    required = _required(args.get_config())
    for message in check_data_plane_private(args.resource_type, args.props, required):
        report_violation(message, None)


def _validate_endpoints(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if not _required(args.get_config()):
        return
    for message in check_private_endpoints((r.resource_type, r.props) for r in args.resources):
        report_violation(message, None)


def network_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """The two network rules, on where the stack's policy config says ``"required": true``."""
    return [
        ResourceValidationPolicy(
            name=PRIVATE_NAME,
            description="Where required (prod): key vault, storage, registry, cache and ML "
            "workspace have public access disabled or a default-deny firewall.",
            validate=_validate_private,
            remediation_steps=REMEDIATION,
            config_schema=_SCHEMA,
        ),
        StackValidationPolicy(
            name=ENDPOINTS_NAME,
            description="Where required (prod): every data plane has a private endpoint, and "
            "every private endpoint a private DNS zone group.",
            validate=_validate_endpoints,
            remediation_steps=REMEDIATION,
            config_schema=_SCHEMA,
        ),
    ]
