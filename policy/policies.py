"""The mlscore policy pack: the secure defaults of DESIGN.md, checked on every preview and update.

Each rule is a plain function ``check(resource_type, props) -> list[str]`` over the resource's
inputs as the Pulumi engine hands them to an analyzer (camelCase azure-native v3 property names,
secrets already unwrapped). The pulumi-policy objects below only wrap these functions, so tests
call them directly on the arguments captured from the real program under mocks, and on bad
fixtures, without starting the pack's gRPC server (``__main__.py`` does that).

The AKS vCPU rule needs every node pool at once (user pools are ``AgentPool`` resources): a stack
policy. Zones and secret hygiene are in ``hygiene.py``, network isolation in ``network.py`` (where
the stack's policy config requires them), what container apps add in ``container_apps.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# components/config/sizes.py is the one table of VM sizes; the pack runs from policy/, so the
# project root goes on the path (the CLI starts the pack with policy/ as its working directory).
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from components.config.sizes import SIZES  # noqa: E402
from policy import container_apps as ca  # noqa: E402
from policy import network as net  # noqa: E402
from policy.budget import budget_policy  # noqa: E402
from policy.hygiene import (  # noqa: E402
    ZONES_NAME,
    _get,
    check_secret_hygiene,
    check_zone_redundancy,
    zone_policy,
)
from policy.secrets import (  # noqa: E402
    KEY_VAULT_REFERENCE,  # noqa: F401  (the pack's names, as tests and users read them)
    check_plaintext_secrets,
    named_values,
    plain_secret,
    secret_like,  # noqa: F401
)
from policy.types import (  # noqa: E402, F401  (the type tokens, as tests read them here)
    ACI,
    AKS,
    AKS_POOL,
    BLOB_CONTAINER,
    IOT_HUB,
    K8S_WORKLOADS,
    KEY_VAULT,
    ONLINE_DEPLOYMENT,
    REDIS,
    REDIS_ENTERPRISE,
    REDIS_ENTERPRISE_DB,
    REGISTRY,
    SERVICE_BUS,
    STORAGE,
    WEB_APP,
    WEB_APP_SETTINGS,
    WEB_APP_SLOT,
    WEB_APPS,
)

MIN_AKS_VCPUS = 12

TLS_12_PLUS = {"1.2", "1.3"}


# --- registry admin off -------------------------------------------------------------------------
def check_registry_admin(type_: str, props: Mapping[str, Any]) -> list[str]:
    if type_ == REGISTRY and props.get("adminUserEnabled") is True:
        return [
            "adminUserEnabled is true: the registry's admin user is a shared password; set "
            "admin_user_enabled=False and pull with a managed identity (AcrPull)"
        ]
    return []


# --- HTTPS only -----------------------------------------------------------------------------------
def check_https_only(type_: str, props: Mapping[str, Any]) -> list[str]:
    if type_ in WEB_APPS and props.get("httpsOnly") is not True:
        return [f"httpsOnly is {props.get('httpsOnly')!r}: set https_only=True"]
    if type_ == STORAGE and props.get("enableHttpsTrafficOnly") is False:
        return ["enableHttpsTrafficOnly is false: set enable_https_traffic_only=True"]
    return []


# --- TLS >= 1.2 everywhere -------------------------------------------------------------------
def check_min_tls(type_: str, props: Mapping[str, Any]) -> list[str]:
    """Every TLS setting must be stated and be 1.2 or newer (defaults differ by API version)."""
    found: list[tuple[str, Any, set[str]]] = []
    if type_ in WEB_APPS:
        tls = _get(props, "siteConfig", "minTlsVersion")
        found.append(("siteConfig.minTlsVersion", tls, TLS_12_PLUS))
        scm = _get(props, "siteConfig", "scmMinTlsVersion")
        if scm is not None:
            found.append(("siteConfig.scmMinTlsVersion", scm, TLS_12_PLUS))
    elif type_ == STORAGE:
        found.append(("minimumTlsVersion", props.get("minimumTlsVersion"), {"TLS1_2", "TLS1_3"}))
    elif type_ in (REDIS, REDIS_ENTERPRISE, SERVICE_BUS):
        found.append(("minimumTlsVersion", props.get("minimumTlsVersion"), TLS_12_PLUS))
    elif type_ == IOT_HUB:
        tls = _get(props, "properties", "minTlsVersion")
        found.append(("properties.minTlsVersion", tls, TLS_12_PLUS))
    return [
        f"{key} is {value!r}: set it to {sorted(allowed)[0]!r} or newer explicitly"
        for key, value, allowed in found
        if value not in allowed
    ]


# --- Redis non-TLS port off ---------------------------------------------------------------------
def check_redis_tls_port(type_: str, props: Mapping[str, Any]) -> list[str]:
    if type_ == REDIS and props.get("enableNonSslPort") is True:
        return ["enableNonSslPort is true: turn the plain-text port 6379 off (TLS port 6380 only)"]
    if type_ == REDIS_ENTERPRISE_DB and props.get("clientProtocol") == "Plaintext":
        return ["clientProtocol is 'Plaintext': set client_protocol='Encrypted'"]
    return []


# --- storage without public blob access ---------------------------------------------------------
def check_storage_public_access(type_: str, props: Mapping[str, Any]) -> list[str]:
    if type_ == STORAGE and props.get("allowBlobPublicAccess") is not False:
        return [
            f"allowBlobPublicAccess is {props.get('allowBlobPublicAccess')!r}: set "
            "allow_blob_public_access=False explicitly"
        ]
    if type_ == BLOB_CONTAINER and props.get("publicAccess") not in (None, "None"):
        return [f"publicAccess is {props.get('publicAccess')!r}: containers must be private"]
    return []


# --- key vault purge protection -----------------------------------------------------------------
def check_key_vault_purge_protection(type_: str, props: Mapping[str, Any]) -> list[str]:
    if type_ == KEY_VAULT and _get(props, "properties", "enablePurgeProtection") is not True:
        return [
            "properties.enablePurgeProtection is not true: deleted secrets could be purged at "
            "once; set enable_purge_protection=True (it cannot be turned off later)"
        ]
    return []


# --- AKS RBAC -------------------------------------------------------------------------------------
def check_aks_rbac(type_: str, props: Mapping[str, Any]) -> list[str]:
    if type_ == AKS and props.get("enableRBAC") is not True:
        return [f"enableRBAC is {props.get('enableRBAC')!r}: set enable_rbac=True"]
    return []


# --- AKS >= 12 vCPUs (stack) ----------------------------------------------------------------------
@dataclass(frozen=True)
class Pool:
    cluster: str
    name: str
    vm_size: str
    nodes: int
    system_only: bool


def _pool(cluster: str, p: Mapping[str, Any]) -> Pool:
    autoscale = bool(p.get("enableAutoScaling"))
    nodes = p.get("minCount") if autoscale and p.get("minCount") is not None else p.get("count")
    taints = p.get("nodeTaints") or []
    return Pool(
        cluster=cluster,
        name=str(p.get("name") or p.get("agentPoolName") or "?"),
        vm_size=str(p.get("vmSize") or ""),
        nodes=int(nodes or 0),
        # a pool tainted CriticalAddonsOnly runs no scoring pods (components/targets/aks/cluster.py)
        system_only=any(str(t).startswith("CriticalAddonsOnly") for t in taints),
    )


def aks_pools(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, list[Pool]]:
    """Node pools per cluster name: the cluster's inline profiles plus AgentPool resources."""
    pools: dict[str, list[Pool]] = {}
    for type_, props in resources:
        if type_ == AKS:
            name = str(props.get("resourceName") or props.get("name") or "?")
            pools.setdefault(name, [])
            for p in props.get("agentPoolProfiles") or []:
                pools[name].append(_pool(name, p))
    for type_, props in resources:
        if type_ == AKS_POOL:
            name = str(props.get("resourceName") or "?")
            if name in pools:  # pools of an attached (existing) cluster are not ours to size
                pools[name].append(_pool(name, props))
    return pools


def check_aks_vcpus(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    problems: list[str] = []
    for cluster, pools in aks_pools(list(resources)).items():
        total, parts = 0, []
        for pool in pools:
            if pool.system_only:
                continue
            size = SIZES.get(pool.vm_size)
            if size is None:
                problems.append(
                    f"{cluster}: pool {pool.name} has VM size {pool.vm_size!r}, unknown to "
                    "components/config/sizes.py, so its vCPUs cannot be counted; add it there"
                )
                continue
            total += pool.nodes * size.vcpus
            parts.append(f"{pool.nodes} x {pool.vm_size}")
        if total < MIN_AKS_VCPUS:
            problems.append(
                f"{cluster}: {' + '.join(parts) or 'no workload pool'} = {total} vCPUs for "
                f"scoring pods; Azure ML needs >= {MIN_AKS_VCPUS}: raise the node count "
                "(autoscaler minimum) or pick a larger VM size"
            )
    return problems


# --- images pulled by identity -----------------------------------------------------------------
_REGISTRY_PASSWORD_SETTINGS = {"DOCKER_REGISTRY_SERVER_PASSWORD", "DOCKER_REGISTRY_SERVER_USERNAME"}


def check_image_pull_identity(type_: str, props: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    if type_ in WEB_APPS:
        settings = {name for name, _, _ in named_values(_get(props, "siteConfig", "appSettings"))}
        for name in sorted(settings & _REGISTRY_PASSWORD_SETTINGS):
            found.append(f"app setting {name}: registry credentials; pull with a managed identity")
        fx = str(_get(props, "siteConfig", "linuxFxVersion") or "")
        from_acr = fx.upper().startswith("DOCKER|") and ".azurecr.io/" in fx
        if from_acr and _get(props, "siteConfig", "acrUseManagedIdentityCreds") is not True:
            found.append(
                "siteConfig.acrUseManagedIdentityCreds is not true: the image comes from ACR; "
                "set acr_use_managed_identity_creds=True (and acr_user_managed_identity_id)"
            )
    elif type_ == WEB_APP_SETTINGS:
        names = set((props.get("properties") or {}).keys())
        for name in sorted(names & _REGISTRY_PASSWORD_SETTINGS):
            found.append(f"app setting {name}: registry credentials; pull with a managed identity")
    elif type_ == ACI:
        for cred in props.get("imageRegistryCredentials") or []:
            if cred.get("password") or cred.get("username") or not cred.get("identity"):
                found.append(
                    f"imageRegistryCredentials for {cred.get('server')}: use identity=<user "
                    "assigned identity id> instead of username/password"
                )
    return found


# --- the pack ---------------------------------------------------------------------------------
ResourceCheck = Callable[[str, Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: ResourceCheck
    remediation: str


RULES: tuple[Rule, ...] = (
    Rule(
        "registry-admin-disabled",
        "Container registries have the admin user off.",
        check_registry_admin,
        "admin_user_enabled=False; targets pull with a user-assigned identity holding AcrPull.",
    ),
    Rule(
        "https-only",
        "Web, function and container apps accept HTTPS only; storage HTTPS traffic only.",
        ca.extend(check_https_only, ca.insecure_ingress),
        "https_only=True (web apps), allow_insecure=False (container apps), HTTPS-only storage.",
    ),
    Rule(
        "tls-1-2-minimum",
        "Web apps, function apps, storage, Redis, Service Bus and IoT Hub require TLS >= 1.2.",
        check_min_tls,
        "Set the minimum TLS version of each service to 1.2 (TLS1_2 for storage) explicitly.",
    ),
    Rule(
        "redis-non-tls-port-disabled",
        "Redis caches serve TLS only (non-TLS port 6379 off).",
        check_redis_tls_port,
        "enable_non_ssl_port=False; Azure Managed Redis: client_protocol='Encrypted'.",
    ),
    Rule(
        "storage-no-public-blob-access",
        "Storage accounts refuse anonymous blob access; containers are private.",
        check_storage_public_access,
        "allow_blob_public_access=False; public_access=None on containers.",
    ),
    Rule(
        "key-vault-purge-protection",
        "Key vaults have purge protection on.",
        check_key_vault_purge_protection,
        "enable_purge_protection=True (with soft delete).",
    ),
    Rule(
        "key-vault-secret-expiry",
        "Key Vault secrets carry a content type and an expiry that has not passed.",
        check_secret_hygiene,
        "properties.content_type and properties.attributes.expires (renewed by each deploy: "
        "components/platform/scoring_keys.py).",
    ),
    Rule(
        "aks-rbac",
        "AKS clusters have Kubernetes RBAC on.",
        check_aks_rbac,
        "enable_rbac=True (with Entra ID integration).",
    ),
    Rule(
        "no-plaintext-secrets",
        "Secrets in app settings and container env are Key Vault references or secure values.",
        ca.extend(check_plaintext_secrets, lambda p: ca.plain_secrets(p, plain_secret)),
        "Web/function apps: @Microsoft.KeyVault(SecretUri=...); ACI: secure_value; "
        "Kubernetes: valueFrom.secretKeyRef.",
    ),
    Rule(
        "images-pulled-by-identity",
        "Web apps and container groups pull images with a managed identity, not a password.",
        ca.extend(check_image_pull_identity, ca.registry_credentials),
        "Web apps: acr_use_managed_identity_creds=True; ACI: image_registry_credentials "
        "with identity=<identity id>.",
    ),
)

AKS_VCPUS_NAME = "aks-min-12-vcpus"


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.check(args.resource_type, args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        remediation_steps=rule.remediation,
    )


def _validate_aks_vcpus(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [(r.resource_type, r.props) for r in args.resources]
    for message in check_aks_vcpus(resources):
        report_violation(message, None)


def policies() -> list[Policy]:
    """Every policy of the pack (enforcement comes from the pack default and the config file)."""
    built: list[Policy] = [_resource_policy(rule) for rule in RULES]
    built.append(zone_policy())
    built.extend(net.network_policies())
    built.append(budget_policy())
    built.append(
        StackValidationPolicy(
            name=AKS_VCPUS_NAME,
            description=(
                f"AKS clusters created here have >= {MIN_AKS_VCPUS} vCPUs for scoring pods "
                "(workload pools at their autoscaler minimum; CriticalAddonsOnly pools excluded)."
            ),
            validate=_validate_aks_vcpus,
            remediation_steps="Raise the user pool's node count or pick a larger VM size.",
        )
    )
    return built


# Secure default when no config file is given; policy/config.<stack>.json sets it per stack.
DEFAULT_ENFORCEMENT = EnforcementLevel.MANDATORY


def evaluate(type_: str, props: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every resource rule's violations for one resource (only rules that fired)."""
    out = {rule.name: rule.check(type_, props) for rule in RULES}
    return {name: msgs for name, msgs in out.items() if msgs}


def evaluate_stack(
    resources: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    zones_required: bool = False,
    network_required: bool = False,
) -> dict[str, list[str]]:
    """Every violation of a program: resource rules, then stack rules (``*_required``: config)."""
    found: dict[str, list[str]] = {}
    for type_, props in resources:
        for name, msgs in evaluate(type_, props).items():
            found.setdefault(name, []).extend(msgs)
        if msgs := check_zone_redundancy(type_, props, zones_required):
            found.setdefault(ZONES_NAME, []).extend(msgs)
        if msgs := net.check_data_plane_private(type_, props, network_required):
            found.setdefault(net.PRIVATE_NAME, []).extend(msgs)
    if network_required and (msgs := net.check_private_endpoints(resources)):
        found[net.ENDPOINTS_NAME] = msgs
    if msgs := check_aks_vcpus(resources):
        found[AKS_VCPUS_NAME] = msgs
    return found
