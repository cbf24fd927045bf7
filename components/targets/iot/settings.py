"""IoT Hub / IoT Edge target settings: the hub, the edge device and its runtime."""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.config.reader import Reader

IOT_SKUS = ("F1", "S1", "S2", "S3")
# IoT Edge LTS releases whose servicing has ended (1.5 LTS: 12 Nov 2026; 1.4 LTS: 12 Nov 2024).
IOT_EDGE_UNSUPPORTED = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")
IOT_EDGE_HUB_PORTS = (443, 5671, 8883)


@dataclass(frozen=True)
class IotSettings:
    enabled: bool
    hub_sku: str
    hub_capacity: int
    device_id: str
    edge_runtime_version: str = "1.6"
    edge_host_port: int = 5001
    store_forward_ttl_seconds: int = 7200
    device_host: str = ""


def read(r: Reader) -> IotSettings:
    iot = IotSettings(
        enabled=r.bool("iotEnabled"),
        hub_sku=r.choice("iotHubSku", IOT_SKUS),
        hub_capacity=r.int_range("iotHubCapacity", 1, 200),
        device_id=r.str("iotEdgeDeviceId"),
        edge_runtime_version=r.str("iotEdgeRuntimeVersion"),
        edge_host_port=r.int_range("iotEdgeHostPort", 1, 65535),
        store_forward_ttl_seconds=r.int_range("iotEdgeStoreForwardTtlSeconds", 1, 7 * 86400),
        device_host=r.str("iotEdgeDeviceHost"),
    )
    _check_runtime(r, iot)
    _check_device(r, iot)
    if iot.hub_sku == "F1" and iot.hub_capacity != 1:
        r.fail(
            ("iotHubSku", "iotHubCapacity"),
            iot.hub_capacity,
            "the free tier has exactly one unit",
            "set mlscore:iotHubCapacity to 1",
        )
    return iot


def _check_runtime(r: Reader, iot: IotSettings) -> None:
    version = iot.edge_runtime_version
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
        r.fail(
            "iotEdgeRuntimeVersion",
            version,
            "not an IoT Edge version",
            "use a version such as 1.6 (the LTS release) or 1.6.2",
        )
    elif ".".join(version.split(".")[:2]) in IOT_EDGE_UNSUPPORTED:
        r.fail(
            "iotEdgeRuntimeVersion",
            version,
            "this IoT Edge release is past its end of servicing (1.5 LTS ended 12 Nov 2026)",
            "use 1.6, the current LTS release, and update the device's runtime to it",
        )
    if iot.edge_host_port in IOT_EDGE_HUB_PORTS:
        r.fail(
            "iotEdgeHostPort",
            iot.edge_host_port,
            "the edge hub binds 443, 5671 and 8883 on the device",
            "pick another host port, e.g. 5001",
        )


def _check_device(r: Reader, iot: IotSettings) -> None:
    if iot.device_host and not re.fullmatch(
        r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
        iot.device_host,
    ):
        r.fail(
            "iotEdgeDeviceHost",
            iot.device_host,
            "not a host name or IPv4 address",
            "set the name clients use to reach the device (e.g. edge01.plant.local), or leave "
            "it empty when no client calls the module over the network",
        )
    r.matches(
        "iotEdgeDeviceId",
        iot.device_id,
        r"[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}",
        "not a valid IoT Hub device ID",
        "use up to 128 letters, digits and - . _ : characters",
    )
