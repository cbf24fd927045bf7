"""Network isolation settings: the real stack files, and every rule with the key it names."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from components.platform import network_settings as ns
from tests.infra.settings_helpers import keys_of, load, problems

# prod with the deployer's calls made from a runner in the VNet (no allow-list, no IoT devices)
PRIVATE_ONLY = {
    "publicNetworkAccess": False,
    "deployerIpRanges": "",
    "iotEnabled": False,
    "aksApiAuthorizedIpRanges": "198.51.100.7",
}


def test_prod_is_isolated_with_an_allow_list_and_a_subnet_per_workload() -> None:
    n = load("prod").network
    assert n.isolated and n.data_plane == ns.ALLOW_LIST
    assert n.vnet_address_space == "10.20.0.0/16"
    # prod runs App Service, Functions, Container Apps and AKS, and no ACI (dev/test only)
    assert set(n.subnets) == {
        "private_endpoints", "app_service", "functions", "container_apps", "aks_nodes"
    }  # fmt: skip
    assert n.deployer_ip_ranges == ("203.0.113.0/24",)
    assert n.aks_api_authorized_ip_ranges == n.deployer_ip_ranges  # the default
    assert n.iot_hub_ip_filter == ("198.51.100.0/24",)


def test_dev_has_no_vnet_and_public_data_planes() -> None:
    n = load("dev").network
    assert not n.isolated and n.subnets == {} and n.data_plane == ns.PUBLIC
    assert n.aks_api_authorized_ip_ranges == () and n.iot_hub_ip_filter == ()


def test_the_four_combinations_of_isolation_and_public_access() -> None:
    assert load("dev", publicNetworkAccess=False).network.data_plane == ns.DISABLED
    assert load("prod", **PRIVATE_ONLY).network.data_plane == ns.PRIVATE


def test_the_subnets_sit_inside_the_vnet_apart_and_the_vnet_apart_from_aks_ranges() -> None:
    n = load("prod", aciEnabled=True).network
    vnet = ipaddress.IPv4Network(n.vnet_address_space)
    nets = [ipaddress.IPv4Network(c) for c in n.subnets.values()]
    assert "aci" in n.subnets and all(x.subnet_of(vnet) for x in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert not vnet.overlaps(ipaddress.IPv4Network(ns.AKS_POD_CIDR))
    assert not vnet.overlaps(ipaddress.IPv4Network(ns.AKS_SERVICE_CIDR))


@pytest.mark.parametrize(
    ("overrides", "keys", "needle"),
    [
        ({"vnetAddressSpace": "10.20.0.0/33"}, {"vnetAddressSpace"}, "CIDR"),
        ({"vnetAddressSpace": "fd00::/48"}, {"vnetAddressSpace"}, "IPv6"),
        ({"subnetAppService": "10.20.1.5/26"}, {"subnetAppService"}, "use 10.20.1.0/26"),
        (
            {"subnetAci": "10.21.0.0/27", "aciEnabled": True},
            {"subnetAci", "vnetAddressSpace"},
            "outside",
        ),
        ({"subnetFunctions": "10.20.1.0/26"}, {"subnetAppService", "subnetFunctions"}, "overlap"),
        ({"subnetFunctions": "10.20.1.32/27"}, {"subnetAppService", "subnetFunctions"}, "overlap"),
        ({"subnetAppService": "10.20.1.0/29"}, {"subnetAppService"}, "at least a /28"),
        # prod: appServiceMaxInstances 6 needs 12 addresses while scaling; a /28 has 11
        ({"subnetAppService": "10.20.1.0/28"}, {"subnetAppService"}, "2 x appServiceMaxInstances"),
        # prod: 3 system + 10 user nodes at most, plus a 33% surge each: 4 + 14 = 18 > 11
        ({"subnetAksNodes": "10.20.16.0/28"}, {"subnetAksNodes"}, "use a /27"),
        # 6 endpoints, 10 addresses budgeted; a /29 has 3
        (
            {"subnetPrivateEndpoints": "10.20.0.0/29"},
            {"subnetPrivateEndpoints"},
            "6 private endpoints",
        ),
        ({"subnetPrivateEndpoints": "10.20.0.0/30"}, {"subnetPrivateEndpoints"}, "smallest"),
        ({"registrySku": "Standard"}, {"networkIsolation", "registrySku"}, "Premium"),
        (
            {
                "deployerIpRanges": "",
                "aksApiAuthorizedIpRanges": "198.51.100.7",
                "iotEnabled": False,
            },
            {"networkIsolation", "publicNetworkAccess", "deployerIpRanges"},
            "same-region",
        ),
        (
            {**PRIVATE_ONLY, "deployerIpRanges": "203.0.113.9"},
            {"deployerIpRanges", "publicNetworkAccess"},
            "no allow-list applies",
        ),
        (
            {**PRIVATE_ONLY, "aksApiAuthorizedIpRanges": ""},
            {"networkIsolation", "aksApiAuthorizedIpRanges"},
            "any address",
        ),
        ({"iotHubIpFilter": ""}, {"networkIsolation", "iotHubIpFilter"}, "Edge devices"),
        (
            {**PRIVATE_ONLY, "iotEnabled": True},
            {"iotEnabled", "publicNetworkAccess"},
            "pull the scoring image",
        ),
    ],
)
def test_prod_rules_name_the_key_and_the_fix(
    overrides: dict[str, Any], keys: set[str], needle: str
) -> None:
    found = problems("prod", **overrides)
    assert keys_of(found) == keys, [str(p) for p in found]
    assert any(needle in f"{p.problem}; {p.fix}" for p in found), [str(p) for p in found]


# prod with IoT Edge deployed from a runner in the VNet: the registry's public endpoint stays on
# for the devices (iotHubIpFilter), no deployer range, the runner's egress IP on the AKS API only
VNET_RUNNER_WITH_IOT = {"deployerIpRanges": "", "aksApiAuthorizedIpRanges": "198.51.100.7"}


def test_a_runner_in_the_vnet_deploys_a_stack_with_iot_edge() -> None:
    """Both deploy paths work with IoT Edge on: the VNet runner one is allow-list mode with no
    deployer ranges (publicNetworkAccess false would close the registry to the devices)."""
    n = load("prod", **VNET_RUNNER_WITH_IOT).network
    assert n.data_plane == ns.ALLOW_LIST and n.deployer_ip_ranges == ()
    assert n.aks_api_authorized_ip_ranges == ("198.51.100.7/32",)
    assert n.iot_hub_ip_filter == ("198.51.100.0/24",)


def test_a_public_vnet_range_is_refused() -> None:
    found = problems(
        "prod",
        vnetAddressSpace="20.20.0.0/16",
        subnetPrivateEndpoints="20.20.0.0/24",
        subnetAppService="20.20.1.0/26",
        subnetFunctions="20.20.1.64/26",
        subnetAksNodes="20.20.16.0/20",
        subnetContainerApps="20.20.2.64/26",
    )
    assert keys_of(found) == {"vnetAddressSpace"} and "RFC 1918" in found[0].problem


def test_a_vnet_over_the_aks_pod_cidr_is_refused() -> None:
    found = problems(
        "prod",
        vnetAddressSpace="10.240.0.0/12",
        subnetPrivateEndpoints="10.240.0.0/24",
        subnetAppService="10.240.1.0/26",
        subnetFunctions="10.240.1.64/26",
        subnetAksNodes="10.240.16.0/20",
        subnetContainerApps="10.240.2.64/26",
    )
    assert keys_of(found) == {"vnetAddressSpace"}
    assert "pod CIDR 10.244.0.0/16" in found[0].problem


def test_the_aks_subnet_is_not_needed_for_an_attached_cluster() -> None:
    attached = (
        "/subscriptions/x/resourceGroups/y/providers/Microsoft.ContainerService/managedClusters/z"
    )
    n = load("prod", aksExistingClusterId=attached, subnetAksNodes="10.20.16.0/30").network
    assert "aks_nodes" not in n.subnets
    assert n.aks_api_authorized_ip_ranges == ()  # not ours to set
    found = problems("prod", aksExistingClusterId=attached, aksApiAuthorizedIpRanges="198.51.100.7")
    assert keys_of(found) == {"aksApiAuthorizedIpRanges", "aksExistingClusterId"}


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("203.0.113.0/33", "not an IPv4 address or CIDR"),
        ("203.0.113.9/24", "use 203.0.113.0/24"),
        ("10.1.2.3", "not a public range"),
        ("192.168.0.0/16", "not a public range"),
        ("0.0.0.0/0", "admits every address"),
        ("203.0.113.9, 203.0.113.9", "listed twice"),
        ("scoring.example.com", "comma-separated"),
    ],
)
@pytest.mark.parametrize("key", ["deployerIpRanges", "aksApiAuthorizedIpRanges", "iotHubIpFilter"])
def test_allow_lists_take_public_ipv4_addresses_or_cidrs(key: str, value: str, needle: str) -> None:
    found = [p for p in problems("prod", **{key: value}) if key in p.keys]
    assert found and all(p.keys == (key,) for p in found), [str(p) for p in found]
    assert any(needle in f"{p.problem}; {p.fix}" for p in found), [str(p) for p in found]


def test_allow_lists_are_normalised_and_the_aks_one_is_capped_at_200() -> None:
    n = load("dev", aksApiAuthorizedIpRanges=" 203.0.113.9 ,198.51.100.0/25,", iotHubIpFilter="")
    assert n.network.aks_api_authorized_ip_ranges == ("203.0.113.9/32", "198.51.100.0/25")
    many = ",".join(f"203.0.{i // 256}.{i % 256}" for i in range(201))
    found = problems("dev", aksApiAuthorizedIpRanges=many)
    assert keys_of(found) == {"aksApiAuthorizedIpRanges"} and "more than 200" in found[0].problem


def test_the_deployer_allow_list_needs_network_isolation() -> None:
    found = problems("dev", deployerIpRanges="203.0.113.9")
    assert keys_of(found) == {"deployerIpRanges", "networkIsolation"}


def test_dev_may_filter_its_iot_hub_without_isolation() -> None:
    assert load("dev", iotHubIpFilter="198.51.100.0/24").network.iot_hub_ip_filter == (
        "198.51.100.0/24",
    )


def test_storage_rules_write_small_ranges_as_addresses() -> None:
    """Storage takes no /31 or /32 ranges: single addresses instead."""
    ranges = ("203.0.113.9/32", "203.0.113.10/31", "198.51.100.0/24")
    assert ns.storage_ip_rules(ranges) == [
        "203.0.113.9",
        "203.0.113.10",
        "203.0.113.11",
        "198.51.100.0/24",
    ]
