"""mlscore: one trained model, one scoring image, every Azure hosting target.

Pulumi.<stack>.yaml ─► Settings (validated: every problem at once, before any resource)
                           │
Platform    resource group · monitoring (Log Analytics + App Insights) · registry (no admin)
            ML workspace (storage, key vault) · pull identity (AcrPull) · scoring keys
            scoring image (built from scoring/, pushed with an Entra token) · Redis cache
                           │  ScoringDeployment: the same inputs for every target
Targets     App Service · Functions · ACI · AKS (+HPA, accelerator) · IoT Edge · Azure ML
                           │  Endpoint: scoring / swagger / health URI + auth, per target
Observe     diagnostic settings (every resource -> Log Analytics) · alert rules (alertsEnabled)
Outputs     endpoints · registry · workspace · identity · image   (secrets marked secret)
"""

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.resources as resources

from components.config.settings import from_pulumi
from components.contract import Endpoint, NetworkRef, ScoringDeployment
from components.platform import diagnostics as diag
from components.platform.alerts import AksWorkload, Alerts, AlertsArgs, WebSite, host_endpoints
from components.platform.build_context import assemble
from components.platform.cache import PredictionCache, PredictionCacheArgs
from components.platform.data_collection import DataCollection, DataCollectionArgs
from components.platform.diagnostics import Diagnostics, DiagnosticsArgs
from components.platform.identity import ScoringIdentity, ScoringIdentityArgs
from components.platform.image import ScoringImage, ScoringImageArgs
from components.platform.monitoring import Monitoring, MonitoringArgs
from components.platform.network import Network, NetworkArgs
from components.platform.private_endpoints import (
    PrivateEndpoints,
    PrivateEndpointsArgs,
    platform_endpoints,
)
from components.platform.registry import Registry, RegistryArgs
from components.platform.scoring_keys import ScoringKeys, ScoringKeysArgs
from components.platform.workspace import MlWorkspace, MlWorkspaceArgs
from components.targets.aci.target import AciTarget, AciTargetArgs
from components.targets.aks.cluster import AksCluster, AksClusterArgs
from components.targets.aks.manifests import APP as AKS_WORKLOAD
from components.targets.aks.workload import AksScoring, AksScoringArgs
from components.targets.aml.batch import AmlBatch, AmlBatchArgs
from components.targets.aml.model import AmlModel, AmlModelArgs
from components.targets.aml.online import AmlOnline, AmlOnlineArgs
from components.targets.app_service.target import AppServiceTarget, AppServiceTargetArgs
from components.targets.functions.target import FunctionsTarget, FunctionsTargetArgs
from components.targets.iot.target import IotEdgeTarget, IotEdgeTargetArgs

s = from_pulumi()  # raises SettingsError listing every bad key before anything is declared
client = authorization.get_client_config_output()

# --- Platform ---------------------------------------------------------------------------------
rg = resources.ResourceGroup(
    "rg", resource_group_name=s.naming.resource_group(), location=s.location, tags=dict(s.tags)
)
monitoring = Monitoring("monitoring", MonitoringArgs(s, rg.name))
registry = Registry("registry", RegistryArgs(s, rg.name, client.subscription_id, client.object_id))
workspace = MlWorkspace(
    "workspace",
    MlWorkspaceArgs(s, rg.name, client.tenant_id, registry.id, monitoring.app_insights_id),
)
identity = ScoringIdentity(
    "identity",
    ScoringIdentityArgs(s, rg.name, client.subscription_id, registry.id, workspace.key_vault.id),
)
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
cache = (
    PredictionCache(
        "cache",
        PredictionCacheArgs(s, rg.name, identity.pull_identity),  # every target signs in with Entra
    )
    if s.redis.enabled
    else None
)
# Network isolation (prod): the VNet, and private endpoints for every data plane of the platform
vnet: Network | None = None
platform_endpoints_: PrivateEndpoints | None = None
if s.network.isolated:
    vnet = Network("network", NetworkArgs(s, rg.name))
    platform_endpoints_ = PrivateEndpoints(
        "private-endpoints",
        PrivateEndpointsArgs(
            s,
            rg.name,
            vnet.id,
            vnet.subnet_ids["private_endpoints"],
            platform_endpoints(
                s,
                key_vault_id=workspace.key_vault.id,
                storage_id=workspace.storage.id,
                registry_id=registry.id,
                workspace_id=workspace.workspace.id,
                cache_id=cache.cache.id if cache and cache.cache else None,
            ),
        ),
    )
    if cache is not None and cache.cache is not None:  # the online deployments' way to the cache
        group = "redisEnterprise" if s.redis.managed else "redisCache"
        workspace.allow_private_outbound("cache", cache.cache.id, group)

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
    network=NetworkRef(vnet.id, vnet.subnet_ids, platform_endpoints_.zone_ids)
    if vnet is not None and platform_endpoints_ is not None
    else None,
)

# --- Targets: each takes the ScoringDeployment and returns an Endpoint --------------------------
endpoints: dict[str, Endpoint] = {}
app_service: AppServiceTarget | None = None
if s.app_service.enabled:
    app_service = AppServiceTarget(
        "app-service", AppServiceTargetArgs(deployment.for_target("app_service"))
    )
    endpoints["app_service"] = app_service.endpoint
functions: FunctionsTarget | None = None
if s.functions.enabled:
    functions_image = ScoringImage(  # the function host image: same scoring core, three triggers
        "functions-image",
        ScoringImageArgs(
            login_server=registry.login_server,
            tenant_id=client.tenant_id,
            repository=f"{s.scoring.image_repository}-functions",
            context=assemble(s.model, "functions"),
            after=[registry.push_grant],
        ),
    )
    functions = FunctionsTarget(
        "functions",
        FunctionsTargetArgs(
            deployment.for_target("functions"), client.subscription_id, functions_image.ref
        ),
    )
    endpoints["functions"] = functions.endpoint
if s.aci.enabled:
    endpoints["aci"] = AciTarget("aci", AciTargetArgs(deployment.for_target("aci"))).endpoint
# Azure ML: the model registered in the workspace, served by a managed online endpoint (blue/green)
# and by batch scoring on a cluster that scales to zero.
model = AmlModel(
    "model",
    AmlModelArgs(
        s,
        rg.name,
        client.subscription_id,
        workspace.name,
        workspace.storage.name,
        context.model_files,  # the same bytes the images carry
        context.build_args["MODEL_SOURCE"],
    ),
)
online: AmlOnline | None = None
if s.online.enabled:
    online = AmlOnline(
        "aml-online",
        AmlOnlineArgs(deployment.for_target("aml_online"), workspace.name, model.id, cache),
    )
    endpoints["aml_online"] = online.endpoint
batch: AmlBatch | None = None
if s.batch.enabled:
    batch = AmlBatch(
        "aml-batch", AmlBatchArgs(s, rg.name, workspace.name, workspace.storage.name, model)
    )
iot: IotEdgeTarget | None = None
if s.iot.enabled:  # hub, edge device, scoring module; endpoint only if the device is addressable
    iot = IotEdgeTarget(
        "iot-edge", IotEdgeTargetArgs(deployment.for_target("iot_edge"), registry.name, registry.id)
    )
    if iot.endpoint is not None:
        endpoints["iot_edge"] = iot.endpoint
aks: AksCluster | None = None
if s.aks.enabled:  # cluster (>= 12 vCPUs, or attached) + scoring behind TLS ingress, KEDA
    aks = AksCluster(
        "aks",
        AksClusterArgs(
            s,
            rg.name,
            client.subscription_id,
            client.tenant_id,
            registry.id,
            monitoring.log_analytics_id,
            client.object_id,
            network=deployment.network,
        ),
    )
    aks_scoring = AksScoring(
        "aks-scoring",
        AksScoringArgs(
            deployment.for_target("aks"),
            aks.kubeconfig,
            aks.name,
            aks.grants,
            aks.accelerator_pool,
            tenant_id=client.tenant_id,
            oidc_issuer_url=aks.oidc_issuer_url,
            prometheus_query_endpoint=aks.prometheus.query_endpoint,
            keda_client_id=aks.prometheus.keda_identity.client_id,
        ),
    )
    endpoints["aks"] = aks_scoring.endpoint
    if aks_scoring.accelerator_endpoint is not None:  # the seeds' FPGA service, or GPU
        endpoints["aks_accelerator"] = aks_scoring.accelerator_endpoint

# --- Diagnostics and alerts: every resource's logs and metrics in Log Analytics; alert rules ----
sources = [
    *diag.resource("key-vault", workspace.vault.id),
    *diag.resource("registry", registry.id),
    *diag.resource("ml-workspace", workspace.workspace.id),
    *diag.storage_account("ml-storage", workspace.storage.id),
]
if cache and cache.database is not None and cache.cache is not None:  # Azure Managed Redis
    sources += diag.managed_redis("redis", cache.cache.id, cache.database.id)
elif cache and cache.cache is not None:  # Azure Cache for Redis
    sources += diag.resource("redis", cache.cache.id)
if app_service is not None:
    sources += diag.resource("web-app", app_service.web_app.id)
if functions is not None:
    sources += [
        *diag.resource("function-app", functions.app.id),
        *diag.storage_account("functions-host-storage", functions.host_storage.id),
        *diag.storage_account("functions-trigger-storage", functions.trigger_storage.id),
        *diag.resource("service-bus", functions.service_bus.id),
    ]
if online is not None:
    sources += diag.resource("online-endpoint", online.online_endpoint.id)
if iot is not None:
    sources += diag.resource("iot-hub", iot.hub.id)
if aks is not None and not s.aks.existing_cluster_id:  # an attached cluster is not ours to change
    sources += diag.aks_cluster("aks", aks.id)
Diagnostics("diagnostics", DiagnosticsArgs(monitoring.log_analytics_id, sources))
if s.observability.alerts:
    Alerts(
        "alerts",
        AlertsArgs(
            s,
            rg.name,
            monitoring.app_insights_id,
            monitoring.log_analytics_id,
            host_endpoints=host_endpoints(s, endpoints),
            sites=[
                *([WebSite("app_service", app_service.web_app.id)] if app_service else []),
                *([WebSite("functions", functions.app.id)] if functions else []),
            ],
            aml_endpoint_name=online.online_endpoint.name if online else None,
            aks=AksWorkload(
                aks.id,
                AKS_WORKLOAD,
                s.aks.autoscale.effective_max_replicas if s.aks.autoscale.enabled else None,
            )
            if aks is not None
            else None,
        ),
    )

# --- Outputs: the contract client applications read (README, "Stack outputs") ------------------
pulumi.export("endpoints", {name: ep.to_output() for name, ep in endpoints.items()})
pulumi.export("resource_group", rg.name)
pulumi.export("registry", {"name": registry.name, "login_server": registry.login_server})
pulumi.export("image", image.ref)
pulumi.export(
    "workspace",
    {
        "name": workspace.name,
        "storage_account": workspace.storage.name,
        "key_vault_uri": workspace.key_vault.uri,
    },
)
pulumi.export(
    "identity",
    {
        "client_id": identity.identity.client_id,
        "principal_id": identity.identity.principal_id,  # for access policies on an existing Redis
        "id": identity.identity.id,
    },
)
pulumi.export("model", {"name": model.model_name, "version": model.version, "id": model.id})
if batch is not None:
    pulumi.export("batch", batch.outputs)
if functions is not None:
    pulumi.export("functions", functions.summary)
if iot is not None:
    pulumi.export("iot", iot.summary)
if cache:
    pulumi.export("redis", {"host": cache.connection.host, "port": cache.connection.port})
if vnet is not None:
    pulumi.export("network", vnet.outputs())
if aks is not None:
    pulumi.export(
        "aks",
        {
            "cluster_name": aks.name,
            "fqdn": aks.fqdn,
            "kubeconfig": aks.kubeconfig,
            "oidc_issuer_url": aks.oidc_issuer_url,
            "prometheus_query_endpoint": aks.prometheus.query_endpoint,
        },
    )
