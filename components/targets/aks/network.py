"""The cluster's network under isolation (``networkIsolation``) and its API server allow-list.

- **Nodes on the VNet's ``aks-nodes`` subnet** (``vnetSubnetID`` on every pool; Azure CNI
  Overlay: nodes take subnet addresses, pods the overlay pod CIDR,
  https://learn.microsoft.com/azure/aks/azure-cni-overlay). A pool's subnet cannot change
  after creation: moving an existing cluster onto the VNet replaces it (and its pools).
- **No node public IPs** (``enableNodePublicIP: false`` on every pool, in every stack): the
  nodes' outbound goes through the cluster's load balancer.
- **A user-assigned control-plane identity with Network Contributor on the node subnet**: with
  a custom subnet the cluster identity needs ``Microsoft.Network/virtualNetworks/subnets/
  join/action`` and the NSG/route permissions on it
  (https://learn.microsoft.com/azure/aks/aks-service-permissions, "Cluster identity
  permissions"). The CLI grants a system-assigned identity this itself; an ARM deployment must
  grant it, and a system-assigned identity exists only once the cluster does, too late for the
  first node to join the subnet. So under isolation the control plane runs as a user-assigned
  identity created (and granted) before the cluster
  (https://learn.microsoft.com/azure/aks/use-managed-identity). Dev keeps system-assigned.
- **API server authorized IP ranges** from ``aksApiAuthorizedIpRanges`` (defaulted to
  ``deployerIpRanges`` under isolation, network_settings.py), whenever the list is set: "up to
  200", "not compatible with ... Public IP Per Node" (hence no node public IPs),
  https://learn.microsoft.com/azure/aks/api-server-authorized-ip-ranges
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.containerservice as cs
import pulumi_azure_native.managedidentity as managedidentity

from components.contract import NetworkRef, role_definition_id
from components.settings import Settings

# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/networking
ROLE_NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
NODE_SUBNET = "aks_nodes"


def pool_network(network: NetworkRef | None) -> dict[str, Any]:
    """Every pool's network arguments: its subnet under isolation, never a node public IP."""
    found: dict[str, Any] = {"enable_node_public_ip": False}
    if network is not None:
        found["vnet_subnet_id"] = network.subnet_ids[NODE_SUBNET]
    return found


def api_server_access(s: Settings) -> cs.ManagedClusterAPIServerAccessProfileArgs | None:
    ranges = list(s.network.aks_api_authorized_ip_ranges)
    if not ranges:
        return None
    return cs.ManagedClusterAPIServerAccessProfileArgs(authorized_ip_ranges=ranges)


class ControlPlane:
    """The cluster's identity argument and what the cluster must wait for (the subnet grant)."""

    def __init__(
        self,
        s: Settings,
        resource_group_name: pulumi.Input[str],
        subscription_id: pulumi.Input[str],
        network: NetworkRef | None,
        opts: pulumi.ResourceOptions,
    ):
        self.identity: managedidentity.UserAssignedIdentity | None = None
        self.subnet_grant: authorization.RoleAssignment | None = None
        if network is None:
            self.args = cs.ManagedClusterIdentityArgs(type=cs.ResourceIdentityType.SYSTEM_ASSIGNED)
            return
        self.identity = managedidentity.UserAssignedIdentity(
            "control-plane-identity",
            resource_name_=s.naming.dashed("id-aks"),
            resource_group_name=resource_group_name,
            location=s.location,
            tags=dict(s.tags),
            opts=opts,
        )
        self.subnet_grant = authorization.RoleAssignment(
            "control-plane-subnet-network-contributor",
            principal_id=self.identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(subscription_id, ROLE_NETWORK_CONTRIBUTOR),
            scope=network.subnet_ids[NODE_SUBNET],
            opts=opts,
        )
        self.args = cs.ManagedClusterIdentityArgs(
            type=cs.ResourceIdentityType.USER_ASSIGNED,
            user_assigned_identities=[self.identity.id],
        )

    @property
    def depends_on(self) -> list[pulumi.Resource]:
        return [self.subnet_grant] if self.subnet_grant is not None else []
