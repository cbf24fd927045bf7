"""The VNet of network isolation on the program's graph (mock engine, the real stack files)."""

from __future__ import annotations

import ipaddress

import pytest

from components.platform import network_settings as ns
from preview import engine, fakes
from tests.infra.settings_helpers import load

VNET = "azure-native:network:VirtualNetwork"
NSG = "azure-native:network:NetworkSecurityGroup"
CLUSTER = "azure-native:containerservice:ManagedCluster"
NETWORK_TYPES = (
    VNET,
    NSG,
    "azure-native:network:PrivateEndpoint",
    "azure-native:network:PrivateDnsZoneGroup",
    "azure-native:privatedns:PrivateZone",
    "azure-native:privatedns:VirtualNetworkLink",
)


def arm_id(r: engine.Registered) -> str:
    """The ID the fake Azure gives a resource (what its dependents receive)."""
    return fakes.arm_id(r.type, r.azure_name)


def subnets(run: engine.Run) -> dict[str, dict]:
    return {s["name"]: s for s in run.one(VNET).inputs["subnets"]}


def test_dev_declares_no_network_and_exports_none(dev) -> None:
    assert [r.name for r in dev.resources if r.type in NETWORK_TYPES] == []
    assert "network" not in dev.outputs


def test_prod_vnet_and_subnets_are_the_settings(prod) -> None:
    net = load("prod").network
    vnet = prod.one(VNET).inputs
    assert vnet["addressSpace"] == {"addressPrefixes": [net.vnet_address_space]}
    assert vnet["virtualNetworkName"] == "mlscore-prod-vnet"
    assert {n: s["addressPrefix"] for n, s in subnets(prod).items()} == {
        net.subnet_name(role): cidr for role, cidr in net.subnets.items()
    }


def test_integration_subnets_are_delegated_to_app_service_and_the_others_are_not(prod) -> None:
    """App Service and Functions VNet integration needs a subnet delegated to
    Microsoft.Web/serverFarms (learn.microsoft.com/azure/app-service/overview-vnet-integration)."""
    found = subnets(prod)
    for name in ("app-service", "functions"):
        assert [d["serviceName"] for d in found[name]["delegations"]] == [
            "Microsoft.Web/serverFarms"
        ]
    for name in ("private-endpoints", "aks-nodes"):
        assert "delegations" not in found[name]


def test_aci_gets_a_subnet_delegated_to_container_groups_when_enabled(run_stack) -> None:
    run = run_stack("prod", aciEnabled=True)
    assert run.error is None, run.error
    aci = subnets(run)["aci"]
    assert [d["serviceName"] for d in aci["delegations"]] == [
        "Microsoft.ContainerInstance/containerGroups"
    ]
    assert aci["addressPrefix"] == load("prod", aciEnabled=True).network.subnets["aci"]


def test_every_subnet_but_the_aks_nodes_has_its_own_nsg(prod) -> None:
    """AKS manages the NSG of its nodes' NICs (rules for its load balancer services)."""
    nsgs = {arm_id(r): r for r in prod.of_type(NSG)}
    attached = {
        name: s["networkSecurityGroup"]["id"]
        for name, s in subnets(prod).items()
        if "networkSecurityGroup" in s
    }
    assert set(attached) == {"private-endpoints", "app-service", "functions", "container-apps"}
    assert set(attached.values()) == set(nsgs)  # one NSG per subnet, none shared or unused
    for name, nsg_id in attached.items():
        assert nsgs[nsg_id].inputs["networkSecurityGroupName"] == f"mlscore-prod-nsg-{name}"
        assert "securityRules" not in nsgs[nsg_id].inputs  # Azure's defaults: deny internet in


def test_nsg_rules_apply_to_the_private_endpoints(prod) -> None:
    assert subnets(prod)["private-endpoints"]["privateEndpointNetworkPolicies"] == "Enabled"


def test_the_network_output_gives_the_vnet_and_each_subnet_id(prod) -> None:
    vnet_id = arm_id(prod.one(VNET))
    out = prod.outputs["network"]
    assert out["vnet_id"] == vnet_id
    net = load("prod").network
    assert out["subnet_ids"] == {
        role: f"{vnet_id}/subnets/{net.subnet_name(role)}" for role in net.subnets
    }


def test_the_vnet_stays_clear_of_the_clusters_pod_and_service_cidrs(prod) -> None:
    """Azure CNI Overlay: the pod CIDR and the service CIDR must not overlap the VNet."""
    profile = prod.one(CLUSTER).inputs["networkProfile"]
    assert profile["podCidr"] == ns.AKS_POD_CIDR  # the settings check the cluster's own values
    assert profile.get("serviceCidr", ns.AKS_SERVICE_CIDR) == ns.AKS_SERVICE_CIDR
    vnet = ipaddress.IPv4Network(prod.one(VNET).inputs["addressSpace"]["addressPrefixes"][0])
    for cidr in (profile["podCidr"], profile.get("serviceCidr", ns.AKS_SERVICE_CIDR)):
        assert not vnet.overlaps(ipaddress.IPv4Network(cidr))


def test_the_node_subnet_holds_every_pool_at_its_maximum_with_surge(prod) -> None:
    s = load("prod")
    pools = [s.aks.system_node_count, s.aks.max_node_count]
    need = sum(n + -(-n * 33 // 100) for n in pools)  # maxSurge 33% per pool, rounded up
    node_subnet = ipaddress.IPv4Network(subnets(prod)["aks-nodes"]["addressPrefix"])
    assert node_subnet.num_addresses - 5 >= need


@pytest.mark.parametrize("role", ["app_service", "functions"])
def test_integration_subnets_hold_twice_the_plans_maximum(prod, role) -> None:
    """One address per plan instance, twice that while the plan scales."""
    s = load("prod")
    most = s.app_service.max_instances if role == "app_service" else s.functions.max_elastic_workers
    name = s.network.subnet_name(role)
    usable = ipaddress.IPv4Network(subnets(prod)[name]["addressPrefix"]).num_addresses - 5
    assert usable >= 2 * most
