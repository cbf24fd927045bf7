"""What a drift check (``pulumi refresh``) must not report as drift on App Service (issue 30):
the plan's instance count, which autoscale owns once it is on."""

from __future__ import annotations

from preview import engine

PLAN = "azure-native:web:AppServicePlan"


def plan(run: engine.Run) -> engine.Registered:
    (found,) = [p for p in run.of_type(PLAN) if "mlscore:target:AppService::" in p.parent]
    return found


def test_prod_autoscaled_plan_leaves_its_capacity_to_autoscale(prod) -> None:
    assert prod.of_type("azure-native:monitor:AutoscaleSetting")
    assert plan(prod).ignore_changes == ("sku.capacity",)
    assert plan(prod).inputs["sku"]["capacity"] == 2  # appServiceMinInstances: the start


def test_dev_fixed_plan_keeps_its_capacity(dev) -> None:
    assert not dev.of_type("azure-native:monitor:AutoscaleSetting")
    assert plan(dev).ignore_changes == ()
