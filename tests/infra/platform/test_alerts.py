"""Alert rules under mocks with the real stack files: in prod, per endpoint, 5xx rate and p95
latency (App Insights requests, the platform's Http5xx, Azure ML's traffic log), AKS restarts and
replicas at their maximum, all to one action group emailing the configured receivers; in dev,
none."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.platform import alerts
from preview import engine, fakes

GROUP = "azure-native:monitor:ActionGroup"
LOG_RULE = "azure-native:monitor:ScheduledQueryRule"
METRIC_RULE = "azure-native:monitor:MetricAlert"


def rid(r: engine.Registered) -> str:
    """A resource's ARM ID as the fake Azure gives it."""
    return r.outputs["id"] if "id" in r.outputs else fakes.arm_id(r.type, r.azure_name)


def rules(run: engine.Run, type_: str) -> dict[str, dict[str, Any]]:
    return {r.name: engine.reveal(r.inputs) for r in run.of_type(type_)}


@pytest.fixture(scope="module")
def log_rules(prod) -> dict[str, dict[str, Any]]:
    return rules(prod, LOG_RULE)


def condition(rule: dict[str, Any]) -> dict[str, Any]:
    (c,) = rule["criteria"]["allOf"]
    return c


def test_dev_has_no_alerts(dev) -> None:
    assert not dev.of_type(GROUP) and not dev.of_type(LOG_RULE) and not dev.of_type(METRIC_RULE)


def test_prod_emails_the_configured_receivers(prod) -> None:
    group = engine.reveal(prod.one(GROUP).inputs)
    assert group["emailReceivers"] == [
        {
            "name": "email-1",
            "emailAddress": "mlscore-oncall@example.com",
            "useCommonAlertSchema": True,
        }
    ]
    assert group["enabled"] is True and group["location"] == "Global"
    assert len(group["groupShortName"]) <= 12


def test_more_receivers_more_email_actions(run_stack) -> None:
    run = run_stack("prod", alertEmailReceivers="a@example.com,b@example.com")
    assert run.error is None, run.error
    emails = engine.reveal(run.one(GROUP).inputs)["emailReceivers"]
    assert [(e["name"], e["emailAddress"]) for e in emails] == [
        ("email-1", "a@example.com"),
        ("email-2", "b@example.com"),
    ]


def test_every_rule_notifies_the_action_group(prod) -> None:
    group_id = rid(prod.one(GROUP))
    log, metric = rules(prod, LOG_RULE), rules(prod, METRIC_RULE)
    assert log and metric
    for name, rule in log.items():
        assert rule["actions"]["actionGroups"] == [group_id], name
        assert rule["enabled"] is True and rule["kind"] == "LogAlert", name
    for name, rule in metric.items():
        assert rule["actions"] == [{"actionGroupId": group_id}], name


def test_each_prod_endpoint_has_a_5xx_rate_and_a_p95_rule(prod, log_rules) -> None:
    endpoints = set(prod.outputs["endpoints"]) - {"aks_accelerator", "iot_edge"}
    assert endpoints == {"app_service", "functions", "container_apps", "aks", "aml_online"}
    for endpoint in endpoints:
        rate, p95 = log_rules[f"{endpoint}-5xx"], log_rules[f"{endpoint}-p95"]
        assert condition(rate)["threshold"] == 5 and condition(rate)["operator"] == "GreaterThan"
        assert condition(rate)["metricMeasureColumn"] == "percent"
        assert (
            condition(p95)["threshold"] == 1000 and condition(p95)["metricMeasureColumn"] == "p95"
        )
        assert rate["windowSize"] == "PT5M" and rate["evaluationFrequency"] == "PT5M"


def test_container_endpoints_are_judged_on_their_own_requests(prod, log_rules) -> None:
    insights = rid(prod.one("azure-native:applicationinsights:Component"))
    for endpoint in ("app_service", "functions", "aks"):
        for kind in ("5xx", "p95"):
            rule = log_rules[f"{endpoint}-{kind}"]
            assert rule["scopes"] == [insights]
            query = condition(rule)["query"]
            assert query.startswith("requests | where cloud_RoleName in (")
            assert f'"{endpoint}"' in query
    assert "percentile(duration, 95)" in condition(log_rules["aks-p95"])["query"]
    assert "toint(resultCode) >= 500" in condition(log_rules["aks-5xx"])["query"]


def test_the_functions_rule_also_reads_the_function_hosts_requests(prod, log_rules) -> None:
    apps = [r for r in prod.of_type("azure-native:web:WebApp") if "functionapp" in r.inputs["kind"]]
    (app,) = apps
    assert f'"{app.azure_name}"' in condition(log_rules["functions-5xx"])["query"]


def test_the_azure_ml_endpoint_is_judged_on_its_traffic_log(prod, log_rules) -> None:
    workspace = rid(prod.one("azure-native:operationalinsights:Workspace"))
    endpoint = prod.one("azure-native:machinelearningservices:OnlineEndpoint").azure_name
    for kind in ("5xx", "p95"):
        rule = log_rules[f"aml_online-{kind}"]
        assert rule["scopes"] == [workspace]
        query = condition(rule)["query"]
        assert query.startswith(f'AmlOnlineEndpointTrafficLog | where EndpointName == "{endpoint}"')
    assert "ModelStatusCode" in condition(log_rules["aml_online-5xx"])["query"]
    assert "TotalDurationMs" in condition(log_rules["aml_online-p95"])["query"]


def test_web_and_function_apps_also_alert_on_front_end_5xx(prod) -> None:
    metric = {n: r for n, r in rules(prod, METRIC_RULE).items() if "container_apps" not in n}
    assert set(metric) == {"app_service-http5xx", "functions-http5xx"}
    site_ids = {rid(r) for r in prod.of_type("azure-native:web:WebApp")}
    for rule in metric.values():
        (criterion,) = rule["criteria"]["allOf"]
        assert rule["criteria"]["odataType"] == (
            "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
        )
        assert criterion["metricNamespace"] == "Microsoft.Web/sites"
        assert criterion["metricName"] == "Http5xx" and criterion["timeAggregation"] == "Total"
        assert len(rule["scopes"]) == 1 and rule["scopes"][0] in site_ids


def test_aks_alerts_on_restarts_and_on_replicas_at_the_maximum(prod, log_rules) -> None:
    workspace = rid(prod.one("azure-native:operationalinsights:Workspace"))
    cluster = rid(prod.one("azure-native:containerservice:ManagedCluster"))
    restarts, at_max = log_rules["aks-restarts"], log_rules["aks-replicas-at-max"]
    for rule in (restarts, at_max):
        assert rule["scopes"] == [workspace]
        assert condition(rule)["query"].startswith(
            f'KubePodInventory | where ClusterId =~ "{cluster}"'
        )
    assert "ContainerRestartCount" in condition(restarts)["query"]
    assert restarts["windowSize"] == "PT15M"
    c = condition(at_max)
    assert c["operator"] == "GreaterThanOrEqual" and c["threshold"] == 12  # autoscaleMaxReplicas
    assert 'PodStatus == "Running"' in c["query"]


def test_without_autoscaling_there_is_no_maximum_to_reach(run_stack) -> None:
    run = run_stack("prod", autoscaleEnabled=False)
    assert run.error is None, run.error
    names = set(rules(run, LOG_RULE))
    assert "aks-restarts" in names and "aks-replicas-at-max" not in names


def test_thresholds_come_from_config(run_stack) -> None:
    run = run_stack("prod", alert5xxPercent=2, alertP95LatencyMs=250)
    assert run.error is None, run.error
    log = rules(run, LOG_RULE)
    assert condition(log["app_service-5xx"])["threshold"] == 2
    assert condition(log["aml_online-p95"])["threshold"] == 250


def test_the_pod_queries_match_the_scoring_replica_sets_only() -> None:
    query = alerts.replicas_query("/subscriptions/x/clusters/c", "scoring")
    assert 'ControllerName matches regex "^scoring-[a-z0-9]+$"' in query
    # the accelerator Deployment's ReplicaSet (scoring-gpu-<hash>) does not match that pattern
    assert re.fullmatch("^scoring-[a-z0-9]+$", "scoring-5d8f7c9b6d")
    assert not re.fullmatch("^scoring-[a-z0-9]+$", "scoring-gpu-5d8f7c9b6d")


def test_the_prod_preview_prints_the_diagnostic_settings_and_alert_rules(run_stack) -> None:
    from preview.__main__ import as_json, render

    run = run_stack("prod", preview=True)
    assert run.error is None, run.error
    text = render(run)
    for needle in (
        "component mlscore:platform:Diagnostics  diagnostics",
        "monitor:DiagnosticSetting  key-vault  (to-log-analytics)",
        "monitor:DiagnosticSetting  aks  (to-log-analytics)",
        "component mlscore:platform:Alerts  alerts",
        "monitor:ActionGroup  action-group  (mlscore-prod-alerts)",
        "monitor:ScheduledQueryRule  app_service-5xx",
        "monitor:ScheduledQueryRule  aks-replicas-at-max",
        "monitor:MetricAlert  functions-http5xx",
    ):
        assert needle in text, needle
    # the lists the text view folds (``logs[1]: ...``) are in full in --json
    resources = as_json(run)["resources"]
    (group,) = [r for r in resources if r["type"] == GROUP]
    assert group["inputs"]["emailReceivers"][0]["emailAddress"] == "mlscore-oncall@example.com"
    vault = next(
        r for r in resources if r["type"].endswith("DiagnosticSetting") and r["name"] == "key-vault"
    )
    assert vault["inputs"]["logs"] == [{"categoryGroup": "allLogs", "enabled": True}]


def test_rules_on_tables_a_new_workspace_lacks_skip_query_validation(log_rules) -> None:
    # AmlOnlineEndpointTrafficLog and KubePodInventory exist only once their first records
    # arrive, after this same pulumi up (alerts.py's docstring: the citations)
    new_tables = ("AmlOnlineEndpointTrafficLog", "KubePodInventory")
    skipped = {n for n, r in log_rules.items() if r.get("skipQueryValidation") is True}
    on_new = {n for n, r in log_rules.items() if condition(r)["query"].startswith(new_tables)}
    assert on_new and skipped == on_new
    assert len(log_rules) > len(on_new)  # the Application Insights rules keep the validation
