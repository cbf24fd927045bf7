"""The IoT Hub's IP filter from ``iotHubIpFilter`` (issue 18).

Devices connect to the hub over the internet, so its public endpoint stays on. With the list
empty the hub admits every address (no rule set is declared). With it set, the hub's IP filter
("Selected IP ranges") admits the listed ranges and refuses every other address: the rule set's
default action is Deny and it applies to the built-in Event Hub-compatible endpoint too. The
filter lives under ``properties.networkRuleSets``
(https://learn.microsoft.com/azure/iot-hub/iot-hub-ip-filtering, "Retrieve and update IP filters
using Azure CLI"); the classic ``ipFilterRules`` (accept by default, ordered reject rules) is
retired: https://learn.microsoft.com/azure/iot-hub/iot-hub-ip-filter-classic.

The deploying machine calls the hub's REST API too (the edge device identity and the deployment,
``components/providers/iot_edge.py``), so ``deployerIpRanges`` is admitted beside the devices.
"""

from __future__ import annotations

import pulumi_azure_native.iothub as iothub

from components.platform.network_settings import NetworkSettings


def admitted(net: NetworkSettings) -> tuple[str, ...]:
    """The ranges the hub admits: the devices' (iotHubIpFilter), then the deployer's; () = all."""
    if not net.iot_hub_ip_filter:
        return ()
    extra = tuple(r for r in net.deployer_ip_ranges if r not in net.iot_hub_ip_filter)
    return net.iot_hub_ip_filter + extra


def hub_network_rules(net: NetworkSettings) -> iothub.NetworkRuleSetPropertiesArgs | None:
    ranges = admitted(net)
    if not ranges:
        return None
    devices = set(net.iot_hub_ip_filter)
    return iothub.NetworkRuleSetPropertiesArgs(
        default_action=iothub.DefaultAction.DENY,
        apply_to_built_in_event_hub_endpoint=True,
        ip_rules=[
            iothub.NetworkRuleSetIpRuleArgs(
                filter_name=f"{'devices' if r in devices else 'deployer'}-{i + 1}",
                ip_mask=r,
                action=iothub.NetworkRuleIPAction.ALLOW,
            )
            for i, r in enumerate(ranges)
        ],
    )
