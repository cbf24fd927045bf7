"""Elastic Premium with its triggers behind private endpoints (issue 30): the platform's scale
controller cannot read a Blob or Service Bus backlog inside the VNet, so the runtime must report
it (functionsRuntimeScaleMonitoringEnabled: functions-networking-options, "Premium plan with
virtual network triggers"; the citation is in components/targets/functions/app.py)."""

from __future__ import annotations

from preview import engine

APP = "azure-native:web:WebApp"


def function_app(run: engine.Run) -> engine.Registered:
    (app,) = [r for r in run.of_type(APP) if "functionapp" in str(r.inputs.get("kind"))]
    return app


def test_prod_elastic_premium_in_the_vnet_scales_on_the_runtimes_report(prod) -> None:
    site = engine.reveal(function_app(prod).inputs)["siteConfig"]
    assert site["functionsRuntimeScaleMonitoringEnabled"] is True
    assert function_app(prod).inputs["virtualNetworkSubnetId"]  # the triggers are in the VNet


def test_dev_without_a_vnet_leaves_scaling_to_the_platform(dev) -> None:
    site = engine.reveal(function_app(dev).inputs)["siteConfig"]
    assert "functionsRuntimeScaleMonitoringEnabled" not in site
