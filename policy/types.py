"""The resource type tokens the pack checks (pulumi-azure-native v3, pulumi-kubernetes)."""

from __future__ import annotations

REGISTRY = "azure-native:containerregistry:Registry"
WEB_APP = "azure-native:web:WebApp"
WEB_APP_SLOT = "azure-native:web:WebAppSlot"
WEB_APP_SETTINGS = "azure-native:web:WebAppApplicationSettings"
STORAGE = "azure-native:storage:StorageAccount"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
REDIS = "azure-native:redis:Redis"
REDIS_ENTERPRISE = "azure-native:redisenterprise:RedisEnterprise"
REDIS_ENTERPRISE_DB = "azure-native:redisenterprise:Database"
SERVICE_BUS = "azure-native:servicebus:Namespace"
IOT_HUB = "azure-native:iothub:IotHubResource"
KEY_VAULT = "azure-native:keyvault:Vault"
AKS = "azure-native:containerservice:ManagedCluster"
AKS_POOL = "azure-native:containerservice:AgentPool"
ACI = "azure-native:containerinstance:ContainerGroup"
ONLINE_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
K8S_WORKLOADS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod",
)

WEB_APPS = (WEB_APP, WEB_APP_SLOT)
