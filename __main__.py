"""mlscore: one trained model, one scoring image, every Azure hosting target.

Pulumi.<stack>.yaml ─► Settings (validated: every problem at once, before any resource)
                           │
Platform    resource group · monitoring (Log Analytics + App Insights) · registry (no admin)
            ML workspace (storage, key vault) · pull identity (AcrPull) · scoring keys
            scoring image (built from scoring/, pushed with an Entra token) · Redis cache
            (before the workspace: prod's managed VNet has an inline rule to it)
            prod: VNet + private endpoints for every data plane · collected-data container
                           │  ScoringDeployment: the same inputs for every target
Targets     components/targets/all.py, in order: App Service · Functions · ACI · Azure ML
            (model, online, batch) · IoT Edge · AKS (KEDA, accelerator); each is switched on
            by its settings and says what it contributes (contract.Interfaces)
                           │  endpoints · diagnostic sources · alert targets · outputs
Observe     diagnostic settings (every source -> Log Analytics) · alert rules (alertsEnabled)
Outputs     endpoints · resource group · what each part adds: registry, workspace, identity,
            image, redis, network, model, ...   (secrets marked secret)
"""

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.resources as resources

from components.contract import NetworkRef, ScoringDeployment, Standard, collect
from components.platform.alerts import Alerts, AlertsArgs, host_endpoints
from components.platform.build_context import assemble
from components.platform.bundle import Platform
from components.platform.cache import PredictionCache, PredictionCacheArgs
from components.platform.data_collection import DataCollection, DataCollectionArgs
from components.platform.diagnostics import Diagnostics, DiagnosticsArgs
from components.platform.identity import ScoringIdentity, ScoringIdentityArgs
from components.platform.image import ScoringImage, ScoringImageArgs
from components.platform.monitoring import Monitoring, MonitoringArgs
from components.platform.network import Network, NetworkArgs
from components.platform.private_endpoints import PrivateEndpoints, PrivateEndpointsArgs
from components.platform.registry import Registry, RegistryArgs
from components.platform.scoring_keys import ScoringKeys, ScoringKeysArgs
from components.platform.workspace import MlWorkspace, MlWorkspaceArgs
from components.settings import from_pulumi
from components.targets.all import TARGETS

s = from_pulumi()  # raises SettingsError listing every bad key before anything is declared
client = authorization.get_client_config_output()

# --- Platform ---------------------------------------------------------------------------------
rg = resources.ResourceGroup(
    "rg", resource_group_name=s.naming.resource_group(), location=s.location, tags=dict(s.tags)
)
monitoring = Monitoring("monitoring", MonitoringArgs(s, rg.name))
registry = Registry("registry", RegistryArgs(s, rg.name, client.subscription_id, client.object_id))
cache = (  # every target signs in to it with Entra ID; before the workspace, whose rule names it
    PredictionCache("cache", PredictionCacheArgs(s, rg.name)) if s.redis.enabled else None
)
workspace = MlWorkspace(
    "workspace",
    MlWorkspaceArgs(s, rg.name, client.tenant_id, registry.id, monitoring.app_insights_id, cache),
)
identity = ScoringIdentity(
    "identity",
    ScoringIdentityArgs(s, rg.name, client.subscription_id, registry.id, workspace.key_vault.id),
)
if cache is not None:
    cache.grant_pull_identity(identity.pull_identity)
keys = ScoringKeys("scoring-keys", ScoringKeysArgs(s, rg.name, workspace.vault.name))
# Entra-authenticated telemetry from the targets that run as the pull identity
monitoring.grant_publisher(identity.pull_identity.principal_id, client.subscription_id)
collection = (  # inputs and outputs of the container targets, in the workspace's storage
    DataCollection(
        "data-collection",
        DataCollectionArgs(
            s,
            rg.name,
            client.subscription_id,
            workspace.storage,
            identity.pull_identity,
            workspace.name,
        ),
    )
    if s.observability.data_collection
    else None
)
context = assemble(s.model)  # the build context: host, entry script, dependencies, model
image = ScoringImage(
    "scoring-image",
    ScoringImageArgs(
        login_server=registry.login_server,
        tenant_id=client.tenant_id,
        repository=s.scoring.image_repository,
        context=context,
        after=[registry.push_grant],
    ),
)
platform_parts: list[Standard] = [registry, workspace, identity, image, *([cache] if cache else [])]

# Network isolation (prod): the VNet, and private endpoints for every data plane of the platform
network: NetworkRef | None = None
if s.network.isolated:
    vnet = Network("network", NetworkArgs(s, rg.name))
    private = PrivateEndpoints(
        "private-endpoints",
        PrivateEndpointsArgs(
            s,
            rg.name,
            vnet.id,
            vnet.subnet_ids["private_endpoints"],
            collect(platform_parts).private_endpoints,
        ),
    )
    network = NetworkRef(vnet.id, vnet.subnet_ids, private.zone_ids)
    platform_parts.append(vnet)
    if cache is not None:  # the cache takes one update at a time: its endpoint, then the rest
        cache.reached_through(private)

deployment = ScoringDeployment(
    settings=s,
    resource_group_name=rg.name,
    image=image.ref,
    registry_login_server=registry.login_server,
    identity=identity.pull_identity,
    key_vault=workspace.key_vault,
    scoring_keys=(keys.primary, keys.secondary),
    log_analytics_workspace_id=monitoring.log_analytics_id,
    app_insights_connection_string=monitoring.connection_string,
    cache=cache.connection if cache else None,
    data_collection=collection.ref if collection else None,
    network=network,
)
platform = Platform(
    client.subscription_id,
    client.tenant_id,
    client.object_id,
    registry,
    workspace,
    monitoring,
    cache,
    context,
)

# --- Targets: each takes the ScoringDeployment and says what it contributes ---------------------
targets = [t.build(deployment.for_target(t.key), platform) for t in TARGETS if t.enabled(s)]
parts = collect([*platform_parts, *targets])

# --- Diagnostics and alerts: every source's logs and metrics in Log Analytics; alert rules ------
Diagnostics("diagnostics", DiagnosticsArgs(monitoring.log_analytics_id, parts.diagnostics))
if s.observability.alerts:
    Alerts(
        "alerts",
        AlertsArgs(
            s,
            rg.name,
            monitoring.app_insights_id,
            monitoring.log_analytics_id,
            host_endpoints=host_endpoints(s, parts.endpoints),
            targets=parts.alerts,
        ),
    )

# --- Outputs: the contract client applications read (README, "Stack outputs") ------------------
pulumi.export("endpoints", {name: ep.to_output() for name, ep in parts.endpoints.items()})
pulumi.export("resource_group", rg.name)
for name, value in parts.outputs.items():
    pulumi.export(name, value)
