"""The Functions target's private endpoints under network isolation (``networkIsolation``).

The app reaches its data planes from its integration subnet (``app.vnet_integration``), so
each gets private endpoints in the VNet's endpoints subnet, registered in the private DNS zones
the platform already linked (``NetworkRef.private_dns_zones``; the queue, table and Service Bus
zones are created here, once):

- **host storage** (``AzureWebJobsStorage``): blob, queue and table. "Functions need Blob,
  Queue, Table" (File only for an Azure Files content share, which a container app has not:
  ``WEBSITES_ENABLE_APP_SERVICE_STORAGE=false``, no WEBSITE_CONTENTAZUREFILECONNECTIONSTRING):
  https://learn.microsoft.com/azure/azure-functions/functions-create-vnet#lock-down-your-storage-account
  and https://learn.microsoft.com/azure/azure-functions/configure-networking-how-to
- **trigger storage**: blob (the ``input``/``output`` containers) and queue (the Blob trigger's
  poison-blob queue): the ``__blobServiceUri`` and ``__queueServiceUri`` connection settings.
- **Service Bus**, only on Premium: private endpoints and VNet rules are Premium features
  ("Virtual Networks are supported only in Premium tier Service Bus namespaces",
  https://learn.microsoft.com/azure/service-bus-messaging/service-bus-service-endpoints; "we are
  not planning to bring this feature to the Standard tier", Azure/azure-service-bus#474).

Both accounts' firewalls (``secure_storage_account``) deny by default under isolation and admit
``deployerIpRanges`` only; the app's traffic arrives through these endpoints.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native.servicebus as servicebus
import pulumi_azure_native.storage as storage

from components.contract import ScoringDeployment
from components.platform import private_endpoints as pe
from components.platform.private_endpoints import PrivateEndpoints, PrivateEndpointsArgs

HOST_SERVICES = ("blob", "queue", "table")
TRIGGER_SERVICES = ("blob", "queue")
PREMIUM = "Premium"


def service_bus_private(d: ScoringDeployment) -> bool:
    """The namespace is reached on a private endpoint (isolation and a Premium namespace)."""
    return d.network is not None and d.settings.functions.service_bus_sku == PREMIUM


def private_endpoints(
    d: ScoringDeployment,
    host: storage.StorageAccount,
    trigger: storage.StorageAccount,
    namespace: servicebus.Namespace,
    opts: pulumi.ResourceOptions,
) -> PrivateEndpoints | None:
    """The endpoints of the app's data planes, or None without network isolation."""
    net = d.network
    if net is None:
        return None
    endpoints = [
        *pe.storage("fnhost", host.id, HOST_SERVICES),
        *pe.storage("fntrig", trigger.id, TRIGGER_SERVICES),
    ]
    if service_bus_private(d):
        endpoints.append(pe.service_bus(namespace.id))
    return PrivateEndpoints(
        "functions-endpoints",
        PrivateEndpointsArgs(
            d.settings,
            d.resource_group_name,
            net.vnet_id,
            net.subnet_ids["private_endpoints"],
            tuple(endpoints),
            existing_zones=net.private_dns_zones,
        ),
        opts,
    )
