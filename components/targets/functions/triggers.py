"""What the Functions target's triggers listen on: the Blob trigger's containers in the trigger
storage account, and the Service Bus namespace (local/SAS auth off, TLS 1.2) with its queue."""

from __future__ import annotations

from urllib.parse import urlsplit

import pulumi
import pulumi_azure_native.servicebus as servicebus
import pulumi_azure_native.storage as storage

from components.platform.network_settings import ALLOW_LIST
from components.settings import Settings

INPUT_CONTAINER = "input"
OUTPUT_CONTAINER = "output"


def trigger_containers(
    account: storage.StorageAccount,
    resource_group_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> dict[str, storage.BlobContainer]:
    """The private ``input`` and ``output`` containers of the Blob trigger."""
    return {
        c: storage.BlobContainer(
            f"{c}-container",
            container_name=c,
            account_name=account.name,
            resource_group_name=resource_group_name,
            public_access=storage.PublicAccess.NONE,
            opts=opts,
        )
        for c in (INPUT_CONTAINER, OUTPUT_CONTAINER)
    }


def service_bus_namespace(
    s: Settings, resource_group_name: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> servicebus.Namespace:
    sku = s.functions.service_bus_sku
    return servicebus.Namespace(
        "service-bus",
        namespace_name=s.naming.service_bus(),
        resource_group_name=resource_group_name,
        location=s.location,
        sku=servicebus.SBSkuArgs(
            name=servicebus.SkuName(sku),
            tier=servicebus.SkuTier(sku),
            capacity=1 if sku == "Premium" else None,  # messaging units
        ),
        disable_local_auth=True,  # Entra ID only: no SAS keys to leak
        minimum_tls_version=servicebus.TlsVersion.TLS_VERSION_1_2,
        public_network_access=namespace_public_access(s),
        tags=dict(s.tags),
        opts=opts,
    )


def namespace_public_access(s: Settings) -> str:
    """``publicNetworkAccess`` of the namespace. A Standard (or Basic) namespace has no private
    endpoint and no VNet rule (Premium features: https://learn.microsoft.com/azure/
    service-bus-messaging/service-bus-service-endpoints), and its IP firewall could not admit
    the app, whose outbound traffic leaves the integration subnet from no fixed address; so it
    stays public under isolation too, Entra ID only (local auth off): the documented gap of a
    Standard namespace (docs/security.md). A Premium namespace under isolation follows the data
    planes' rule: ``allow-list`` keeps the public endpoint behind :func:`namespace_firewall`,
    ``private`` disables it."""
    if s.network.isolated and s.functions.service_bus_sku == "Premium":
        return "Enabled" if s.network.data_plane == ALLOW_LIST else "Disabled"
    return "Enabled" if s.public_network_access else "Disabled"


def namespace_firewall(
    s: Settings,
    namespace: servicebus.Namespace,
    resource_group_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> servicebus.NamespaceNetworkRuleSet | None:
    """Default deny with ``deployerIpRanges`` allowed, for a Premium namespace in ``allow-list``
    mode (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-ip-filtering);
    the app arrives on the private endpoint. None in every other case."""
    if not (s.network.isolated and s.functions.service_bus_sku == "Premium"):
        return None
    if s.network.data_plane != ALLOW_LIST:
        return None
    return servicebus.NamespaceNetworkRuleSet(
        "service-bus-firewall",
        namespace_name=namespace.name,
        resource_group_name=resource_group_name,
        default_action=servicebus.DefaultAction.DENY,
        public_network_access=servicebus.PublicNetworkAccessFlag.ENABLED,
        ip_rules=[
            servicebus.NWRuleSetIpRulesArgs(ip_mask=r, action=servicebus.NetworkRuleIPAction.ALLOW)
            for r in s.network.deployer_ip_ranges
        ],
        trusted_service_access_enabled=True,
        opts=opts,
    )


def trigger_queue(
    queue_name: str,
    namespace: servicebus.Namespace,
    resource_group_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> servicebus.Queue:
    return servicebus.Queue(
        "queue",
        queue_name=queue_name,
        namespace_name=namespace.name,
        resource_group_name=resource_group_name,
        max_delivery_count=5,
        lock_duration="PT1M",
        dead_lettering_on_message_expiration=True,
        opts=opts,
    )


def namespace_fqdn(namespace: servicebus.Namespace) -> pulumi.Output[str]:
    """The namespace's host name, as the Service Bus trigger's identity connection takes it."""
    return namespace.service_bus_endpoint.apply(_fqdn)


def _fqdn(endpoint: str | None) -> str:
    """``https://x.servicebus.windows.net:443/`` -> ``x.servicebus.windows.net``."""
    return urlsplit(endpoint or "").hostname or ""
