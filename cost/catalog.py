"""Which Retail Prices API query answers each price key of the snapshot.

A price key is ``family/argument`` (``vm/Standard_D4s_v5``, ``app-service-linux/P1 v3``). Its
family says which ``$filter`` to send to https://prices.azure.com/api/retail/prices and which of
the answered items is the price (``pick``: exact fields, ``contains`` / ``excludes`` substrings).
The API's filter fields and paging are documented at
https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices
(``serviceName``, ``armRegionName``, ``armSkuName``, ``skuName``, ``meterName``, ``priceType``;
answers of at most 1,000 items with a ``NextPageLink`` to the next page). Filter values are case
sensitive from API version 2023-01-01-preview on (same page), so they are written as Azure spells
them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

API = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"
ANY_REGION = "*"


@dataclass(frozen=True)
class Family:
    service: str
    sku_field: str = ""  # the item field the key's argument must equal (filtered server-side)
    fixed: Mapping[str, str] = field(default_factory=dict)  # more exact filters
    contains: Mapping[str, str] = field(default_factory=dict)  # picked client-side
    excludes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # a meter sold everywhere at one price ("Global"), ANY_REGION for one the API lists under no
    # region of its own (no armRegionName clause), else the stack's region
    region: str = ""
    # meterName -> the tierMinimumUnits its billing starts at, where the API's first tier is a
    # free allowance priced 0: the price is the first paid tier (picked client-side).
    paid_from: Mapping[str, float] = field(default_factory=dict)

    def filter(self, region: str, argument: str) -> str:
        parts = [f"serviceName eq '{self.service}'", "priceType eq 'Consumption'"]
        if self.region != ANY_REGION and (self.region or region):
            parts.append(f"armRegionName eq '{self.region or region}'")
        if self.sku_field:
            parts.append(f"{self.sku_field} eq '{argument}'")
        parts += [f"{k} eq '{v}'" for k, v in self.fixed.items()]
        return " and ".join(parts)

    def picks(self, item: Mapping[str, Any]) -> bool:
        if item.get("type", "Consumption") != "Consumption":
            return False
        for key, text in self.contains.items():
            if text.lower() not in str(item.get(key, "")).lower():
                return False
        for key, words in self.excludes.items():
            if any(w.lower() in str(item.get(key, "")).lower() for w in words):
                return False
        start = self.paid_from.get(str(item.get("meterName", "")), 0.0)
        return float(item.get("tierMinimumUnits") or 0) >= start


_LINUX_VM = {"productName": ("Windows",), "skuName": ("Spot", "Low Priority")}

FAMILIES: dict[str, Family] = {
    # Linux pay-as-you-go VMs (AKS nodes, Azure ML managed online deployments and clusters).
    "vm": Family("Virtual Machines", "armSkuName", excludes=_LINUX_VM),
    "vm-low-priority": Family(
        "Virtual Machines",
        "armSkuName",
        contains={"skuName": "Low Priority"},
        excludes={"productName": ("Windows",)},
    ),
    # skuName "P1 v3" (spaced), productName "... Plan - Linux" for the Linux plan (the API's
    # eastus answer recorded in https://github.com/rshade/finfocus-plugin-azure-public/blob/0d26960/
    # internal/pricing/testdata/retail/README.md, "App Service plans").
    "app-service-linux": Family("Azure App Service", "skuName", contains={"productName": "Linux"}),
    # productName "Premium Functions", skuName "Premium", meters "Premium vCPU Duration" (1 Hour)
    # and "Premium Memory Duration" (1 GiB Hour): tests/cost/data/finfocus-eastus-retail.json.
    "functions-premium": Family("Functions", "meterName", fixed={"skuName": "Premium"}),
    # skuName "Standard" answers "Standard Uptime SLA" and "Standard Long Term Support" (LTS is an
    # add-on the program does not declare): tests/cost/data/finfocus-eastus-retail.json.
    "aks-tier": Family(
        "Azure Kubernetes Service", "skuName", excludes={"meterName": ("Long Term Support",)}
    ),
    # "P10 LRS Disk" is also sold as a Premium Page Blob; "... Disk Mount" is another meter.
    "managed-disk": Family(
        "Storage",
        "skuName",
        fixed={"productName": "Premium SSD Managed Disks"},
        contains={"meterName": "Disk"},
        excludes={"meterName": ("Mount",)},
    ),
    # Azure Managed Redis is sold under serviceName "Redis Cache", productName "Azure Managed
    # Redis - <family>", skuName the size ("B0"), meterName "<size> Cache Instance", per instance
    # hour (Infracost's managed_redis.go, https://github.com/infracost/infracost/blob/95ba4f4/
    # internal/resources/azure/managed_redis.go, golden tests run against its price database).
    "managed-redis": Family(
        "Redis Cache", "meterName", contains={"productName": "Azure Managed Redis"}
    ),
    "container-instances": Family(
        "Container Instances", "meterName", fixed={"skuName": "Standard"}
    ),
    "container-apps": Family("Azure Container Apps", "meterName"),
    "container-registry": Family(
        "Container Registry", "skuName", contains={"meterName": "Registry Unit"}
    ),
    "iot-hub": Family("IoT Hub", "skuName", contains={"meterName": "Unit"}),
    # Standard's first 13M operations a month are the base charge's (the API's first tier, at 0;
    # Infracost prices "Messaging operations (13M-100M)" from tier 13 of meterName "...Messaging
    # Operations$": https://github.com/infracost/infracost/blob/95ba4f4/internal/resources/azure/servicebus_namespace.go).
    "service-bus": Family(
        "Service Bus", "meterName", paid_from={"Standard Messaging Operations": 13}
    ),
    # productName 'Key Vault': skuName 'Standard' alone also answers Azure Dedicated HSM
    # (https://github.com/ahmadabdalla/azure-cost-calculator/blob/198013c/.github/skills/
    # azure-cost-calculator/references/services/security/key-vault.md).
    "key-vault": Family(
        "Key Vault", "meterName", fixed={"skuName": "Standard", "productName": "Key Vault"}
    ),
    "blob-storage": Family("Storage", "meterName", fixed={"productName": "General Block Blob v2"}),
    # Ingestion's first tier (0-5 GB) is the free allowance at 0; the paid price starts at tier 5
    # (Infracost: skuName "Analytics Logs", meterName "...Data Ingestion$", StartUsageAmount "5",
    # https://github.com/infracost/infracost/blob/95ba4f4/internal/resources/azure/log_analytics_workspace.go).
    "log-analytics": Family(
        "Log Analytics", "meterName", paid_from={"Analytics Logs Data Ingestion": 5}
    ),
    # Log alert rules: meterName "Alerts System Log Monitored at <1|5|10|15> Minute Frequency",
    # in the rule's region (Infracost's monitor_scheduled_query_rules_alert.go, same commit).
    "azure-monitor": Family("Azure Monitor", "meterName"),
    # Metric alert rules are "global" resources: meterName "Alerts Metric Monitored" sold under
    # armRegionName "Global", first 10 time series at 0 (Infracost's monitor_metric_alert.go:
    # normalizedRegion "global" -> "Global", StartUsageAmount "10").
    "azure-monitor-global": Family(
        "Azure Monitor", "meterName", region="Global", paid_from={"Alerts Metric Monitored": 10}
    ),
    # Private endpoints are one Global meter, not a regional one.
    "private-link": Family(
        "Virtual Network",
        "meterName",
        fixed={"productName": "Virtual Network Private Link"},
        region="Global",
    ),
    # Private DNS is listed under armRegionName '' or 'Global', under no standard region
    # (https://github.com/ahmadabdalla/azure-cost-calculator/blob/198013c/.github/skills/
    # azure-cost-calculator/references/services/networking/private-dns.md): the query names none.
    "private-dns": Family(
        "Azure DNS", "meterName", fixed={"productName": "Azure DNS"}, region=ANY_REGION
    ),
}


class UnknownFamily(KeyError):
    pass


def family_of(key: str) -> tuple[Family, str]:
    name, _, argument = key.partition("/")
    family = FAMILIES.get(name)
    if family is None:
        raise UnknownFamily(f"no query for price key {key!r}: add its family to cost/catalog.py")
    return family, argument


def query(key: str, region: str) -> str:
    """The ``$filter`` that ``--refresh`` sends for ``key`` in ``region``."""
    family, argument = family_of(key)
    return family.filter(region, argument)
