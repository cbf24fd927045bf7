"""Private endpoints of the data planes, with their private DNS zones, VNet links and zone groups.

Given endpoints as (name, resource ID, group ID, private DNS zone names), one component creates:

- each private DNS zone once (zones are shared: the workspace's storage and any other account's
  blob endpoint both register in ``privatelink.blob.core.windows.net``), with a link to the VNet
  (no auto-registration: the zone groups write the records);
- one private endpoint per (resource, group ID) in the endpoints subnet (a private endpoint
  connects one sub-resource: a storage account's blob and file are two endpoints);
- each endpoint's private DNS zone group, which keeps the zone's A records in step with the
  endpoint's addresses.

Zone names and group IDs ("Azure Private Endpoint private DNS zone values",
https://learn.microsoft.com/azure/private-link/private-endpoint-dns):

====================================  ===============  ============================================
resource                              group ID         private DNS zone(s)
====================================  ===============  ============================================
Key Vault (Microsoft.KeyVault/vaults) vault            privatelink.vaultcore.azure.net
Storage account                       blob, file,      privatelink.<group ID>.core.windows.net
                                      queue, table
Container Registry                    registry         privatelink.azurecr.io
Azure Managed Redis (RedisEnterprise) redisEnterprise  privatelink.redis.azure.net
Azure Cache for Redis (Redis)         redisCache       privatelink.redis.cache.windows.net
Azure ML workspace                    amlworkspace     privatelink.api.azureml.ms,
                                                       privatelink.notebooks.azure.net
====================================  ===============  ============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native.network as network
import pulumi_azure_native.privatedns as privatedns

from components.contract import PrivateEndpointSpec
from components.settings import Settings

KEY_VAULT_ZONE = "privatelink.vaultcore.azure.net"
REGISTRY_ZONE = "privatelink.azurecr.io"
MANAGED_REDIS_ZONE = "privatelink.redis.azure.net"
AZURE_CACHE_ZONE = "privatelink.redis.cache.windows.net"
SERVICE_BUS_ZONE = "privatelink.servicebus.windows.net"
ML_ZONES = ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net")
STORAGE_SERVICES = ("blob", "file", "queue", "table")
DNS_ZONE_LOCATION = "global"  # private DNS zones and their links are global resources


def storage_zone(service: str) -> str:
    return f"privatelink.{service}.core.windows.net"


Endpoint = PrivateEndpointSpec  # the contract's type (components/contract.py)


def key_vault(resource_id: pulumi.Input[str]) -> Endpoint:
    return Endpoint("kv", resource_id, "vault", (KEY_VAULT_ZONE,))


def storage(name: str, resource_id: pulumi.Input[str], services: tuple[str, ...]) -> list[Endpoint]:
    unknown = set(services) - set(STORAGE_SERVICES)
    if unknown:
        raise ValueError(f"storage private endpoints are for {STORAGE_SERVICES}, not {unknown}")
    return [Endpoint(f"{name}-{svc}", resource_id, svc, (storage_zone(svc),)) for svc in services]


def registry(resource_id: pulumi.Input[str]) -> Endpoint:
    return Endpoint("acr", resource_id, "registry", (REGISTRY_ZONE,))


REDIS = "redis"  # the cache's endpoint (pe-redis)


def redis(resource_id: pulumi.Input[str], *, managed: bool) -> Endpoint:
    if managed:  # Azure Managed Redis: a Microsoft.Cache/redisEnterprise cluster
        return Endpoint(REDIS, resource_id, "redisEnterprise", (MANAGED_REDIS_ZONE,))
    return Endpoint(REDIS, resource_id, "redisCache", (AZURE_CACHE_ZONE,))


def service_bus(resource_id: pulumi.Input[str]) -> Endpoint:
    """A Service Bus namespace (Premium only: "we are not planning to bring this feature to the
    Standard tier", Azure/azure-service-bus#474): group ``namespace``, zone
    ``privatelink.servicebus.windows.net`` (https://learn.microsoft.com/azure/private-link/
    private-endpoint-dns, "Integration")."""
    return Endpoint("sb", resource_id, "namespace", (SERVICE_BUS_ZONE,))


def ml_workspace(resource_id: pulumi.Input[str]) -> Endpoint:
    return Endpoint("mlw", resource_id, "amlworkspace", ML_ZONES)


@dataclass(frozen=True)
class PrivateEndpointsArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    vnet_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    endpoints: tuple[Endpoint, ...]
    # Zones another PrivateEndpoints component already created and linked (zone name -> ID):
    # reused, not created again (one private DNS zone of a name per VNet, shared by endpoints).
    existing_zones: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class PrivateEndpoints(pulumi.ComponentResource):
    """``zones`` (zone name -> PrivateZone, those created here), ``zone_ids`` (zone name -> ID,
    also the reused ``existing_zones``) and ``endpoints`` (name -> PrivateEndpoint).

    ``zone_ids`` resolve only once every endpoint here has its DNS records (its zone group):
    what reads them (``NetworkRef.private_dns_zones``: a target's own endpoints, its VNet
    integration) then starts after the key vault, registry and storage answer on their private
    addresses. A VNet-integrated app created earlier would resolve its Key Vault references and
    pull its image before those names resolve privately, and fail its first start."""

    def __init__(
        self, name: str, args: PrivateEndpointsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        names = [e.name for e in args.endpoints]
        if len(set(names)) != len(names):  # a programming error: each endpoint names its own
            raise ValueError(f"private endpoint names repeat: {sorted(names)}")
        super().__init__("mlscore:platform:PrivateEndpoints", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        wanted = sorted({z for e in args.endpoints for z in e.zones} - set(args.existing_zones))
        self.zones = {zone: self._zone(s, args, zone, child) for zone in wanted}
        self._zone_ids: dict[str, pulumi.Input[str]] = {
            **args.existing_zones,
            **{zone: pz.id for zone, pz in self.zones.items()},
        }
        self._groups: list[network.PrivateDnsZoneGroup] = []
        self.endpoints = {e.name: self._endpoint(s, args, e, child) for e in args.endpoints}
        registered = [g.id for g in self._groups]
        self.zone_ids: dict[str, pulumi.Input[str]] = {
            zone: pulumi.Output.all(zone_id, *registered).apply(lambda v: str(v[0]))
            for zone, zone_id in self._zone_ids.items()
        }
        self.register_outputs(
            {
                "endpoints": {n: pe.id for n, pe in self.endpoints.items()},
                "zones": {z: pz.id for z, pz in self.zones.items()},
            }
        )

    def _zone(
        self, s: Settings, args: PrivateEndpointsArgs, zone: str, child: pulumi.ResourceOptions
    ) -> privatedns.PrivateZone:
        pz = privatedns.PrivateZone(
            f"zone-{zone}",
            private_zone_name=zone,
            resource_group_name=args.resource_group_name,
            location=DNS_ZONE_LOCATION,
            tags=dict(s.tags),
            opts=child,
        )
        privatedns.VirtualNetworkLink(
            f"link-{zone}",
            private_zone_name=pz.name,
            virtual_network_link_name=s.naming.dashed("vnet-link"),
            resource_group_name=args.resource_group_name,
            location=DNS_ZONE_LOCATION,
            virtual_network=privatedns.SubResourceArgs(id=args.vnet_id),
            registration_enabled=False,  # the zone groups write the endpoints' records
            tags=dict(s.tags),
            opts=child,
        )
        return pz

    def _endpoint(
        self, s: Settings, args: PrivateEndpointsArgs, e: Endpoint, child: pulumi.ResourceOptions
    ) -> network.PrivateEndpoint:
        pe_name = s.naming.dashed(f"pe-{e.name}")
        pe = network.PrivateEndpoint(
            f"pe-{e.name}",
            private_endpoint_name=pe_name,
            resource_group_name=args.resource_group_name,
            location=s.location,
            subnet=network.SubnetArgs(id=args.subnet_id),
            custom_network_interface_name=f"{pe_name}-nic",
            private_link_service_connections=[
                network.PrivateLinkServiceConnectionArgs(
                    name=pe_name,
                    private_link_service_id=e.resource_id,
                    group_ids=[e.group_id],
                )
            ],
            tags=dict(s.tags),
            opts=child,
        )
        group = network.PrivateDnsZoneGroup(
            f"pe-{e.name}-dns",
            private_endpoint_name=pe.name,
            private_dns_zone_group_name="default",
            resource_group_name=args.resource_group_name,
            private_dns_zone_configs=[
                network.PrivateDnsZoneConfigArgs(
                    name=zone.replace(".", "-"), private_dns_zone_id=self._zone_ids[zone]
                )
                for zone in e.zones
            ],
            opts=child,
        )
        self._groups.append(group)
        return pe


def platform_endpoints(
    s: Settings,
    *,
    key_vault_id: pulumi.Input[str],
    storage_id: pulumi.Input[str],
    registry_id: pulumi.Input[str],
    workspace_id: pulumi.Input[str],
    cache_id: pulumi.Input[str] | None,
) -> tuple[Endpoint, ...]:
    """The platform's data planes. The workspace storage needs blob and file: Azure ML reaches
    its default datastores (workspaceblobstore, workspacefilestore) through both
    (https://learn.microsoft.com/azure/machine-learning/how-to-secure-workspace-vnet, "Secure
    Azure storage accounts"). ``cache_id`` is None for an existing Redis host (not ours)."""
    found = [
        key_vault(key_vault_id),
        *storage("st", storage_id, ("blob", "file")),
        registry(registry_id),
        ml_workspace(workspace_id),
    ]
    if cache_id is not None:
        found.append(redis(cache_id, managed=s.redis.managed))
    return tuple(found)
