"""What the fake Azure answers: computed outputs of resources and results of provider functions.

Only used by the mock engine. In ``preview`` mode the engine leaves computed outputs unknown, as
a real ``pulumi preview`` does; in ``deploy`` mode (tests) it fills them in with the values below
so that wiring (URIs built from the right hosts, IDs passed to the right places) can be asserted.
What can be derived from a resource's inputs is derived for every type (:func:`computed`): the
ARM ID from the type token, and the principals Azure creates for a managed identity (system- or
user-assigned). Add a line to ``COMPUTED`` only for what is specific to one type (a host name, an
endpoint URI), and to ``CALLS`` when a component calls a provider function.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from typing import Any

SUBSCRIPTION = "00000000-0000-0000-0000-00000000000a"
TENANT = "00000000-0000-0000-0000-00000000000b"
DEPLOYER = "00000000-0000-0000-0000-00000000000c"
RESOURCE_GROUP = "rg-fake"


def fake_uuid(seed: str) -> str:
    return str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32]))


def fake_secret(seed: str, length: int = 40) -> str:
    return hashlib.sha256(f"secret:{seed}".encode()).hexdigest()[:length]


def fake_key(seed: str) -> str:
    """A base64 symmetric key, as IoT Hub issues them (SAS signing decodes it)."""
    return base64.b64encode(hashlib.sha256(f"key:{seed}".encode()).digest()).decode()


def fake_aks_kubeconfig(cluster: str) -> str:
    """A valid Entra ID kubeconfig as AKS returns it: kubelogin exec plugin, device code login."""
    server = f"https://{cluster}-{fake_secret(cluster, 8)}.hcp.westeurope.azmk8s.io:443"
    ca = base64.b64encode(f"fake CA of {cluster}".encode()).decode()
    user = f"clusterUser_rg_{cluster}"
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: {cluster}\n"
        "  cluster:\n"
        f"    certificate-authority-data: {ca}\n"
        f"    server: {server}\n"
        "contexts:\n"
        f"- name: {cluster}\n"
        "  context:\n"
        f"    cluster: {cluster}\n"
        f"    user: {user}\n"
        f"current-context: {cluster}\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {user}\n"
        "  user:\n"
        "    exec:\n"
        "      apiVersion: client.authentication.k8s.io/v1beta1\n"
        "      command: kubelogin\n"
        "      args: [get-token, --environment, AzurePublicCloud, --server-id,\n"
        "             6dae42f8-4368-4678-94ff-3960e28e3630, --client-id,\n"
        f"             80faf920-1908-4b52-b5ef-a8e7bedfc67a, --tenant-id, {TENANT},\n"
        "             --login, devicecode]\n"
        "      interactiveMode: IfAvailable\n"
        "      provideClusterInfo: false\n"
    )


def fake_oidc_issuer(cluster: str) -> str:
    """An AKS OIDC issuer URL (workload identity), as AKS returns it."""
    return f"https://westeurope.oic.prod-aks.azure.com/{TENANT}/{fake_uuid(f'oidc:{cluster}')}/"


def azure_name(type_: str, name: str, inputs: dict[str, Any]) -> str:
    """The Azure name of a resource: its explicit ``<x>Name`` input, else the logical name."""
    last = type_.split(":")[-1]
    own = last[0].lower() + last[1:] + "Name"
    names = ("resourceName", "containerName", "accountName", "name")
    for key in (own, *names, "deploymentName", "endpointName"):
        if isinstance(inputs.get(key), str):
            return inputs[key]
    for key, value in inputs.items():
        if key.endswith("Name") and key != "resourceGroupName" and isinstance(value, str):
            return value
    return name


def arm_id(type_: str, name: str) -> str:
    _, module, resource = [*type_.split(":"), "", "", ""][:3]
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
        f"Microsoft.{module.capitalize()}/{resource}/{name}"
    )


def unwrap(value: Any) -> Any:
    """Inputs as the provider would see them: secret wrappers removed."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            return unwrap(value.get("value"))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

Outputs = Callable[[str, dict[str, Any]], dict[str, Any]]


def identity_outputs(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """``identity`` as Azure returns it, for any resource type that has one.

    System-assigned: Azure creates a principal (``principalId``, ``tenantId``). User-assigned:
    the input list of identity IDs becomes a map of ID -> {clientId, principalId} (the SDK's
    output type is a map and refuses a list).
    """
    identity = inputs.get("identity")
    if not isinstance(identity, dict):
        return {}
    kind = str(identity.get("type", ""))
    out = dict(identity)
    if "SystemAssigned" in kind:
        out |= {"principalId": fake_uuid(f"principal:{name}"), "tenantId": TENANT}
    ids = identity.get("userAssignedIdentities")
    if isinstance(ids, list):
        out["userAssignedIdentities"] = {
            str(i): {
                "clientId": fake_uuid(f"client:{i}"),
                "principalId": fake_uuid(f"principal:{i}"),
            }
            for i in ids
        }
    return {"identity": out} if out != identity else {}


def computed(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What Azure computes for a resource: the derived outputs, then the type's own."""
    own = COMPUTED.get(type_)
    return {**identity_outputs(name, inputs), **(own(name, inputs) if own else {})}


def container_apps_domain(environment: str, location: str) -> str:
    return (
        f"{hashlib.sha256(environment.encode()).hexdigest()[:10]}.{location}.azurecontainerapps.io"
    )


def container_app_outputs(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """An app's FQDN under its environment's domain (the environment named in its ID)."""
    env = str(inputs.get("environmentId", "env")).rsplit("/", 1)[-1]
    fqdn = f"{name}.{container_apps_domain(env, str(inputs.get('location', 'westeurope')))}"
    config = dict(inputs.get("configuration", {}))
    if "ingress" in config:
        config["ingress"] = {**config["ingress"], "fqdn": fqdn}
    revision = f"{name}--{hashlib.sha256(repr(inputs.get('template')).encode()).hexdigest()[:7]}"
    return {
        "configuration": config,
        "latestRevisionName": revision,
        "latestRevisionFqdn": f"{revision}.{fqdn.split('.', 1)[1]}",
    }


# type token -> (azure name, inputs) -> computed outputs
COMPUTED: dict[str, Outputs] = {
    "azure-native:containerregistry:Registry": lambda n, i: {"loginServer": f"{n}.azurecr.io"},
    "azure-native:managedidentity:UserAssignedIdentity": lambda n, i: {
        "clientId": fake_uuid(f"client:{n}"),
        "principalId": fake_uuid(f"principal:{n}"),
        "tenantId": TENANT,
    },
    "azure-native:keyvault:Vault": lambda n, i: {
        "properties": {**i.get("properties", {}), "vaultUri": f"https://{n}.vault.azure.net/"}
    },
    "azure-native:keyvault:Secret": lambda n, i: {
        "properties": {
            **{k: v for k, v in i.get("properties", {}).items() if k != "value"},
            "secretUri": f"https://{i.get('vaultName', 'vault')}.vault.azure.net/secrets/{n}",
        }
    },
    "azure-native:applicationinsights:Component": lambda n, i: {
        "connectionString": f"InstrumentationKey={fake_uuid(n)};IngestionEndpoint=https://x/",
        "instrumentationKey": fake_uuid(n),
    },
    "azure-native:operationalinsights:Workspace": lambda n, i: {"customerId": fake_uuid(n)},
    # Azure ML endpoints: Azure computes the scoring (batch: invocation) and swagger URIs.
    "azure-native:machinelearningservices:OnlineEndpoint": lambda n, i: {
        "properties": {
            **i.get("properties", {}),
            "scoringUri": f"https://{n}.{i.get('location')}.inference.ml.azure.com/score",
            "swaggerUri": f"https://{n}.{i.get('location')}.inference.ml.azure.com/swagger.json",
            "provisioningState": "Succeeded",
        },
    },
    "azure-native:machinelearningservices:BatchEndpoint": lambda n, i: {
        "properties": {
            **i.get("properties", {}),
            "scoringUri": f"https://{n}.{i.get('location')}.inference.ml.azure.com/jobs",
            "provisioningState": "Succeeded",
        }
    },
    # AKS (components/targets/aks/): the API server FQDN, the kubelet identity that gets AcrPull,
    # and the public IP Azure gives a LoadBalancer Service.
    "azure-native:containerservice:ManagedCluster": lambda n, i: {
        "fqdn": f"{i.get('dnsPrefix', n)}-{fake_secret(n, 8)}.hcp.{i.get('location')}.azmk8s.io",
        "oidcIssuerProfile": {**i.get("oidcIssuerProfile", {}), "issuerURL": fake_oidc_issuer(n)},
        "identityProfile": {
            "kubeletidentity": {
                "clientId": fake_uuid(f"kubelet-client:{n}"),
                "objectId": fake_uuid(f"kubelet-object:{n}"),
                "resourceId": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/MC_{n}/providers/"
                f"Microsoft.ManagedIdentity/userAssignedIdentities/{n}-agentpool",
            }
        },
    },
    # Azure Monitor workspace (managed Prometheus): its PromQL query endpoint.
    "azure-native:monitor:AzureMonitorWorkspace": lambda n, i: {
        "metrics": {
            "prometheusQueryEndpoint": f"https://{n}-{fake_secret(n, 4)}."
            f"{i.get('location', 'westeurope')}.prometheus.monitor.azure.com",
            "internalId": fake_uuid(f"amw:{n}"),
        }
    },
    "kubernetes:core/v1:Service": lambda n, i: {
        "status": {"loadBalancer": {"ingress": [{"ip": "20.50.0." + str(len(n) % 200 + 10)}]}}
    },
    "azure-native:storage:StorageAccount": lambda n, i: {
        "primaryEndpoints": {
            kind: f"https://{n}.{kind}.core.windows.net/"
            for kind in ("blob", "queue", "table", "file", "dfs", "web")
        }
    },
    "azure-native:web:WebApp": lambda n, i: {"defaultHostName": f"{n}.azurewebsites.net"},
    "azure-native:servicebus:Namespace": lambda n, i: {
        "serviceBusEndpoint": f"https://{n}.servicebus.windows.net:443/"
    },
    "azure-native:redis:Redis": lambda n, i: {
        "hostName": f"{n}.redis.cache.windows.net",
        "sslPort": 6380,
        "port": 6379,
    },
    # Azure Managed Redis: the cluster's host name (<name>.<region>.redis.azure.net) and the
    # database's port (10000 unless set).
    "azure-native:redisenterprise:RedisEnterprise": lambda n, i: {
        "hostName": f"{n}.{i.get('location', 'westeurope')}.redis.azure.net",
        "provisioningState": "Succeeded",
    },
    "azure-native:redisenterprise:Database": lambda n, i: {"port": i.get("port", 10000)},
    # With a DNS label reuse policy other than Unsecure, Azure puts a hash in the FQDN.
    "azure-native:containerinstance:ContainerGroup": lambda n, i: {
        "ipAddress": {
            **i.get("ipAddress", {}),
            "ip": "20.0.0.10",
            "fqdn": f"{i.get('ipAddress', {}).get('dnsNameLabel', n)}.{fake_secret(n, 10)}"
            f".{i.get('location', 'westeurope')}.azurecontainer.io",
        },
    },
    # Container Apps (components/targets/container_apps/): the environment's domain
    # (<unique>.<region>.azurecontainerapps.io) and static IP; an app's FQDN is <app>.<domain>.
    "azure-native:app:ManagedEnvironment": lambda n, i: {
        "defaultDomain": container_apps_domain(n, i.get("location", "westeurope")),
        "staticIp": "10.20.2.70" if i.get("vnetConfiguration") else "20.0.0.40",
    },
    "azure-native:app:ContainerApp": lambda n, i: container_app_outputs(n, i),
    "random:index/randomPassword:RandomPassword": lambda n, i: {
        "result": fake_secret(n, int(i.get("length", 40)))
    },
    "docker:index/image:Image": lambda n, i: {
        "repoDigest": str(i.get("imageName", n)).rsplit(":", 1)[0]
        + "@sha256:"
        + hashlib.sha256(str(i.get("imageName", n)).encode()).hexdigest(),
    },
    # IoT Hub / IoT Edge (components/targets/iot/): the hub's host name, and what the dynamic
    # providers (components/providers/iot_edge.py) return from the IoT Hub and ARM REST APIs.
    "azure-native:iothub:IotHubResource": lambda n, i: {
        "properties": {**i.get("properties", {}), "hostName": f"{n}.azure-devices.net"}
    },
    "pulumi-python:dynamic/iotedge:Device": lambda n, i: {
        "etag": "MA==",
        "primary_key": fake_key(f"device:{i.get('device_id')}"),
        "connection_string": f"HostName={i.get('host_name')};DeviceId={i.get('device_id')};"
        + "SharedAccessKey="
        + fake_key(f"device:{i.get('device_id')}"),
    },
    "pulumi-python:dynamic/iotedge:Deployment": lambda n, i: {
        "content_sha256": hashlib.sha256(str(i.get("modules_content")).encode()).hexdigest()
    },
    # components/providers/function_keys.py: the default key, once the Functions host answers.
    "pulumi-python:dynamic/functions:HostKeys": lambda n, i: {
        "default_key": fake_secret(f"function:{str(i.get('site_id', n)).rsplit('/', 1)[-1]}")
    },
    # components/providers/feature_check.py: the subscription feature (EncryptionAtHost) is
    # Registered in the fake subscription.
    "pulumi-python:dynamic/azure:FeatureRegistration": lambda n, i: {"state": "Registered"},
    # components/providers/gateway_address.py: the Istio gateway's load balancer IP.
    "pulumi-python:dynamic/aks:GatewayAddress": lambda n, i: {
        "ip": "20.50.0." + str(len(n) % 200 + 10)
    },
    "pulumi-python:dynamic/acr:TokenPassword": lambda n, i: {
        "username": str(i.get("token_id", n)).rsplit("/", 1)[-1],
        "password": fake_secret(f"acr-token:{i.get('token_id')}", 52),
    },
}

# function token -> args -> result
CALLS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    # Keys of an Azure ML online endpoint (POST .../onlineEndpoints/<name>/listKeys).
    "azure-native:machinelearningservices:listOnlineEndpointKeys": lambda a: {
        "primaryKey": fake_secret(f"aml-primary:{a.get('endpointName')}", 32),
        "secondaryKey": fake_secret(f"aml-secondary:{a.get('endpointName')}", 32),
    },
    "azure-native:authorization:getClientConfig": lambda a: {
        "clientId": fake_uuid("deployer-app"),
        "objectId": DEPLOYER,
        "subscriptionId": SUBSCRIPTION,
        "tenantId": TENANT,
    },
    # The Entra ID kubeconfig of an AKS cluster (base64), as listClusterUserCredential returns it.
    "azure-native:containerservice:listManagedClusterUserCredentials": lambda a: {
        "kubeconfigs": [
            {
                "name": "clusterUser",
                "value": base64.b64encode(
                    fake_aks_kubeconfig(str(a.get("resourceName", "aks"))).encode()
                ).decode(),
            }
        ]
    },
    # An attached (existing) AKS cluster: 3 x 4 vCPUs in a user pool beside a tainted system pool.
    "azure-native:containerservice:getManagedCluster": lambda a: {
        "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{a.get('resourceGroupName')}/"
        f"providers/Microsoft.ContainerService/managedClusters/{a.get('resourceName')}",
        "name": a.get("resourceName"),
        "location": "westeurope",
        "fqdn": f"{a.get('resourceName')}-{fake_secret(str(a.get('resourceName')), 8)}"
        ".hcp.westeurope.azmk8s.io",
        "oidcIssuerProfile": {"enabled": True, "issuerURL": fake_oidc_issuer(a["resourceName"])},
        "identityProfile": {
            "kubeletidentity": {
                "clientId": fake_uuid(f"kubelet-client:{a.get('resourceName')}"),
                "objectId": fake_uuid(f"kubelet-object:{a.get('resourceName')}"),
                "resourceId": "/subscriptions/x/resourceGroups/y/providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/kubelet",
            }
        },
        "agentPoolProfiles": [
            {
                "name": "system",
                "mode": "System",
                "vmSize": "Standard_D2s_v5",
                "count": 1,
                "nodeTaints": ["CriticalAddonsOnly=true:NoSchedule"],
            },
            {"name": "user", "mode": "User", "vmSize": "Standard_D4s_v5", "count": 3},
        ],
    },
    "azure-native:redis:listRedisKeys": lambda a: {
        "primaryKey": fake_secret(f"redis-primary:{a.get('name')}", 44),
        "secondaryKey": fake_secret(f"redis-secondary:{a.get('name')}", 44),
    },
    # Function app host keys (POST .../sites/<name>/host/default/listkeys).
    "azure-native:web:listWebAppHostKeys": lambda a: {
        "masterKey": fake_secret(f"master:{a.get('name')}"),
        "functionKeys": {"default": fake_secret(f"function:{a.get('name')}")},
        "systemKeys": {},
    },
    # Key of the IoT Hub's shared access policy the edge providers sign with.
    "azure-native:iothub:listIotHubResourceKeysForKeyName": lambda a: {
        "keyName": a.get("keyName"),
        "primaryKey": fake_key(f"hub:{a.get('resourceName')}:{a.get('keyName')}"),
        "secondaryKey": fake_key(f"hub2:{a.get('resourceName')}:{a.get('keyName')}"),
        "rights": "RegistryRead, RegistryWrite, ServiceConnect",
    },
}
