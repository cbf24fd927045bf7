"""Network isolation of the compute targets (issue 18) on the program's graph.

prod (``networkIsolation: true``): App Service and Functions VNet-integrated with all outbound
traffic and image pulls through their subnets; the Functions host and trigger storage on private
endpoints in the shared private DNS zones, their firewalls default-deny; AKS nodes on the
aks-nodes subnet without public IPs, a user-assigned control-plane identity with Network
Contributor on that subnet, the API server allow-listed; ACI (when on) in the aci subnet.
dev: none of it.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.platform.network_settings import (
    AKS_POD_CIDR,
    AKS_SERVICE_CIDR,
    aks_dns_service_ip,
)
from components.targets.aks.network import ROLE_NETWORK_CONTRIBUTOR
from preview import engine, fakes

WEB_APP = "azure-native:web:WebApp"
PE = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
ZONE = "azure-native:privatedns:PrivateZone"
STORAGE = "azure-native:storage:StorageAccount"
NAMESPACE = "azure-native:servicebus:Namespace"
SB_RULES = "azure-native:servicebus:NamespaceNetworkRuleSet"
CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
GROUP = "azure-native:containerinstance:ContainerGroup"
ROLE = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"


def ok(run: engine.Run) -> engine.Run:
    assert run.error is None, run.error
    return run


def rid(r: engine.Registered) -> str:
    return fakes.arm_id(r.type, r.azure_name)


def subnet(run: engine.Run, role: str) -> str:
    return run.outputs["network"]["subnet_ids"][role]


def in_component(run: engine.Run, component_type: str, type_: str) -> list[engine.Registered]:
    (component,) = [r for r in run.resources if r.type == component_type]
    return [r for r in run.children(component.urn) if r.type == type_]


def site(run: engine.Run, component_type: str) -> dict[str, Any]:
    (app,) = in_component(run, component_type, WEB_APP)
    return app.inputs


def endpoints_of(run: engine.Run, component_name: str) -> dict[str, engine.Registered]:
    (component,) = [
        r for r in run.resources if r.type == "mlscore:platform:PrivateEndpoints"
        and r.name == component_name
    ]  # fmt: skip
    return {r.name: r for r in run.children(component.urn) if r.type == PE}


# --- App Service and Functions: VNet integration ------------------------------------------------
@pytest.mark.parametrize(
    ("component", "role"),
    [("mlscore:target:AppService", "app_service"), ("mlscore:target:Functions", "functions")],
)
def test_prod_apps_join_their_subnet_and_route_everything_through_it(
    prod: engine.Run, component: str, role: str
) -> None:
    app = site(prod, component)
    assert app["virtualNetworkSubnetId"] == subnet(prod, role)
    assert app["outboundVnetRouting"] == {"applicationTraffic": True, "imagePullTraffic": True}


@pytest.mark.parametrize("component", ["mlscore:target:AppService", "mlscore:target:Functions"])
def test_dev_apps_have_no_vnet_integration(dev: engine.Run, component: str) -> None:
    app = site(dev, component)
    assert "virtualNetworkSubnetId" not in app and "outboundVnetRouting" not in app
    assert dev.of_type("mlscore:platform:PrivateEndpoints") == []


# --- Functions: private endpoints of its storage, Service Bus ---------------------------------
def test_prod_functions_storage_is_on_private_endpoints_in_the_shared_zones(
    prod: engine.Run,
) -> None:
    found = endpoints_of(prod, "functions-endpoints")
    host = prod.one(STORAGE, "host-storage")
    trigger = prod.one(STORAGE, "trigger-storage")
    targets = {
        name: (
            c["privateLinkServiceId"],
            tuple(c["groupIds"]),
        )
        for name, pe in found.items()
        for c in pe.inputs["privateLinkServiceConnections"]
    }
    host_id, trigger_id = rid(host), rid(trigger)
    assert targets == {
        "pe-fnhost-blob": (host_id, ("blob",)),
        "pe-fnhost-queue": (host_id, ("queue",)),
        "pe-fnhost-table": (host_id, ("table",)),
        "pe-fntrig-blob": (trigger_id, ("blob",)),
        "pe-fntrig-queue": (trigger_id, ("queue",)),
    }  # no Service Bus endpoint: prod's namespace is Standard
    assert {pe.inputs["subnet"]["id"] for pe in found.values()} == {
        subnet(prod, "private_endpoints")
    }
    # One zone per name in the stack: blob is the platform's, queue and table are new.
    zones = [z.inputs["privateZoneName"] for z in prod.of_type(ZONE)]
    assert len(zones) == len(set(zones))
    assert {"privatelink.queue.core.windows.net", "privatelink.table.core.windows.net"} <= set(
        zones
    )
    blob_zone = rid(prod.one(ZONE, "zone-privatelink.blob.core.windows.net"))
    group = prod.one(ZONE_GROUP, "pe-fntrig-blob-dns").inputs
    assert [c["privateDnsZoneId"] for c in group["privateDnsZoneConfigs"]] == [blob_zone]


def test_prod_function_app_waits_for_its_private_endpoints(prod: engine.Run) -> None:
    (app,) = in_component(prod, "mlscore:target:Functions", WEB_APP)
    endpoints = endpoints_of(prod, "functions-endpoints").values()
    assert endpoints and all(pe.urn in app.dependencies for pe in endpoints)


def test_prod_functions_storage_denies_by_default_but_the_deployer(prod: engine.Run) -> None:
    for name in ("host-storage", "trigger-storage"):
        rules = prod.one(STORAGE, name).inputs["networkRuleSet"]
        assert rules["defaultAction"] == "Deny", name
        assert rules["bypass"] == "AzureServices"
        assert [r["iPAddressOrRange"] for r in rules["ipRules"]] == ["203.0.113.0/24"]


def test_standard_service_bus_stays_public_under_isolation(prod: engine.Run) -> None:
    # Private endpoints and VNet rules are Premium features; prod keeps Standard (cost), Entra only.
    ns = prod.one(NAMESPACE).inputs
    assert ns["sku"]["name"] == "Standard"
    assert ns["publicNetworkAccess"] == "Enabled" and ns["disableLocalAuth"] is True
    assert prod.of_type(SB_RULES) == []


def test_premium_service_bus_gets_a_private_endpoint_and_a_firewall(run_stack: Any) -> None:
    run = ok(run_stack("prod", functionsServiceBusSku="Premium"))
    ns = run.one(NAMESPACE)
    pe = endpoints_of(run, "functions-endpoints")["pe-sb"].inputs
    (conn,) = pe["privateLinkServiceConnections"]
    assert conn["privateLinkServiceId"] == rid(ns) and conn["groupIds"] == ["namespace"]
    zone = run.one(ZONE, "zone-privatelink.servicebus.windows.net")
    assert zone.inputs["privateZoneName"] == "privatelink.servicebus.windows.net"
    rules = run.one(SB_RULES).inputs
    assert rules["defaultAction"] == "Deny" and rules["publicNetworkAccess"] == "Enabled"
    assert [r["ipMask"] for r in rules["ipRules"]] == ["203.0.113.0/24"]


def test_premium_service_bus_without_public_access_has_no_firewall(run_stack: Any) -> None:
    run = ok(
        run_stack(
            "prod",
            functionsServiceBusSku="Premium",
            publicNetworkAccess=False,
            deployerIpRanges="",
            aksApiAuthorizedIpRanges="198.51.100.0/24",
            iotEnabled=False,  # devices pull over the internet: refused without public access
        )
    )
    assert run.one(NAMESPACE).inputs["publicNetworkAccess"] == "Disabled"
    assert run.of_type(SB_RULES) == []
    assert "pe-sb" in endpoints_of(run, "functions-endpoints")


# --- AKS ---------------------------------------------------------------------------------------
def test_prod_aks_nodes_are_on_the_subnet_without_public_ips(prod: engine.Run) -> None:
    nodes = subnet(prod, "aks_nodes")
    (system,) = prod.one(CLUSTER).inputs["agentPoolProfiles"]
    pools = [system, *(p.inputs for p in prod.of_type(POOL))]
    assert len(pools) >= 2
    for pool in pools:
        assert pool["vnetSubnetID"] == nodes
        assert pool["enableNodePublicIP"] is False


def test_prod_aks_control_plane_is_user_assigned_with_network_contributor_on_the_subnet(
    prod: engine.Run,
) -> None:
    cluster = prod.one(CLUSTER)
    identity = prod.one(IDENTITY, "control-plane-identity")
    assert cluster.inputs["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": [rid(identity)],
    }
    grant = prod.one(ROLE, "control-plane-subnet-network-contributor")
    assert grant.inputs["scope"] == subnet(prod, "aks_nodes")
    assert grant.inputs["roleDefinitionId"].endswith(ROLE_NETWORK_CONTRIBUTOR)
    assert grant.inputs["principalId"] == fakes.fake_uuid(f"principal:{identity.azure_name}")
    assert grant.urn in cluster.dependencies  # granted before the first node joins


def test_prod_aks_api_server_admits_the_deployer_only(prod: engine.Run) -> None:
    profile = prod.one(CLUSTER).inputs["apiServerAccessProfile"]
    assert profile == {"authorizedIPRanges": ["203.0.113.0/24"]}


def test_aks_api_ranges_from_their_own_key(run_stack: Any) -> None:
    run = ok(run_stack("prod", aksApiAuthorizedIpRanges="198.51.100.7/32,192.0.2.0/28"))
    profile = run.one(CLUSTER).inputs["apiServerAccessProfile"]
    assert profile["authorizedIPRanges"] == ["198.51.100.7/32", "192.0.2.0/28"]


def test_aks_cidrs_are_network_settings_ones(each_stack: engine.Run) -> None:
    net = each_stack.one(CLUSTER).inputs["networkProfile"]
    assert net["podCidr"] == AKS_POD_CIDR
    assert net["serviceCidr"] == AKS_SERVICE_CIDR
    assert net["dnsServiceIP"] == aks_dns_service_ip() == "10.0.0.10"


def test_dev_aks_is_unchanged_off_the_vnet(dev: engine.Run) -> None:
    cluster = dev.one(CLUSTER).inputs
    assert cluster["identity"] == {"type": "SystemAssigned"}
    assert "apiServerAccessProfile" not in cluster
    assert cluster["networkProfile"]["podCidr"] == AKS_POD_CIDR
    for pool in [*cluster["agentPoolProfiles"], *(p.inputs for p in dev.of_type(POOL))]:
        assert "vnetSubnetID" not in pool and pool["enableNodePublicIP"] is False
    assert [i for i in dev.of_type(IDENTITY) if i.name == "control-plane-identity"] == []


def test_prod_accelerator_pool_is_on_the_subnet_too(run_stack: Any) -> None:
    run = ok(run_stack("prod", acceleratorEnabled=True))
    pool = run.one(POOL, "accelerator-pool").inputs
    assert pool["vnetSubnetID"] == subnet(run, "aks_nodes")
    assert pool["enableNodePublicIP"] is False


# --- ACI ---------------------------------------------------------------------------------------
def test_prod_aci_is_injected_in_its_subnet_with_a_private_ip(run_stack: Any) -> None:
    run = ok(run_stack("prod", aciEnabled=True))
    group = run.one(GROUP)
    assert group.inputs["subnetIds"] == [{"id": subnet(run, "aci")}]
    ip = group.inputs["ipAddress"]
    assert ip["type"] == "Private" and "dnsNameLabel" not in ip
    endpoint = run.outputs["endpoints"]["aci"]
    private_ip = group.outputs["ipAddress"]["ip"]
    assert endpoint["scoring_uri"].startswith(f"http://{private_ip}:")


def test_dev_aci_keeps_its_public_ip_and_label(dev: engine.Run) -> None:
    group = dev.one(GROUP).inputs
    assert "subnetIds" not in group and group["ipAddress"]["type"] == "Public"
