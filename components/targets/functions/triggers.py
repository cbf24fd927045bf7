"""What the Functions target's triggers listen on: the Blob trigger's containers in the trigger
storage account, and the Service Bus namespace (local/SAS auth off, TLS 1.2) with its queue."""

from __future__ import annotations

from urllib.parse import urlsplit

import pulumi
import pulumi_azure_native.servicebus as servicebus
import pulumi_azure_native.storage as storage

from components.config.settings import Settings

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
        public_network_access="Enabled" if s.public_network_access else "Disabled",
        tags=dict(s.tags),
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
