"""The one contract every scoring target shares.

A target receives a :class:`ScoringDeployment` (the image, the identity that pulls it, the scoring
settings, the cache connection, the secrets it may reference) and returns an :class:`Endpoint`
(scoring, swagger and health URIs and how a client authenticates). Adding a target means adding
one file under ``components/`` that takes these inputs and returns these outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import pulumi

from components.config.naming import Naming
from components.settings import Settings

# Azure built-in role definition IDs (the same GUID in every subscription).
ROLE_ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ROLE_ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
ROLE_KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
ROLE_KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage
ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/monitor: "although
# [its] name includes metrics, it publishes all telemetry to the Application Insights resource"
# (https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).
ROLE_MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

# Targets whose containers run as the pull identity: they sign in to the data collection container
# and to Application Insights ingestion with it. Not IoT Edge (a device has no Azure identity) nor
# the Azure ML online endpoint (its own identity, and Azure ML's own data collector).
IDENTITY_TARGETS = frozenset({"app_service", "functions", "aci", "container_apps", "aks"})

# Paths of the scoring host (scoring/): the same in every container target.
SCORE_PATH = "/score"
SWAGGER_PATH = "/swagger.json"
LIVENESS_PATH = "/"
READINESS_PATH = "/ready"

# How a client authenticates against an endpoint (the ``auth.scheme`` of the outputs contract).
AUTH_BEARER_KEY = "bearer-key"  # Authorization: Bearer <key>, checked by the scoring host
AUTH_FUNCTION_KEY = "function-key"  # x-functions-key: <key>, checked by the Functions host
AUTH_AML_KEY = "aml-key"  # Authorization: Bearer <key>, checked by Azure ML
AUTH_NONE = "none"


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "/subscriptions/",
        subscription_id,
        "/providers/Microsoft.Authorization/roleDefinitions/",
        role,
    )


@dataclass(frozen=True)
class PullIdentity:
    """The user-assigned identity every target runs as: AcrPull on the registry, and read access
    to the key vault's secrets (scoring keys, Redis key)."""

    id: pulumi.Output[str]
    client_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    # Role assignments a target must wait for before its first image pull.
    grants: tuple[pulumi.Resource, ...] = ()


@dataclass(frozen=True)
class KeyVaultRef:
    id: pulumi.Output[str]
    name: pulumi.Output[str]
    uri: pulumi.Output[str]


@dataclass(frozen=True)
class SecretRef:
    """A secret stored in the key vault: its value (a secret Output) and its versionless URI for
    Key Vault references (``@Microsoft.KeyVault(SecretUri=...)``)."""

    value: pulumi.Output[str]
    uri: pulumi.Output[str]

    def app_setting(self) -> pulumi.Output[str]:
        """The App Service / Functions Key Vault reference that resolves to this secret."""
        return pulumi.Output.concat("@Microsoft.KeyVault(SecretUri=", self.uri, ")")


@dataclass(frozen=True)
class CacheConnection:
    """Where the Redis prediction cache is and how to authenticate to it.

    ``entra_id``: the cache takes Microsoft Entra ID tokens. A target whose containers run as an
    identity holding a data access policy on it (the pull identity always does) signs in with a
    token and never sees a key. ``password`` is the access key (in Key Vault), for the targets
    without an identity; None when no target needs it or the cache has no key for us (an
    existing, Entra-only cache).
    """

    host: pulumi.Input[str]
    port: int
    password: SecretRef | None
    entra_id: bool = False
    # The OSS cluster protocol (Azure Managed Redis' default clustering policy, for an existing
    # cache): the host follows MOVED with redis-py's cluster client (REDIS_CLUSTER).
    cluster: bool = False


@dataclass(frozen=True)
class DataCollectionRef:
    """Where the container targets write collected inputs and outputs: a blob container that the
    pull identity may write (Storage Blob Data Contributor on it)."""

    container_url: pulumi.Input[str]  # https://<account>.blob.core.windows.net/<container>
    container: str
    grants: tuple[pulumi.Resource, ...] = ()


@dataclass(frozen=True)
class NetworkRef:
    """The VNet of network isolation (``networkIsolation``), as the targets use it: its ID and
    each subnet's ID by role (``private_endpoints``, ``app_service``, ``functions``,
    ``aks_nodes``, ``aci``; components/platform/network.py)."""

    vnet_id: pulumi.Input[str]
    subnet_ids: Mapping[str, pulumi.Input[str]]
    # The private DNS zones already linked to the VNet (zone name -> ID): a target's own private
    # endpoints reuse them (components/platform/private_endpoints.py, ``existing_zones``).
    private_dns_zones: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoringDeployment:
    """The inputs every scoring target takes."""

    settings: Settings
    resource_group_name: pulumi.Input[str]
    image: pulumi.Input[str]  # <login server>/<repository>@sha256:<digest>
    registry_login_server: pulumi.Input[str]
    identity: PullIdentity
    key_vault: KeyVaultRef
    scoring_keys: tuple[SecretRef, SecretRef]  # primary, secondary
    log_analytics_workspace_id: pulumi.Input[str]
    app_insights_connection_string: pulumi.Input[str]
    cache: CacheConnection | None = None
    extra_images: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Model data collection (None: off in this stack).
    data_collection: DataCollectionRef | None = None
    # The VNet under network isolation (None: the stack is not isolated).
    network: NetworkRef | None = None
    # Which target these inputs are for ("" until :meth:`for_target`): it names the endpoint in
    # the host's telemetry, metrics and collected data (SCORING_ENDPOINT_NAME).
    target: str = ""

    def for_target(self, target: str) -> ScoringDeployment:
        """The same inputs, addressed to one target (``app_service``, ``aks``, ...)."""
        return replace(self, target=target)

    @property
    def naming(self) -> Naming:
        return self.settings.naming

    @property
    def location(self) -> str:
        return self.settings.location

    @property
    def tags(self) -> Mapping[str, str]:
        return self.settings.tags

    def runtime_env(self) -> dict[str, pulumi.Input[str]]:
        """Plain (non-secret) environment of the scoring host, the same in every target.

        No ``AZUREML_ENTRY_SCRIPT`` or ``AZUREML_MODEL_DIR``: each image sets them to where its
        Dockerfile put the entry script and the model (``/var/azureml-app/code/<script>`` and
        ``/var/azureml-app/azureml-models/<name>/<version>``, the folder holding the registered
        model's files, where Azure ML online deployments mount the same model), and a target
        must not override them. Secrets (scoring keys, the Redis key) are added by each target in
        the form its platform keeps secret: Key Vault references, secure environment values or
        Kubernetes secrets. The cache's settings come from :meth:`cache_env`, which depends on
        the target.
        """
        s = self.settings
        env: dict[str, pulumi.Input[str]] = {
            "AZUREML_SERVER_PORT": str(s.scoring.port),
            "WORKER_COUNT": str(s.scoring.workers),
            "SCORING_TIMEOUT_MS": str(s.scoring.timeout_ms),
            # v1's per-replica limits (scoring/admission.py): run() calls at once, queue wait
            "SCORING_RUN_THREADS": str(s.scoring.max_concurrent),
            "SCORING_MAX_QUEUE_WAIT_MS": str(s.scoring.max_request_wait_ms),
            "MODEL_NAME": s.model.name,
            "MODEL_VERSION": s.model.version,
            "AZURE_CLIENT_ID": self.identity.client_id,
        }
        return env | self.observability_env()

    def observability_env(self) -> dict[str, pulumi.Input[str]]:
        """What the host's telemetry and data collection read (``scoring/observability/``).

        ``SCORING_ENDPOINT_NAME`` is the target (the key of the ``endpoints`` output) and
        ``OTEL_SERVICE_NAME`` the same, so Application Insights' ``cloud_RoleName`` names the
        endpoint (the alert rules group by it). ``SCORING_DEPLOYMENT_NAME`` is the model version
        served, so a new version writes to new folders, as a new Azure ML deployment would.
        Targets running as the pull identity also get ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING``
        (``ClientId=<id>;Authorization=AAD``: Entra ingestion for the Functions host's own
        telemetry, https://learn.microsoft.com/azure/azure-functions/functions-app-settings) and,
        when the stack collects data, the container to write to. The others collect nothing.
        """
        s = self.settings
        o = s.observability
        env: dict[str, pulumi.Input[str]] = {
            "SCORING_DEPLOYMENT_NAME": f"{s.model.name}-{s.model.version}",
            "TELEMETRY_PAYLOADS": "true" if o.telemetry_payloads else "false",
        }
        if self.target:
            env |= {"SCORING_ENDPOINT_NAME": self.target, "OTEL_SERVICE_NAME": self.target}
        signs_in = self.target in IDENTITY_TARGETS
        if signs_in:
            env["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] = pulumi.Output.concat(
                "ClientId=", self.identity.client_id, ";Authorization=AAD"
            )
        c = self.data_collection
        if c is None or not signs_in:
            return env | {"DATA_COLLECTION_ENABLED": "false"}
        return env | {
            "DATA_COLLECTION_ENABLED": "true",
            "DATA_COLLECTION_BLOB_URL": c.container_url,
            "DATA_COLLECTION_CONTAINER": c.container,
            "DATA_COLLECTION_SAMPLING_RATE": f"{o.sampling_rate:g}",
        }

    def cache_env(
        self, *, signs_in_as: pulumi.Input[str] | None
    ) -> tuple[dict[str, pulumi.Input[str]], SecretRef | None]:
        """The cache's settings for one target, and the key it must keep secret (or None).

        ``signs_in_as``: the principal (object) ID the target's containers run as, holding a
        data access policy on the cache (the pull identity for App Service, Functions and ACI;
        the endpoint's own identity for Azure ML). They sign in with Entra ID and get no key.
        None (AKS pods: no workload identity): the access key. With neither (an Entra-only
        existing cache and no identity) the target runs without the cache: no settings at all.
        """
        c = self.cache
        if c is None:
            return {}, None
        env: dict[str, pulumi.Input[str]] = {
            "REDIS_HOST": c.host,
            "REDIS_PORT": str(c.port),
            "REDIS_SSL": "true",
            "CACHE_TTL_SECONDS": str(self.settings.scoring.cache_ttl_seconds),
            **({"REDIS_CLUSTER": "true"} if c.cluster else {}),
        }
        if signs_in_as is not None and c.entra_id:
            return env | {"REDIS_USE_ENTRA_ID": "true", "REDIS_USERNAME": signs_in_as}, None
        if c.password is not None:
            return env, c.password
        return {}, None


@dataclass(frozen=True)
class Endpoint:
    """What a target returns: the entry of the ``endpoints`` stack output for that target."""

    scoring_uri: pulumi.Input[str]
    swagger_uri: pulumi.Input[str] | None
    health_uri: pulumi.Input[str] | None
    auth_scheme: str
    key: pulumi.Input[str] | None = None  # marked secret in the outputs
    extra: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def for_host(
        base_url: pulumi.Input[str],
        auth_scheme: str,
        key: pulumi.Input[str] | None = None,
        **extra: Any,
    ) -> Endpoint:
        """The endpoint of a container running the scoring host at ``base_url``."""
        base = pulumi.Output.from_input(base_url).apply(lambda b: b.rstrip("/"))
        return Endpoint(
            scoring_uri=pulumi.Output.concat(base, SCORE_PATH),
            swagger_uri=pulumi.Output.concat(base, SWAGGER_PATH),
            health_uri=pulumi.Output.concat(base, READINESS_PATH),
            auth_scheme=auth_scheme,
            key=key,
            extra=extra,
        )

    def to_output(self) -> dict[str, Any]:
        auth: dict[str, Any] = {"scheme": self.auth_scheme}
        if self.auth_scheme in (AUTH_BEARER_KEY, AUTH_AML_KEY):
            auth["header"] = "Authorization: Bearer <key>"
        elif self.auth_scheme == AUTH_FUNCTION_KEY:
            auth["header"] = "x-functions-key: <key>"
        if self.key is not None:
            auth["key"] = pulumi.Output.secret(self.key)
        return {
            "scoring_uri": self.scoring_uri,
            "swagger_uri": self.swagger_uri,
            "health_uri": self.health_uri,
            "auth": auth,
            **self.extra,
        }


class ScoringTarget(pulumi.ComponentResource):
    """Base of every target component: it exposes ``endpoint`` (and registers it as output)."""

    endpoint: Endpoint

    def _finish(self, endpoint: Endpoint, **outputs: Any) -> None:
        self.endpoint = endpoint
        self.register_outputs({"endpoint": endpoint.to_output(), **outputs})


# ---------------------------------------------------------------------------------------------
# The standard interfaces: what every component contributes, in one shape
# ---------------------------------------------------------------------------------------------
# As the Azure Verified Modules give every module the same interfaces (diagnostic settings,
# private endpoints, role assignments, outputs: https://azure.github.io/Azure-Verified-Modules/
# specs/shared/interfaces/), every platform component and every target here says what it
# contributes through :class:`Interfaces`; ``__main__.py`` collects them in one loop.


@dataclass(frozen=True)
class DiagnosticSource:
    """One resource that sends its logs and/or metrics to Log Analytics (a diagnostic setting,
    components/platform/diagnostics.py). ``categories``: log categories instead of ``allLogs``."""

    name: str  # the logical name of its diagnostic setting
    resource_id: pulumi.Input[str]
    logs: bool = True
    metrics: bool = True
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrivateEndpointSpec:
    """One private endpoint: ``name`` (short, unique, e.g. ``kv``), the target's ARM ID, the
    sub-resource (group ID) it connects, and the private DNS zones its names resolve in
    (components/platform/private_endpoints.py declares them under network isolation)."""

    name: str
    resource_id: pulumi.Input[str]
    group_id: str
    zones: tuple[str, ...]


@dataclass(frozen=True)
class WebSite:
    """Alerts on a web or function app's platform HTTP metrics."""

    name: str
    site_id: pulumi.Input[str]


@dataclass(frozen=True)
class AksWorkload:
    """Alerts on the scoring pods of an AKS cluster (restarts, replicas at the maximum)."""

    cluster_id: pulumi.Input[str]
    workload: str  # the scoring Deployment's name: its pods are <workload>-<replicaset>-<pod>
    max_replicas: int | None  # the autoscaler's maximum; None without autoscaling


@dataclass(frozen=True)
class AmlEndpoint:
    """Alerts on an Azure ML online endpoint's traffic log."""

    endpoint_name: pulumi.Input[str]


@dataclass(frozen=True)
class MetricRule:
    """One metric alert rule on a platform metric: its name, namespace, aggregation and dimension
    names as the resource type's Azure Monitor supported-metrics reference spells them."""

    name: str  # logical name, <endpoint>-<what>
    description: str
    severity: int
    metric_namespace: str
    metric_name: str
    time_aggregation: str  # Average | Minimum | Maximum | Total | Count
    operator: str  # GreaterThan | GreaterThanOrEqual | ...
    threshold: float
    dimensions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, values included)
    window: str = "PT5M"


@dataclass(frozen=True)
class PlatformMetrics:
    """Metric alert rules on one resource's platform metrics (Container Apps)."""

    resource_id: pulumi.Input[str]
    rules: tuple[MetricRule, ...]


AlertTarget = WebSite | AksWorkload | AmlEndpoint | PlatformMetrics


@dataclass(frozen=True)
class Interfaces:
    """What one component contributes to the stack: its scoring endpoints (by ``endpoints``
    output key), diagnostic sources, alert targets, private endpoints and stack outputs."""

    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    diagnostics: tuple[DiagnosticSource, ...] = ()
    alerts: tuple[AlertTarget, ...] = ()
    private_endpoints: tuple[PrivateEndpointSpec, ...] = ()
    outputs: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Standard(Protocol):
    """A component with the standard interfaces."""

    def interfaces(self) -> Interfaces: ...


def collect(parts: Iterable[Standard]) -> Interfaces:
    """Every part's contributions in one :class:`Interfaces`, in the parts' order. A name given
    twice (an endpoint, a diagnostic setting, a private endpoint, an output) is a programming
    error: two resources or outputs would share it."""
    found = [p.interfaces() for p in parts]
    merged = Interfaces(
        endpoints=_unique("endpoint", ((k, v) for i in found for k, v in i.endpoints.items())),
        diagnostics=tuple(d for i in found for d in i.diagnostics),
        alerts=tuple(a for i in found for a in i.alerts),
        private_endpoints=tuple(e for i in found for e in i.private_endpoints),
        outputs=_unique("stack output", ((k, v) for i in found for k, v in i.outputs.items())),
    )
    _unique("diagnostic source", ((d.name, d) for d in merged.diagnostics))
    _unique("private endpoint", ((e.name, e) for e in merged.private_endpoints))
    return merged


def _unique(what: str, pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"{what} {key!r} contributed twice")
        found[key] = value
    return found


# ---------------------------------------------------------------------------------------------
# The list of targets (components/targets/all.py)
# ---------------------------------------------------------------------------------------------
P = TypeVar("P")


@dataclass(frozen=True)
class TargetEntry(Generic[P]):
    """One target in the list ``__main__.py`` walks: switched on by ``enabled(settings)``,
    declared by ``build(the deployment addressed to it, the platform)``."""

    key: str  # the target's name: SCORING_ENDPOINT_NAME, and its ``endpoints`` output key
    enabled: Callable[[Settings], bool]
    build: Callable[[ScoringDeployment, P], Standard]
