"""Alert rules are priced by the meter the Retail Prices API sells them under: log alerts by the
frequency band they are evaluated at (1, 5, 10, 15 minutes; slower rules at 15), metric alerts by
time series under the "Global" region (Infracost's monitor_scheduled_query_rules_alert.go and
monitor_metric_alert.go, https://github.com/infracost/infracost/blob/95ba4f4/internal/resources/azure/)."""

from __future__ import annotations

import pytest

from cost import catalog
from cost import estimate as est
from cost.model import Declared


def rule(kind: str, **inputs: object) -> Declared:
    t = f"azure-native:monitor:{kind}"
    return Declared(
        f"urn:pulumi:dev::mlscore::{t}::r", t, "r", "", {"location": "westeurope", **inputs}
    )


@pytest.mark.parametrize(
    ("frequency", "band"),
    [
        ("PT1M", 1),
        ("PT5M", 5),
        ("PT10M", 10),
        ("PT15M", 15),
        ("PT30M", 15),
        ("PT1H", 15),
        ("P1D", 15),
    ],
)
def test_log_alerts_are_priced_at_their_frequency_band(frequency: str, band: int) -> None:
    lines = est.estimate("dev", [rule("ScheduledQueryRule", evaluationFrequency=frequency)]).lines
    assert [x.price_key for x in lines] == [
        f"azure-monitor/Alerts System Log Monitored at {band} Minute Frequency"
    ]


def test_an_unreadable_frequency_is_refused() -> None:
    with pytest.raises(ValueError, match="evaluationFrequency"):
        est.estimate("dev", [rule("ScheduledQueryRule", evaluationFrequency="5 minutes")])


def test_metric_alerts_ask_the_global_meter() -> None:
    lines = est.estimate("dev", [rule("MetricAlert", scopes=["a", "b"])]).lines
    assert [x.price_key for x in lines] == ["azure-monitor-global/Alerts Metric Monitored"]
    assert "armRegionName eq 'Global'" in catalog.query(lines[0].price_key, "westeurope")
