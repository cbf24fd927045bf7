"""App Service target settings: the Linux plan's SKU and its instance range (autoscale)."""

from __future__ import annotations

from dataclasses import dataclass

from components.config.reader import Reader

APP_SERVICE_SKUS = (
    "B1", "B2", "B3", "S1", "S2", "S3", "P1v2", "P2v2", "P3v2",
    "P0v3", "P1v3", "P2v3", "P3v3", "P1mv3", "P2mv3", "P3mv3", "P4mv3", "P5mv3",
)  # fmt: skip
# Zone redundancy takes Premium v2/v3/v4 (and Isolated v2) plans: "Reliability in Azure App
# Service", https://learn.microsoft.com/azure/reliability/reliability-app-service
ZONE_REDUNDANT_SKUS = tuple(s for s in APP_SERVICE_SKUS if s.startswith("P"))


@dataclass(frozen=True)
class AppServiceSettings:
    enabled: bool
    sku: str
    min_instances: int
    max_instances: int

    @property
    def autoscale(self) -> bool:
        return self.max_instances > self.min_instances

    @property
    def zone_plan(self) -> tuple[tuple[str, str], tuple[str, int], tuple[str, ...]] | None:
        """What zone redundancy asks of the plan (components/platform/settings.py)."""
        if not self.enabled:
            return None
        counts = ("appServiceMinInstances", self.min_instances)
        return ("appServiceSku", self.sku), counts, ZONE_REDUNDANT_SKUS


def read(r: Reader) -> AppServiceSettings:
    app = AppServiceSettings(
        enabled=r.bool("appServiceEnabled"),
        sku=r.choice("appServiceSku", APP_SERVICE_SKUS),
        min_instances=r.int_range("appServiceMinInstances", 1, 30),
        max_instances=r.int_range("appServiceMaxInstances", 1, 30),
    )
    if app.min_instances > app.max_instances:
        r.fail(
            ("appServiceMinInstances", "appServiceMaxInstances"),
            f"{app.min_instances} > {app.max_instances}",
            "minimum above maximum",
            "raise mlscore:appServiceMaxInstances or lower mlscore:appServiceMinInstances",
        )
    if app.enabled and app.sku.startswith("B") and app.max_instances > 3:
        r.fail(
            ("appServiceSku", "appServiceMaxInstances"),
            f"{app.sku}, {app.max_instances}",
            "Basic plans scale to at most 3 instances",
            "use S1/P1v3 or lower the maximum",
        )
    if app.enabled and app.autoscale and app.sku.startswith("B"):
        r.fail(
            ("appServiceSku", "appServiceMaxInstances"),
            app.sku,
            "autoscale rules need a Standard or Premium plan",
            "use S1 or P1v3, or set mlscore:appServiceMaxInstances equal to the minimum",
        )
    return app
