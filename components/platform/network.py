"""The VNet of network isolation and its subnets (``networkIsolation``; settings in
``network_settings.py``).

One ``VirtualNetwork`` declares every subnet inline, so they are created in one request (subnets
of one VNet created as separate resources at the same time conflict with each other) and a
later update of the VNet keeps them. A subnet's ID is the VNet's ID plus ``/subnets/<name>``.

- ``private-endpoints``: the private endpoints (``private_endpoints.py``); NSG rules apply to
  them (``privateEndpointNetworkPolicies: Enabled``), so the subnet's NSG filters their traffic:
  https://learn.microsoft.com/azure/private-link/disable-private-endpoint-network-policy
- ``app-service`` / ``functions``: regional VNet integration, delegated to
  Microsoft.Web/serverFarms (one plan per subnet):
  https://learn.microsoft.com/azure/app-service/overview-vnet-integration
- ``aks-nodes``: the AKS nodes (Azure CNI Overlay). No subnet NSG: AKS manages the NSG of the
  nodes' NICs and adds the rules its load balancer services need; a subnet NSG would have to
  repeat them: https://learn.microsoft.com/azure/aks/concepts-network#network-security-groups
- ``aci``: container groups, delegated to Microsoft.ContainerInstance/containerGroups.
- ``container-apps``: the Container Apps environment, delegated to Microsoft.App/environments.
  With public ingress (``containerAppsInternalOnly`` false) its NSG admits HTTPS (443) and the
  HTTP redirect (80) from the internet, which Azure's default rules deny:
  https://learn.microsoft.com/azure/container-apps/firewall-integration

Every other subnet has an NSG (CKV2_AZURE_31) with Azure's default rules: traffic inside the
VNet and outbound allowed, inbound from the internet denied:
https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview#default-security-rules
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.network as network

from components.contract import Interfaces
from components.platform.network_settings import (
    ACI_DELEGATION,
    CONTAINER_APPS_DELEGATION,
    WEB_DELEGATION,
)
from components.settings import Settings

DELEGATIONS = {
    "app_service": WEB_DELEGATION,
    "functions": WEB_DELEGATION,
    "aci": ACI_DELEGATION,
    "container_apps": CONTAINER_APPS_DELEGATION,
}
WITHOUT_NSG = frozenset({"aks_nodes"})


@dataclass(frozen=True)
class NetworkArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]


class Network(pulumi.ComponentResource):
    """The VNet; ``subnet_ids`` maps each role of ``Settings.network.subnets`` to its ID."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:platform:Network", name, None, opts)
        s = args.settings
        net = s.network
        child = pulumi.ResourceOptions(parent=self)
        self.nsgs = {
            role: network.NetworkSecurityGroup(
                f"nsg-{net.subnet_name(role)}",
                network_security_group_name=s.naming.dashed(f"nsg-{net.subnet_name(role)}"),
                resource_group_name=args.resource_group_name,
                location=s.location,
                security_rules=_security_rules(s, role),
                tags=dict(s.tags),
                opts=child,
            )
            for role in net.subnets
            if role not in WITHOUT_NSG
        }
        self.vnet = network.VirtualNetwork(
            "vnet",
            virtual_network_name=s.naming.dashed("vnet"),
            resource_group_name=args.resource_group_name,
            location=s.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[net.vnet_address_space]),
            subnets=[self._subnet(s, role, cidr) for role, cidr in net.subnets.items()],
            tags=dict(s.tags),
            opts=child,
        )
        self.id = self.vnet.id
        self.subnet_ids: dict[str, pulumi.Output[str]] = {
            role: _subnet_id(self.vnet.id, net.subnet_name(role)) for role in net.subnets
        }
        self.register_outputs({"id": self.id, "subnet_ids": self.subnet_ids})

    def _subnet(self, s: Settings, role: str, cidr: str) -> network.SubnetArgs:
        delegation = DELEGATIONS.get(role)
        nsg = self.nsgs.get(role)
        return network.SubnetArgs(
            name=s.network.subnet_name(role),
            address_prefix=cidr,
            delegations=[
                network.DelegationArgs(name=role.replace("_", "-"), service_name=delegation)
            ]
            if delegation
            else None,
            network_security_group=network.NetworkSecurityGroupArgs(id=nsg.id) if nsg else None,
            private_endpoint_network_policies=network.VirtualNetworkPrivateEndpointNetworkPolicies.ENABLED
            if role == "private_endpoints"
            else None,
        )

    def outputs(self) -> dict[str, pulumi.Input[object]]:
        """The ``network`` stack output: the VNet's ID and each subnet's."""
        return {"vnet_id": self.id, "subnet_ids": self.subnet_ids}

    def interfaces(self) -> Interfaces:
        return Interfaces(outputs={"network": self.outputs()})


def _security_rules(s: Settings, role: str) -> list[network.SecurityRuleArgs] | None:
    """Rules beside Azure's defaults: only a public Container Apps environment needs any (its
    ingress on 443, and 80 that the ingress redirects to HTTPS)."""
    if role != "container_apps" or s.container_apps.internal_only:
        return None
    return [
        network.SecurityRuleArgs(
            name="allow-https-ingress",
            priority=100,
            direction=network.SecurityRuleDirection.INBOUND,
            access=network.SecurityRuleAccess.ALLOW,
            protocol=network.SecurityRuleProtocol.TCP,
            source_address_prefix="Internet",
            source_port_range="*",
            destination_address_prefix="*",
            destination_port_ranges=["80", "443"],
        )
    ]


def _subnet_id(vnet_id: pulumi.Output[str], name: str) -> pulumi.Output[str]:
    return vnet_id.apply(lambda i: f"{i}/subnets/{name}")
