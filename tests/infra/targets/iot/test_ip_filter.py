"""The IoT Hub's IP filter (iotHubIpFilter) on the graph: devices connect over the internet."""

from __future__ import annotations

import pytest

from components.targets.iot.ip_filter import admitted
from tests.infra.settings_helpers import load

HUB = "azure-native:iothub:IotHubResource"


def hub_properties(run) -> dict:
    return run.one(HUB).inputs["properties"]


def test_prod_admits_the_devices_and_the_deployer_and_refuses_every_other_address(prod) -> None:
    s = load("prod").network
    props = hub_properties(prod)
    assert props["publicNetworkAccess"] == "Enabled"  # the devices' way in
    rules = props["networkRuleSets"]
    assert rules["defaultAction"] == "Deny"
    assert rules["applyToBuiltInEventHubEndpoint"] is True  # the Event Hub-compatible endpoint too
    assert [(r["ipMask"], r["action"]) for r in rules["ipRules"]] == [
        (cidr, "Allow") for cidr in (*s.iot_hub_ip_filter, *s.deployer_ip_ranges)
    ]
    names = [r["filterName"] for r in rules["ipRules"]]
    assert names == ["devices-1", "deployer-2"] and len(set(names)) == len(names)
    assert "ipFilterRules" not in props  # the retired classic filter


def test_dev_admits_every_address(dev) -> None:
    props = hub_properties(dev)
    assert props["publicNetworkAccess"] == "Enabled" and "networkRuleSets" not in props


def test_the_hub_stays_reachable_for_devices_when_data_planes_are_closed(run_stack) -> None:
    """publicNetworkAccess governs the data planes; the hub is the devices' endpoint."""
    run = run_stack("dev", publicNetworkAccess=False)
    assert run.error is None, run.error
    assert hub_properties(run)["publicNetworkAccess"] == "Enabled"


@pytest.mark.parametrize("ranges", ["198.51.100.0/24", "198.51.100.0/24,203.0.113.7"])
def test_a_filter_in_dev_lists_exactly_the_given_ranges(run_stack, ranges) -> None:
    run = run_stack("dev", iotHubIpFilter=ranges)
    assert run.error is None, run.error
    rules = hub_properties(run)["networkRuleSets"]
    expected = [r if "/" in r else f"{r}/32" for r in ranges.split(",")]
    assert [r["ipMask"] for r in rules["ipRules"]] == expected
    assert rules["defaultAction"] == "Deny"


def test_a_deployer_range_already_listed_for_the_devices_is_admitted_once() -> None:
    net = load("prod", iotHubIpFilter="198.51.100.0/24,203.0.113.0/24").network
    assert admitted(net) == ("198.51.100.0/24", "203.0.113.0/24")
    assert admitted(load("dev").network) == ()
