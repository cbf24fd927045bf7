"""Per-request cost of the host's metrics against prometheus_client doing the same.

    python bench/metrics_micro.py

The same updates a /score request makes (in-flight up and down, request count and latency
histogram by route and status, run() duration histogram), timed with timeit (best of 5), and
the cost of the telemetry hook (one tuple appended). Not a test: compare the two figures.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scoring.observability.metrics import BUCKETS, IN_FLIGHT, Metrics
from scoring.observability.settings import TelemetrySettings
from scoring.observability.telemetry import Telemetry


def main() -> None:
    ours = Metrics()

    def hand_written() -> None:
        ours.cells[IN_FLIGHT] += 1.0
        ours.request(0, 200, 0.0042)
        ours.cells[IN_FLIGHT] -= 1.0
        ours.run(0.003, False)

    registry = CollectorRegistry()
    requests = Counter("req", "x", ["route", "status"], registry=registry)
    latency = Histogram("lat", "x", ["route"], registry=registry, buckets=BUCKETS)
    runs = Histogram("run", "x", registry=registry, buckets=BUCKETS)
    in_flight = Gauge("in_flight", "x", registry=registry)

    def client() -> None:
        in_flight.inc()
        requests.labels("/score", "200").inc()
        latency.labels("/score").observe(0.0042)
        in_flight.dec()
        runs.observe(0.003)

    telemetry = Telemetry(TelemetrySettings(), ours, max_pending=10**9)

    def hook() -> None:
        telemetry.request(1.0, 0.002, "/score", "POST", 200, "rid", None, None, None, None, None)

    n = 200_000
    for name, fn in (
        ("hand-written metrics", hand_written),
        ("prometheus_client", client),
        ("telemetry hook", hook),
    ):
        best = min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6
        print(f"{name:22} {best:6.2f} µs a request")


if __name__ == "__main__":
    main()
