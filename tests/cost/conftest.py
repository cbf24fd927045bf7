"""Fixtures of the cost tests: estimates of the shared dev/prod program runs
(tests/conftest.py), priced from the repository's snapshot or from a test price table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cost import catalog, refresh
from cost import estimate as est
from cost.model import Estimate
from cost.snapshot import Snapshot, load
from preview import engine


def estimate_of(run: engine.Run, snapshot: Snapshot | None = None) -> Estimate:
    assumptions, path = est.load_assumptions(run.stack)
    return est.estimate(
        run.stack,
        est.declared_from_run(run.resources),
        assumptions=assumptions,
        assumptions_file=path,
        snapshot=snapshot,
    )


def needed(*runs: engine.Run) -> set[str]:
    """The price keys the runs' estimates ask for."""
    keys: set[str] = set()
    for run in runs:
        empty = Snapshot("westeurope", "", Path("empty.json"), {})
        keys |= {k for x in estimate_of(run, empty).lines for k in x.price_keys}
    return keys


# A test price table: one distinct, made-up figure per key (NOT Azure prices; they only make
# each line's arithmetic checkable by hand). Units as the Retail Prices API writes them.
UNITS = {
    "container-registry": "1/Day",
    "iot-hub": "1/Month",
    "managed-disk": "1/Month",
    "private-dns": "1/Month",
    "key-vault": "10K",
    "service-bus/Basic Messaging Operations": "1M",
    "service-bus/Standard Messaging Operations": "1M",
    "blob-storage": "1 GB/Month",
    "log-analytics/Analytics Logs Data Ingestion": "1 GB",
    "log-analytics/Analytics Logs Data Retention": "1 GB/Month",
    "azure-monitor/Prometheus Metrics Samples Ingested": "10M",
    "azure-monitor/Alerts System Log Monitored at 5 Minute Frequency": "1/Month",
    "azure-monitor-global/Alerts Metric Monitored": "1/Month",
    "functions-premium/Premium Memory Duration": "1 GiB Hour",
    "container-instances/Standard Memory Duration": "1 GB Hour",
    "container-apps/Standard Memory Active Usage": "1 GiB Hour",
    "container-apps/Standard Memory Idle Usage": "1 GiB Hour",
}


def unit_for(key: str) -> str:
    return UNITS.get(key) or UNITS.get(key.split("/")[0]) or "1 Hour"


@pytest.fixture(scope="session")
def test_prices(
    tmp_path_factory: pytest.TempPathFactory, dev: engine.Run, prod: engine.Run
) -> Snapshot:
    keys = sorted(needed(dev, prod))
    prices: dict[str, Any] = {
        key: {
            "retailPrice": round(0.01 * (n + 1), 4),
            "unitOfMeasure": unit_for(key),
            "meterId": f"test-meter-{n}",
            "query": catalog.query(key, "westeurope"),
            "seen": "2026-01-01",
            "source": "test",
        }
        for n, key in enumerate(keys)
    }
    directory = tmp_path_factory.mktemp("prices")
    (directory / "westeurope.json").write_text(
        json.dumps(
            {"region": "westeurope", "currency": "USD", "built": "2026-01-01", "prices": prices}
        )
    )
    return load("westeurope", directory)


__all__ = ["estimate_of", "needed", "refresh"]
