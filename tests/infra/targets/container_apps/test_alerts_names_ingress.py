"""Container Apps: its platform metric alerts checked against Azure Monitor's own list of the
metrics (vendored in data/, source and licence there), its resource names checked before any
resource, and ``containerAppsInternalOnly`` refused where it has no effect."""

from __future__ import annotations

import dataclasses
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from components import settings as cfg
from components.config.naming import RULES, Naming
from components.config.reader import Reader
from components.targets.container_apps import alerts
from components.targets.container_apps.settings import ContainerAppsSettings
from preview import engine, fakes
from tests.infra.settings_helpers import keys_of, load, problems

REFERENCE = Path(__file__).parent / "data" / "microsoft-app-containerapps-metrics.md"
METRIC_RULE = "azure-native:monitor:MetricAlert"
APP = "azure-native:app:ContainerApp"
ROOT = Path(__file__).resolve().parents[4]


@dataclasses.dataclass(frozen=True)
class Metric:
    aggregations: frozenset[str]
    dimensions: frozenset[str]


@cache
def reference() -> tuple[str, dict[str, Metric]]:
    """The resource type and its metrics by REST API name, as Azure Monitor's reference lists
    them (aggregation "Total (Sum)" is the API's "Total")."""
    text = REFERENCE.read_text()
    (resource_type,) = re.findall(r"^# Supported metrics for (\S+)$", text, re.M)
    metrics = {}
    for row in re.findall(r"^\|\*\*.*\|$", text, re.M):
        cells = [c.strip() for c in row.strip("|").split("|")]
        name, aggregation, dimensions = cells[1].strip("`"), cells[3], cells[4]
        metrics[name] = Metric(
            frozenset(a.strip().split(" ")[0] for a in aggregation.split(",")),
            frozenset(re.findall(r"`(\w+)`", dimensions)),
        )
    return resource_type, metrics


def test_the_reference_is_read_whole() -> None:
    resource_type, metrics = reference()
    assert resource_type == "Microsoft.App/containerapps" and len(metrics) == 31
    assert metrics["Requests"].dimensions == {
        "revisionName", "podName", "statusCodeCategory", "statusCode"
    }  # fmt: skip
    assert metrics["CoresQuotaUsed"].aggregations == {"Maximum", "Minimum"}
    assert "Http5xx" not in metrics  # App Service's name: the check can fail


def rid(r: engine.Registered) -> str:
    """A resource's ARM ID as the fake Azure gives it."""
    return r.outputs["id"] if "id" in r.outputs else fakes.arm_id(r.type, r.azure_name)


def app_rules(run: engine.Run) -> dict[str, dict]:
    app_id = rid(run.one(APP))
    found = {r.name: engine.reveal(r.inputs) for r in run.of_type(METRIC_RULE)}
    return {n: r for n, r in found.items() if r["scopes"] == [app_id]}


def test_prod_alerts_on_the_apps_platform_metrics_as_azure_monitor_names_them(prod) -> None:
    resource_type, metrics = reference()
    found = app_rules(prod)
    assert set(found) == {
        f"container_apps-{w}" for w in ("http5xx", "restarts", "memory", "cpu", "replicas-at-max")
    }
    group = rid(prod.one("azure-native:monitor:ActionGroup"))
    for name, rule in found.items():
        (c,) = rule["criteria"]["allOf"]
        assert c["metricNamespace"].lower() == resource_type.lower(), name
        metric = metrics[c["metricName"]]
        assert c["timeAggregation"] in metric.aggregations, name
        for d in c.get("dimensions", []):
            assert d["name"] in metric.dimensions and d["operator"] == "Include", name
        assert rule["actions"] == [{"actionGroupId": group}], name
    (c,) = found["container_apps-http5xx"]["criteria"]["allOf"]
    assert (c["metricName"], c["timeAggregation"]) == ("Requests", "Total")
    assert c["dimensions"] == [
        {"name": "statusCodeCategory", "operator": "Include", "values": ["5xx"]}
    ]
    (c,) = found["container_apps-replicas-at-max"]["criteria"]["allOf"]
    assert (c["metricName"], c["operator"], c["threshold"]) == (
        "Replicas", "GreaterThanOrEqual", 12,  # Pulumi.prod.yaml containerAppsMaxReplicas
    )  # fmt: skip


def test_no_replicas_at_max_rule_when_the_app_cannot_scale() -> None:
    fixed = alerts.rules("container_apps", ContainerAppsSettings(min_replicas=3, max_replicas=3))
    assert "container_apps-replicas-at-max" not in {r.name for r in fixed}


# --- names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "name", "ok"),
    [
        ("container_app", "ab", True),
        ("container_app", "a" * 32, True),
        ("container_app", "a" * 33, False),
        ("container_app", "a", False),
        ("container_app", "1abc", False),
        ("container_app", "ab-", False),
        ("container_app", "a--b", False),
        ("container_app", "Abc", False),
        ("container_apps_env", "a" * 60, True),
        ("container_apps_env", "a" * 61, False),
        ("container_apps_env", "cae-", False),
    ],
)
def test_microsoft_app_naming_rules(rule: str, name: str, ok: bool) -> None:
    assert (RULES[rule].problem(name) is None) is ok


def test_the_app_and_environment_are_named_by_the_checked_names(dev) -> None:
    naming = load("dev").naming
    assert dev.one(APP).azure_name == naming.container_app()
    env = dev.one("azure-native:app:ManagedEnvironment")
    assert env.azure_name == naming.container_apps_environment()


def name_problems(s: cfg.Settings) -> list[cfg.ConfigProblem]:
    r = Reader(lambda _: None)
    cfg._check_names(r, s)
    return r.problems


def test_an_overflowing_name_is_refused_naming_prefix_and_suffix() -> None:
    # mlscore:prefix allows 10 characters, so from the stack files the app's name is at most
    # 27 (<= 32); a longer prefix (refused itself) shows the name check still catches it.
    s = dataclasses.replace(load("dev"), naming=Naming("a" * 24, "dev", "x1"))
    found = [p for p in name_problems(s) if "container app name" in p.value]
    (p,) = found
    assert p.keys == ("prefix", "nameSuffix") and "2-32" in p.problem
    assert "shorten mlscore:prefix or mlscore:nameSuffix" in p.fix
    off = dataclasses.replace(s, container_apps=ContainerAppsSettings(enabled=False))
    assert not [p for p in name_problems(off) if "container app" in p.value.lower()]


# --- containerAppsInternalOnly without network isolation ----------------------------------------
def test_internal_only_false_without_isolation_is_refused() -> None:
    found = problems("dev", containerAppsInternalOnly=False)
    assert keys_of(found) == {"containerAppsInternalOnly"}
    assert "networkIsolation" in found[0].problem and "networkIsolation" in found[0].fix
    assert not load("prod", containerAppsInternalOnly=False).container_apps.internal_only


def stack_file(tmp_path: Path, stack: str, **extra: object) -> Path:
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    doc["config"].update({f"mlscore:{k}": v for k, v in extra.items()})
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_internal_only_written_in_a_stack_without_isolation_is_refused_even_true(
    tmp_path: Path,
) -> None:
    # The CLI hands the program Pulumi.yaml's default (true) for a key left out, so the program
    # sees true either way; the stack file tells, and a stack that writes it expects it kept.
    path = stack_file(tmp_path, "dev", containerAppsInternalOnly=True)
    with pytest.raises(engine.StackConfigError) as err:
        engine.stack_config("dev", stack_file=path)
    assert "mlscore:containerAppsInternalOnly" in str(err.value)
    assert "mlscore:networkIsolation" in str(err.value)
    isolated = stack_file(tmp_path, "prod", containerAppsInternalOnly=True)
    assert engine.stack_config("prod", stack_file=isolated)[0][
        "mlscore:containerAppsInternalOnly"
    ] == "true"  # fmt: skip
