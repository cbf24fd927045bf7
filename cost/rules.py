"""One pricing rule per resource type, reading the resource's declared inputs.

``RULES`` prices a type (``compute.py``, ``services.py``), ``free.FREE`` says why a type costs
nothing by itself (what it uses is billed elsewhere), ``free.NOT_PRICED`` why one is not
estimated; tests/cost/test_coverage.py keeps every type the dev and prod programs declare in one
of them.
"""

from __future__ import annotations

from cost import compute as c
from cost import services as s
from cost.lines import Context, Rule

__all__ = ["RULES", "Context", "Rule"]

RULES: dict[str, Rule] = {
    "azure-native:web:AppServicePlan": c.app_service_plan,
    "azure-native:containerservice:ManagedCluster": c.aks_cluster,
    "azure-native:containerservice:AgentPool": c.aks_pool,
    "azure-native:redisenterprise:RedisEnterprise": s.managed_redis,
    "azure-native:containerinstance:ContainerGroup": c.container_group,
    "azure-native:app:ContainerApp": c.container_app,
    "azure-native:app:ManagedEnvironment": c.managed_environment,
    "azure-native:containerregistry:Registry": c.registry,
    "azure-native:machinelearningservices:OnlineDeployment": c.online_deployment,
    "azure-native:machinelearningservices:Compute": c.aml_compute,
    "azure-native:machinelearningservices:ManagedNetworkSettingsRule": s.managed_network_rule,
    "azure-native:iothub:IotHubResource": s.iot_hub,
    "azure-native:servicebus:Namespace": s.service_bus,
    "azure-native:keyvault:Vault": s.key_vault,
    "azure-native:storage:StorageAccount": s.storage_account,
    "azure-native:operationalinsights:Workspace": s.log_analytics,
    "azure-native:applicationinsights:Component": s.app_insights,
    "azure-native:monitor:AzureMonitorWorkspace": s.prometheus_workspace,
    "azure-native:network:PrivateEndpoint": s.private_endpoint,
    "azure-native:privatedns:PrivateZone": s.private_zone,
    "azure-native:monitor:ScheduledQueryRule": s.log_alert,
    "azure-native:monitor:MetricAlert": s.metric_alert,
}
