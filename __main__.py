"""mlscore: one trained model, one scoring image, every Azure hosting target.

Pulumi.<stack>.yaml ─► Settings (validated: every problem at once, before any resource)
                           │
Platform    resource group · monitoring (Log Analytics + App Insights) · registry (no admin)
            ML workspace (storage, key vault) · pull identity (AcrPull) · scoring keys
            scoring image (built from scoring/, pushed with an Entra token) · Redis cache
                           │  ScoringDeployment: the same inputs for every target
Targets     App Service · Functions · ACI · AKS (+HPA, accelerator) · IoT Edge · Azure ML
                           │  Endpoint: scoring / swagger / health URI + auth, per target
Outputs     endpoints · registry · workspace · identity · image   (secrets marked secret)
"""

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.resources as resources

from components.config.settings import from_pulumi
from components.contract import Endpoint, ScoringDeployment
from components.platform.build_context import assemble
from components.platform.cache import PredictionCache, PredictionCacheArgs
from components.platform.identity import ScoringIdentity, ScoringIdentityArgs
from components.platform.image import ScoringImage, ScoringImageArgs
from components.platform.monitoring import Monitoring, MonitoringArgs
from components.platform.registry import Registry, RegistryArgs
from components.platform.scoring_keys import ScoringKeys, ScoringKeysArgs
from components.platform.workspace import MlWorkspace, MlWorkspaceArgs
from components.targets.aci.target import AciTarget, AciTargetArgs
from components.targets.aks.cluster import AksCluster, AksClusterArgs
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
        PredictionCacheArgs(
            s,
            rg.name,
            workspace.vault.name,
            identity.pull_identity,
            store_key=s.aks.enabled,  # AKS pods are the only target without an identity for it
        ),
    )
    if s.redis.enabled
    else None
)

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
)

# --- Targets: each takes the ScoringDeployment and returns an Endpoint --------------------------
endpoints: dict[str, Endpoint] = {}
if s.app_service.enabled:
    endpoints["app_service"] = AppServiceTarget(
        "app-service", AppServiceTargetArgs(deployment.for_target("app_service"))
    ).endpoint
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
if s.online.enabled:
    endpoints["aml_online"] = AmlOnline(
        "aml-online",
        AmlOnlineArgs(deployment.for_target("aml_online"), workspace.name, model.id, cache),
    ).endpoint
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
if s.aks.enabled:  # cluster (>= 12 vCPUs, or attached by ID) + scoring Deployment/Service/HPA
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
        ),
    )
    aks_scoring = AksScoring(
        "aks-scoring",
        AksScoringArgs(
            deployment.for_target("aks"), aks.kubeconfig, aks.name, aks.grants, aks.accelerator_pool
        ),
    )
    endpoints["aks"] = aks_scoring.endpoint
    if aks_scoring.accelerator_endpoint is not None:  # the seeds' FPGA service, or GPU
        endpoints["aks_accelerator"] = aks_scoring.accelerator_endpoint

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
if aks is not None:
    pulumi.export("aks", {"cluster_name": aks.name, "fqdn": aks.fqdn, "kubeconfig": aks.kubeconfig})
