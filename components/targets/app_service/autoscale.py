"""App Service target autoscale: CPU-based rules on the plan, out fast above 70%, in slowly below
30%, between the stack's minimum and maximum instance counts."""

from __future__ import annotations

import pulumi
import pulumi_azure_native.monitor as monitor
import pulumi_azure_native.web as web

from components.contract import ScoringDeployment

CPU_SCALE_OUT_PERCENT = 70
CPU_SCALE_IN_PERCENT = 30


def cpu_autoscale(
    d: ScoringDeployment, plan: web.AppServicePlan, opts: pulumi.ResourceOptions
) -> monitor.AutoscaleSetting:
    """CPU-based rules on the plan: out fast above 70%, in slowly below 30%."""
    app = d.settings.app_service
    return monitor.AutoscaleSetting(
        "autoscale",
        autoscale_setting_name=d.naming.dashed("plan-autoscale"),
        resource_group_name=d.resource_group_name,
        location=d.location,
        target_resource_uri=plan.id,
        enabled=True,
        profiles=[
            monitor.AutoscaleProfileArgs(
                name="cpu",
                capacity=monitor.ScaleCapacityArgs(
                    minimum=str(app.min_instances),
                    maximum=str(app.max_instances),
                    default=str(app.min_instances),
                ),
                rules=[
                    _cpu_rule(
                        plan,
                        monitor.ScaleDirection.INCREASE,
                        monitor.ComparisonOperationType.GREATER_THAN,
                        CPU_SCALE_OUT_PERCENT,
                        "PT5M",
                    ),
                    _cpu_rule(
                        plan,
                        monitor.ScaleDirection.DECREASE,
                        monitor.ComparisonOperationType.LESS_THAN,
                        CPU_SCALE_IN_PERCENT,
                        "PT10M",
                    ),
                ],
            )
        ],
        tags=dict(d.tags),
        opts=opts,
    )


def _cpu_rule(
    plan: web.AppServicePlan,
    direction: monitor.ScaleDirection,
    operator: monitor.ComparisonOperationType,
    threshold: int,
    cooldown: str,
) -> monitor.ScaleRuleArgs:
    """One instance more or less when the plan's average CPU crosses ``threshold``."""
    return monitor.ScaleRuleArgs(
        metric_trigger=monitor.MetricTriggerArgs(
            metric_name="CpuPercentage",
            metric_namespace="microsoft.web/serverfarms",
            metric_resource_uri=plan.id,
            operator=operator,
            statistic=monitor.MetricStatisticType.AVERAGE,
            threshold=threshold,
            time_aggregation=monitor.TimeAggregationType.AVERAGE,
            time_grain="PT1M",
            time_window="PT5M" if direction == monitor.ScaleDirection.INCREASE else "PT10M",
        ),
        scale_action=monitor.ScaleActionArgs(
            direction=direction,
            type=monitor.ScaleType.CHANGE_COUNT,
            value="1",
            cooldown=cooldown,
        ),
    )
