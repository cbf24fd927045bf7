"""Resource types that cost nothing by themselves, each with the reason: what they use is billed
on another resource of the estimate, or they are not Azure resources at all."""

from __future__ import annotations

_NOT_AZURE = "not an Azure resource"

FREE: dict[str, str] = {
    "azure-native:resources:ResourceGroup": "resource groups have no charge",
    "azure-native:authorization:RoleAssignment": "Azure RBAC role assignments have no charge",
    "azure-native:managedidentity:UserAssignedIdentity": "managed identities have no charge",
    "azure-native:managedidentity:FederatedIdentityCredential": "part of a managed identity",
    "azure-native:keyvault:Secret": "secret operations are counted on the vault",
    "azure-native:containerregistry:ScopeMap": "part of the registry tier",
    "azure-native:containerregistry:Token": "part of the registry tier",
    "azure-native:storage:Blob": "stored bytes are counted on the storage account",
    "azure-native:storage:BlobContainer": "stored bytes are counted on the storage account",
    "azure-native:servicebus:Queue": "operations are counted on the namespace",
    "azure-native:redisenterprise:Database": "the cluster's SKU is the price",
    "azure-native:redisenterprise:AccessPolicyAssignment": "the cluster's SKU is the price",
    "azure-native:web:WebApp": "runs on its App Service plan (the plan is priced)",
    "azure-native:web:WebAppFtpAllowed": "a setting of the web app",
    "azure-native:web:WebAppScmAllowed": "a setting of the web app",
    "azure-native:machinelearningservices:Workspace": (
        "Azure ML has no charge of its own; its compute and associated resources are priced"
    ),
    "azure-native:machinelearningservices:OnlineEndpoint": "its deployments are priced",
    "azure-native:machinelearningservices:BatchEndpoint": "its compute cluster is priced",
    "azure-native:machinelearningservices:BatchDeployment": "runs on the compute cluster (priced)",
    "azure-native:machinelearningservices:CodeContainer": "an asset; bytes in workspace storage",
    "azure-native:machinelearningservices:CodeVersion": "an asset; bytes in workspace storage",
    "azure-native:machinelearningservices:EnvironmentContainer": "an asset of the workspace",
    "azure-native:machinelearningservices:EnvironmentVersion": "an asset; image in the registry",
    "azure-native:machinelearningservices:ModelContainer": "an asset; bytes in workspace storage",
    "azure-native:machinelearningservices:ModelVersion": "an asset; bytes in workspace storage",
    "azure-native:machinelearningservices:Datastore": "a reference to a storage account",
    "azure-native:monitor:DiagnosticSetting": "its destination bills what it ingests",
    "azure-native:monitor:DataCollectionRule": "its destination bills what it ingests",
    "azure-native:monitor:DataCollectionRuleAssociation": "its destination bills what it ingests",
    "azure-native:monitor:DataCollectionEndpoint": "its destination bills what it ingests",
    "azure-native:monitor:AutoscaleSetting": "autoscale has no charge; the plan's instances are",
    "azure-native:network:VirtualNetwork": "virtual networks have no charge (peering and "
    "gateways would)",
    "azure-native:network:NetworkSecurityGroup": "network security groups have no charge",
    "azure-native:network:PrivateDnsZoneGroup": "DNS records of a private endpoint",
    "docker:index/image:Image": "built by the deploying machine; stored in the registry",
    "random:index/randomPassword:RandomPassword": _NOT_AZURE,
    "pulumi:providers:kubernetes": _NOT_AZURE,
    "pulumi-python:dynamic:Resource": "an API call of the deploying machine",
    "pulumi-python:dynamic/acr:TokenPassword": "a password of the registry token",
    "pulumi-python:dynamic/functions:HostKeys": "keys of the function app",
    "pulumi-python:dynamic/aks:GatewayAddress": "a read of the AKS gateway's IP (priced: the "
    "cluster's load balancer)",
    "pulumi-python:dynamic/azure:FeatureRegistration": "a read of a subscription feature's state",
    "pulumi-python:dynamic/storage:RedundancyCheck": "a read of a storage account's SKU",
    "pulumi-python:dynamic/iotedge:Device": "a device identity in the IoT hub (units priced)",
    "pulumi-python:dynamic/iotedge:Deployment": "a deployment in the IoT hub (units priced)",
}

# Types with a price this tool does not compute, each with the reason (listed, never 0).
NOT_PRICED: dict[str, str] = {
    "azure-native:monitor:ActionGroup": "notifications are billed per message beyond a free "
    "allowance; the number of alerts is unknown",
    "azure-native:privatedns:VirtualNetworkLink": "Azure DNS bills links and queries by "
    "volume; no figure recorded",
}

# Kubernetes objects run on the cluster's nodes, which the node pools price.
KUBERNETES_PREFIX = "kubernetes:"
KUBERNETES_REASON = "runs on the cluster's node pools (priced)"


def free_reason(type_: str) -> str | None:
    if type_ in FREE:
        return FREE[type_]
    if type_.startswith(KUBERNETES_PREFIX):
        return KUBERNETES_REASON
    return None
