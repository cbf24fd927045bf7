"""The container app's platform metric alerts (stacks with ``alertsEnabled``).

Beside the host's own 5xx rate and p95 latency (log rules on Application Insights' ``requests``,
components/platform/alerts.py), the platform sees what the host cannot report: the 5xx the
ingress answers when no replica does (a cold start from zero that times out, a replica that
crashed), replicas restarting, the app pinned at its maximum replica count, and replicas near
their CPU or memory limit.

Metric names, aggregations and dimension names are those of Azure Monitor's reference for the
resource type, "Supported metrics for Microsoft.App/containerapps"
(https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-app-containerapps-metrics),
checked against a vendored copy of its table (tests/infra/targets/container_apps/data/).
The namespace is written ``Microsoft.App/containerApps`` as Azure Monitor Baseline Alerts write
it (https://github.com/Azure/azure-monitor-baseline-alerts, services/App/containerApps/alerts.yaml;
metric namespaces are case-insensitive). The reference names the ``statusCodeCategory`` dimension,
not its values; ``5xx`` is the value public rules on this metric filter on (the category the
ingress groups status codes into: 2xx, 4xx, 5xx).
"""

from __future__ import annotations

from components.contract import MetricRule
from components.platform.alerts import PLATFORM_5XX_COUNT, POD_RESTARTS, RESTART_WINDOW
from components.targets.container_apps.settings import ContainerAppsSettings

NAMESPACE = "Microsoft.App/containerApps"
CPU_PERCENT = 90  # sustained: replicas too small for the load (containerAppsCpu)
MEMORY_PERCENT = 90  # a replica at its memory limit is killed and restarted


def rules(key: str, s: ContainerAppsSettings) -> tuple[MetricRule, ...]:
    """The rules for the app of endpoint ``key`` with these settings."""
    found = [
        MetricRule(
            f"{key}-http5xx",
            f"{key}: more than {PLATFORM_5XX_COUNT} HTTP 5xx in 5 minutes (ingress, including "
            "those no replica answered)",
            1,
            NAMESPACE,
            "Requests",
            "Total",
            "GreaterThan",
            PLATFORM_5XX_COUNT,
            dimensions=(("statusCodeCategory", ("5xx",)),),
        ),
        # "The cumulative number of times the replica has restarted since it was created": the
        # highest replica's count above the threshold (AMBA's rule: Maximum > 2); it clears when
        # that replica is replaced.
        MetricRule(
            f"{key}-restarts",
            f"{key}: a replica restarted more than {POD_RESTARTS} times",
            2,
            NAMESPACE,
            "RestartCount",
            "Maximum",
            "GreaterThan",
            POD_RESTARTS,
            window=RESTART_WINDOW,
        ),
        MetricRule(
            f"{key}-memory",
            f"{key}: a replica above {MEMORY_PERCENT}% of its memory limit",
            2,
            NAMESPACE,
            "MemoryPercentage",
            "Maximum",
            "GreaterThan",
            MEMORY_PERCENT,
        ),
        MetricRule(
            f"{key}-cpu",
            f"{key}: replicas above {CPU_PERCENT}% of their CPU limit for 15 minutes",
            3,
            NAMESPACE,
            "CpuPercentage",
            "Average",
            "GreaterThan",
            CPU_PERCENT,
            window=RESTART_WINDOW,
        ),
    ]
    if s.min_replicas < s.max_replicas:  # min == max: always "at the maximum", nothing to scale
        found.append(
            MetricRule(
                f"{key}-replicas-at-max",
                f"{key}: replicas at the scale rule's maximum ({s.max_replicas})",
                2,
                NAMESPACE,
                "Replicas",
                "Maximum",
                "GreaterThanOrEqual",
                s.max_replicas,
            )
        )
    return tuple(found)
