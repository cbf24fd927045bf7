"""Azure Functions target settings: the plan (Elastic Premium or Dedicated) and the Service Bus
queue of the message trigger."""

from __future__ import annotations

from dataclasses import dataclass

from components.config.reader import Reader

FUNCTIONS_SKUS = ("EP1", "EP2", "EP3", "P1v3", "P2v3", "P3v3")
# Every one supports zone redundancy (Elastic Premium and Premium v3): "Reliability in Azure
# Functions", https://learn.microsoft.com/azure/reliability/reliability-functions
ZONE_REDUNDANT_SKUS = FUNCTIONS_SKUS
SERVICE_BUS_SKUS = ("Basic", "Standard", "Premium")


@dataclass(frozen=True)
class FunctionsSettings:
    enabled: bool
    sku: str
    queue_name: str
    max_elastic_workers: int = 3
    service_bus_sku: str = "Basic"

    @property
    def elastic(self) -> bool:
        """True on an Elastic Premium (EP*) plan; False on a Dedicated (P*v3) plan."""
        return self.sku.startswith("EP")

    @property
    def zone_plan(self) -> tuple[tuple[str, str], tuple[str, int], tuple[str, ...]] | None:
        """What zone redundancy asks of the plan (components/platform/settings.py): the burst
        limit must allow the instances a zone-redundant plan keeps."""
        if not self.enabled:
            return None
        counts = ("functionsMaxElasticWorkers", self.max_elastic_workers)
        return ("functionsSku", self.sku), counts, ZONE_REDUNDANT_SKUS


def read(r: Reader) -> FunctionsSettings:
    functions = FunctionsSettings(
        enabled=r.bool("functionsEnabled"),
        sku=r.choice("functionsSku", FUNCTIONS_SKUS),
        queue_name=r.str("functionsQueueName"),
        max_elastic_workers=r.int_range("functionsMaxElasticWorkers", 1, 100),
        service_bus_sku=r.choice("functionsServiceBusSku", SERVICE_BUS_SKUS),
    )
    r.matches(
        "functionsQueueName",
        functions.queue_name,
        r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,258}[A-Za-z0-9])?",
        "not a valid Service Bus queue name",
        "use letters, digits, '.', '-', '_' or '/', starting and ending with a letter or digit",
    )
    return functions
