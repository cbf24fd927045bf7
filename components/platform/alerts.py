"""Alert rules (stacks with ``alertsEnabled``): per endpoint, an action group that emails
``alertEmailReceivers``.

- **Every container endpoint** (App Service, Functions, ACI, AKS): log search alerts
  (``monitor.ScheduledQueryRule``, kind ``LogAlert``, API 2025-01-01-preview in
  pulumi-azure-native 3.x) on the Application Insights component's ``requests``, one endpoint per
  rule by ``cloud_RoleName`` (the host sets ``OTEL_SERVICE_NAME`` to the endpoint; the Functions
  host reports as the function app): the 5xx share over 5 minutes above ``alert5xxPercent``, and
  the 95th-percentile ``duration`` (milliseconds) above ``alertP95LatencyMs``.
- **Web and function apps**, beside those: the platform's own ``Http5xx`` count (metric alert,
  ``Microsoft.Web/sites``), which includes the 5xx the front end answers when the container does
  not (502/503 while it restarts), which no host telemetry can report
  (https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-web-sites-metrics).
- **A target's own platform metrics** (``PlatformMetrics``: Container Apps' ``Requests`` 5xx,
  restarts, replicas at the maximum, CPU and memory): metric alerts as the target declares them
  (components/targets/container_apps/alerts.py).
- **The Azure ML online endpoint**: Azure ML, not the host, answers its clients; its traffic log
  (``AmlOnlineEndpointTrafficLog``, sent to Log Analytics by its diagnostic setting) has the
  status code (``ResponseCode``; 424 with ``ModelStatusCode`` when the model container failed) and
  ``TotalDurationMs``
  (https://learn.microsoft.com/azure/azure-monitor/reference/tables/amlonlineendpointtrafficlog).
- **AKS**: from Container Insights' ``KubePodInventory`` (the cluster already sends it,
  ``components/targets/aks/insights.py``; columns:
  https://learn.microsoft.com/azure/azure-monitor/reference/tables/kubepodinventory): scoring
  containers restarting (``ContainerRestartCount`` growing within 15 minutes), and running scoring
  pods at the autoscaler's maximum replicas (no headroom left).

The Log Analytics tables the Azure ML and AKS rules query (``AmlOnlineEndpointTrafficLog``,
``KubePodInventory``) appear in a new workspace only once the first records arrive, after this
same ``pulumi up``; Azure validates a rule's query on creation and refuses it ("Failed to resolve
table or column expression"), so those rules set ``skipQueryValidation``: "used by the
scheduledQueryRule RP so that a rule can be deployed before a table exists"
(https://github.com/Azure/azure-rest-api-specs/pull/32650), the workaround the Azure Monitor team
advised for ``KubePodInventory`` in the AKS baseline (https://github.com/mspnp/aks-baseline/pull/422).
hashicorp/terraform-provider-azurerm#28293 reports a case where the service still validated; a
second ``pulumi up`` once the tables exist then creates the rule. The Application Insights rules
read the component's own ``requests``, which exists from its creation.

Every rule notifies the one action group (``monitor.ActionGroup``: email receivers with the
common alert schema, https://learn.microsoft.com/azure/azure-monitor/alerts/action-groups).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.monitor as monitor

from components.contract import (
    IDENTITY_TARGETS,
    AksWorkload,
    AlertTarget,
    AmlEndpoint,
    MetricRule,
    PlatformMetrics,
    WebSite,
)
from components.settings import Settings

WINDOW = "PT5M"
RESTART_WINDOW = "PT15M"
PLATFORM_5XX_COUNT = 10  # front-end 5xx in 5 minutes (the rate rule covers what the host sees)
POD_RESTARTS = 2  # scoring container restarts in 15 minutes
SHORT_NAME_MAX = 12  # an action group's short name (shown in SMS and email)


@dataclass(frozen=True)
class HostEndpoint:
    """An endpoint whose requests the scoring host reports to Application Insights."""

    name: str  # the endpoints output key, the host's SCORING_ENDPOINT_NAME
    role_names: tuple[str, ...]  # its requests' cloud_RoleName values


@dataclass(frozen=True)
class AlertsArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    app_insights_id: pulumi.Input[str]
    log_analytics_id: pulumi.Input[str]
    host_endpoints: Sequence[HostEndpoint] = ()
    targets: Sequence[AlertTarget] = ()  # the components' alert targets (their Interfaces)


def host_endpoints(s: Settings, endpoints: Iterable[str]) -> list[HostEndpoint]:
    """The endpoints whose requests the scoring host reports: the container targets (the Azure ML
    endpoint has its own traffic log; no connection string reaches an IoT Edge module). The
    Functions host reports its HTTP trigger's requests as the function app."""
    found = []
    for name in endpoints:
        if name not in IDENTITY_TARGETS:
            continue
        roles = (name, s.naming.function_app()) if name == "functions" else (name,)
        found.append(HostEndpoint(name, roles))
    return found


def _names(role_names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in role_names)


def host_5xx_query(endpoint: HostEndpoint) -> str:
    return (
        f"requests | where cloud_RoleName in ({_names(endpoint.role_names)})"
        " | summarize total = count(), failed = countif(toint(resultCode) >= 500)"
        " | where total > 0 | extend percent = 100.0 * failed / total | project percent"
    )


def host_p95_query(endpoint: HostEndpoint) -> str:
    return (
        f"requests | where cloud_RoleName in ({_names(endpoint.role_names)})"
        " | summarize p95 = percentile(duration, 95)"
    )


def aml_5xx_query(endpoint_name: str) -> str:
    return (
        f'AmlOnlineEndpointTrafficLog | where EndpointName == "{endpoint_name}"'
        " | summarize total = count(), failed = countif(toint(ResponseCode) >= 500"
        " or toint(ModelStatusCode) >= 500)"
        " | where total > 0 | extend percent = 100.0 * failed / total | project percent"
    )


def aml_p95_query(endpoint_name: str) -> str:
    return (
        f'AmlOnlineEndpointTrafficLog | where EndpointName == "{endpoint_name}"'
        " | summarize p95 = percentile(TotalDurationMs, 95)"
    )


def _pods(cluster_id: str, workload: str) -> str:
    return (
        f'KubePodInventory | where ClusterId =~ "{cluster_id}"'
        ' | where ControllerKind == "ReplicaSet"'
        f' and ControllerName matches regex "^{workload}-[a-z0-9]+$"'
    )


def restarts_query(cluster_id: str, workload: str) -> str:
    return (
        _pods(cluster_id, workload)
        + " | summarize restarts = max(ContainerRestartCount) - min(ContainerRestartCount)"
        " by Name, ContainerName | summarize restarts = sum(restarts)"
    )


def replicas_query(cluster_id: str, workload: str) -> str:
    return (
        _pods(cluster_id, workload) + ' | where PodStatus == "Running"'
        " | summarize pods = dcount(Name) by bin(TimeGenerated, 1m) | summarize pods = max(pods)"
    )


class Alerts(pulumi.ComponentResource):
    """``action_group`` and the rules by logical name (``rules``)."""

    def __init__(self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:platform:Alerts", name, None, opts)
        self._args = args
        s = args.settings
        o = s.observability
        self.action_group = self._action_group()
        self.rules: dict[str, pulumi.CustomResource] = {}
        for ep in args.host_endpoints:
            self._log_rule(
                f"{ep.name}-5xx",
                1,
                host_5xx_query(ep),
                "percent",
                o.alert_5xx_percent,
                args.app_insights_id,
                f"{ep.name}: more than {o.alert_5xx_percent}% of requests failed (5xx)",
            )
            self._log_rule(
                f"{ep.name}-p95",
                2,
                host_p95_query(ep),
                "p95",
                o.alert_p95_latency_ms,
                args.app_insights_id,
                f"{ep.name}: p95 latency above {o.alert_p95_latency_ms} ms",
            )
        for target in args.targets:
            if isinstance(target, WebSite):
                self._site_5xx(target)
            elif isinstance(target, AmlEndpoint):
                self._aml_rules(target.endpoint_name)
            elif isinstance(target, PlatformMetrics):
                for rule in target.rules:
                    self._metric_rule(target.resource_id, rule)
            else:
                self._aks_rules(target)
        self.register_outputs({"action_group": self.action_group.id, "rules": sorted(self.rules)})

    # --- the action group -----------------------------------------------------------------------
    def _action_group(self) -> monitor.ActionGroup:
        s = self._args.settings
        return monitor.ActionGroup(
            "action-group",
            action_group_name=s.naming.dashed("alerts"),
            resource_group_name=self._args.resource_group_name,
            location="Global",  # action groups are global resources
            group_short_name=f"{s.naming.prefix}{s.stack}"[:SHORT_NAME_MAX],
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=f"email-{i}", email_address=email, use_common_alert_schema=True
                )
                for i, email in enumerate(s.observability.alert_emails, start=1)
            ],
            tags=dict(s.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    # --- rules ----------------------------------------------------------------------------------
    def _log_rule(
        self,
        name: str,
        severity: int,
        query: pulumi.Input[str],
        column: str,
        threshold: float,
        scope: pulumi.Input[str],
        description: str,
        *,
        operator: str = "GreaterThan",
        window: str = WINDOW,
        new_table: bool = False,
    ) -> None:
        """``new_table``: the query reads a Log Analytics table a new workspace does not have
        yet (skip the creation-time query validation, module docstring)."""
        s = self._args.settings
        self.rules[name] = monitor.ScheduledQueryRule(
            name,
            rule_name=s.naming.dashed(name.replace("_", "-")),
            resource_group_name=self._args.resource_group_name,
            location=s.location,
            kind="LogAlert",
            description=description,
            display_name=f"{s.project} {s.stack}: {description}",
            severity=severity,
            enabled=True,
            scopes=[scope],
            evaluation_frequency=WINDOW,
            window_size=window,
            criteria=monitor.ScheduledQueryRuleCriteriaArgs(
                all_of=[
                    monitor.ConditionArgs(
                        query=query,
                        time_aggregation="Maximum",
                        metric_measure_column=column,
                        operator=operator,
                        threshold=threshold,
                        failing_periods=monitor.ConditionFailingPeriodsArgs(
                            number_of_evaluation_periods=1, min_failing_periods_to_alert=1
                        ),
                    )
                ]
            ),
            auto_mitigate=True,
            skip_query_validation=True if new_table else None,
            actions=monitor.ActionsArgs(action_groups=[self.action_group.id]),
            tags=dict(s.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _site_5xx(self, site: WebSite) -> None:
        s = self._args.settings
        name = f"{site.name}-http5xx"
        self.rules[name] = monitor.MetricAlert(
            name,
            rule_name=s.naming.dashed(name.replace("_", "-")),
            resource_group_name=self._args.resource_group_name,
            location="global",
            description=f"{site.name}: more than {PLATFORM_5XX_COUNT} HTTP 5xx in 5 minutes "
            "(front end, including those the container never answered)",
            severity=1,
            enabled=True,
            scopes=[site.site_id],
            evaluation_frequency="PT1M",
            window_size=WINDOW,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[
                    monitor.MetricCriteriaArgs(
                        criterion_type="StaticThresholdCriterion",
                        name="http5xx",
                        metric_namespace="Microsoft.Web/sites",
                        metric_name="Http5xx",
                        operator="GreaterThan",
                        threshold=PLATFORM_5XX_COUNT,
                        time_aggregation="Total",
                    )
                ],
            ),
            auto_mitigate=True,
            actions=[monitor.MetricAlertActionArgs(action_group_id=self.action_group.id)],
            tags=dict(s.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _metric_rule(self, scope: pulumi.Input[str], rule: MetricRule) -> None:
        """A target's own metric rule (``PlatformMetrics``), as it declares it."""
        s = self._args.settings
        self.rules[rule.name] = monitor.MetricAlert(
            rule.name,
            rule_name=s.naming.dashed(rule.name.replace("_", "-")),
            resource_group_name=self._args.resource_group_name,
            location="global",
            description=rule.description,
            severity=rule.severity,
            enabled=True,
            scopes=[scope],
            evaluation_frequency="PT1M",
            window_size=rule.window,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[
                    monitor.MetricCriteriaArgs(
                        criterion_type="StaticThresholdCriterion",
                        name=rule.metric_name,
                        metric_namespace=rule.metric_namespace,
                        metric_name=rule.metric_name,
                        operator=rule.operator,
                        threshold=rule.threshold,
                        time_aggregation=rule.time_aggregation,
                        dimensions=[
                            monitor.MetricDimensionArgs(name=n, operator="Include", values=list(v))
                            for n, v in rule.dimensions
                        ]
                        or None,
                    )
                ],
            ),
            auto_mitigate=True,
            actions=[monitor.MetricAlertActionArgs(action_group_id=self.action_group.id)],
            tags=dict(s.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _aml_rules(self, endpoint_name: pulumi.Input[str]) -> None:
        o = self._args.settings.observability
        workspace = self._args.log_analytics_id
        name = pulumi.Output.from_input(endpoint_name)
        self._log_rule(
            "aml_online-5xx",
            1,
            name.apply(aml_5xx_query),
            "percent",
            o.alert_5xx_percent,
            workspace,
            f"aml_online: more than {o.alert_5xx_percent}% of requests failed (5xx)",
            new_table=True,
        )
        self._log_rule(
            "aml_online-p95",
            2,
            name.apply(aml_p95_query),
            "p95",
            o.alert_p95_latency_ms,
            workspace,
            f"aml_online: p95 latency above {o.alert_p95_latency_ms} ms",
            new_table=True,
        )

    def _aks_rules(self, aks: AksWorkload) -> None:
        workspace = self._args.log_analytics_id
        cluster = pulumi.Output.from_input(aks.cluster_id)
        self._log_rule(
            "aks-restarts",
            2,
            cluster.apply(lambda c: restarts_query(c, aks.workload)),
            "restarts",
            POD_RESTARTS,
            workspace,
            f"aks: scoring containers restarted more than {POD_RESTARTS} times in 15 minutes",
            window=RESTART_WINDOW,
            new_table=True,
        )
        if aks.max_replicas is not None:
            self._log_rule(
                "aks-replicas-at-max",
                2,
                cluster.apply(lambda c: replicas_query(c, aks.workload)),
                "pods",
                aks.max_replicas,
                workspace,
                f"aks: scoring pods at the autoscaler's maximum ({aks.max_replicas})",
                operator="GreaterThanOrEqual",
                new_table=True,
            )
