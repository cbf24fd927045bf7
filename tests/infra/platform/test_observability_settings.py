"""Observability settings: data collection, telemetry content, alerts; declared in Pulumi.yaml,
validated before any resource, a wrong value named with its key and the fix."""

from __future__ import annotations

import pytest
import yaml

from components import PROJECT_ROOT
from tests.infra.settings_helpers import keys_of, load, problems

KEYS = {
    "dataCollectionEnabled": ("boolean", False),
    "dataCollectionSamplingRate": ("string", "1.0"),
    "telemetryPayloads": ("boolean", False),
    "alertsEnabled": ("boolean", False),
    "alertEmailReceivers": ("string", ""),
    "alert5xxPercent": ("integer", 5),
    "alertP95LatencyMs": ("integer", 1000),
}


def test_keys_are_declared_with_type_default_and_description() -> None:
    config = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())["config"]
    for key, (type_, default) in KEYS.items():
        spec = config[f"mlscore:{key}"]
        assert spec["type"] == type_ and spec["default"] == default, key
        assert spec["description"].strip(), key


def test_the_observability_block_follows_the_model_and_scoring_block() -> None:
    lines = (PROJECT_ROOT / "Pulumi.yaml").read_text().splitlines()
    blocks = [line.strip() for line in lines if line.strip().startswith("# ---")]
    at = next(i for i, b in enumerate(blocks) if "observability" in b)
    assert "model and scoring host" in blocks[at - 1]
    declared = [line.strip().rstrip(":") for line in lines if line.startswith("  mlscore:")]
    first = declared.index("mlscore:dataCollectionEnabled")
    assert declared[first - 1] == "mlscore:cacheTtlSeconds"


def test_defaults_collect_nothing_and_alert_no_one() -> None:
    o = load("dev", dataCollectionEnabled=False).observability
    assert (o.data_collection, o.telemetry_payloads, o.alerts, o.alert_emails) == (
        False,
        False,
        False,
        (),
    )
    assert (o.sampling_rate, o.alert_5xx_percent, o.alert_p95_latency_ms) == (1.0, 5, 1000)


def test_prod_collects_a_quarter_and_alerts_the_on_call_address() -> None:
    o = load("prod").observability
    assert o.data_collection and o.sampling_rate == 0.25
    assert o.alerts and o.alert_emails == ("mlscore-oncall@example.com",)
    dev = load("dev").observability
    assert dev.data_collection and not dev.alerts


def test_receivers_are_split_on_commas_and_trimmed() -> None:
    o = load("dev", alertsEnabled=True, alertEmailReceivers=" a@example.com, b.c@ops.example.org ")
    assert o.observability.alert_emails == ("a@example.com", "b.c@ops.example.org")


@pytest.mark.parametrize("rate", ["1.5", "-0.1", "abc", "nan", "25%"])
def test_a_sampling_rate_outside_0_to_1_is_refused_naming_the_key(rate: str) -> None:
    found = problems("dev", dataCollectionSamplingRate=rate)
    assert keys_of(found) == {"dataCollectionSamplingRate"}
    assert "mlscore:dataCollectionSamplingRate" in str(found[0])


@pytest.mark.parametrize("rate", ["0", "0.001", "1", "1.0"])
def test_the_ends_of_the_range_are_accepted(rate: str) -> None:
    assert load("dev", dataCollectionSamplingRate=rate).observability.sampling_rate == float(rate)


def test_alerts_without_receivers_are_refused_naming_both_keys() -> None:
    found = problems("dev", alertsEnabled=True)
    assert [p.keys for p in found] == [("alertsEnabled", "alertEmailReceivers")]
    assert "alertEmailReceivers" in found[0].fix


@pytest.mark.parametrize(
    "receivers", ["oncall", "a@b", "a@example.com;b@example.com", "a b@example.com", "@x.io"]
)
def test_a_malformed_address_is_refused_and_named(receivers: str) -> None:
    found = problems("dev", alertsEnabled=True, alertEmailReceivers=receivers)
    # one problem: the bad address, not also "no receivers"
    assert [p.keys for p in found] == [("alertEmailReceivers",)]
    assert "not an email address" in found[0].problem


def test_an_address_listed_twice_is_refused() -> None:
    found = problems("dev", alertEmailReceivers="a@example.com,A@example.com")
    assert keys_of(found) == {"alertEmailReceivers"}


@pytest.mark.parametrize(
    ("key", "value"),
    [("alert5xxPercent", 0), ("alert5xxPercent", 101), ("alertP95LatencyMs", 0)],
)
def test_thresholds_out_of_range_are_refused(key: str, value: int) -> None:
    assert keys_of(problems("prod", **{key: value})) == {key}


def test_the_program_stops_before_any_resource_on_a_bad_value(run_stack) -> None:
    run = run_stack("prod", alertEmailReceivers="", dataCollectionSamplingRate="2")
    assert {k for p in run.problems for k in p.keys} == {
        "alertsEnabled",
        "alertEmailReceivers",
        "dataCollectionSamplingRate",
    }
    assert run.resources == []
