"""Prometheus metrics: what the hooks record, the text format (checked with prometheus_client's
own parser), and the workers' files adding up."""

from __future__ import annotations

import concurrent.futures
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _scoring_support import REPO, SCRIPTS, SEED_PAYLOAD, HostFactory
from prometheus_client.parser import text_string_to_metric_families

from scoring.config import Settings
from scoring.observability import Observability
from scoring.observability.metrics import (
    DC_DROPPED_FULL,
    IN_FLIGHT,
    ROUTE_INDEX,
    Metrics,
    render,
)


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"AZUREML_ENTRY_SCRIPT": str(tmp_path / "score.py"), **env})


def test_requests_latency_and_status_are_counted(tmp_path: Path) -> None:
    obs = Observability(_settings(tmp_path))
    obs.request_started()
    obs.request_started()
    obs.request_finished(0.0, 0.0042, "/score", "POST", 200, "r1")
    snapshot = parse(obs.render_metrics().decode())
    assert snapshot[("scoring_requests_in_flight", ())] == 1
    obs.request_finished(0.0, 0.2, "/score", "POST", 500, "r2")
    obs.request_finished(0.0, 0.0001, "/ready", "GET", 200, "r3")
    obs.request_finished(0.0, 0.0001, "/no/such/path", "GET", 404, "r4")
    obs.run_finished(0.004, False)
    obs.run_finished(0.15, True)
    obs.cache(True)
    obs.cache(False)
    obs.cache(False)
    obs.init_finished(1.25)
    text = obs.render_metrics().decode()
    m = parse(text)
    score = (("route", "/score"),)
    assert m[("scoring_requests_total", (("route", "/score"), ("status", "200")))] == 1
    assert m[("scoring_requests_total", (("route", "/score"), ("status", "500")))] == 1
    assert m[("scoring_requests_total", (("route", "/ready"), ("status", "200")))] == 1
    assert m[("scoring_requests_total", (("route", "other"), ("status", "404")))] == 1
    assert m[("scoring_request_duration_seconds_count", score)] == 2
    assert m[("scoring_request_duration_seconds_sum", score)] == pytest.approx(0.2042)
    bucket = "scoring_request_duration_seconds_bucket"
    assert m[(bucket, (("le", "0.0025"), *score))] == 0
    assert m[(bucket, (("le", "0.005"), *score))] == 1
    assert m[(bucket, (("le", "0.25"), *score))] == 2
    assert m[(bucket, (("le", "+Inf"), *score))] == 2
    assert m[("scoring_run_duration_seconds_count", ())] == 2
    assert m[("scoring_run_duration_seconds_bucket", (("le", "0.005"),))] == 1
    assert m[("scoring_run_failures_total", ())] == 1
    assert m[("scoring_requests_in_flight", ())] == 0
    assert m[("scoring_cache_hits_total", ())] == 1
    assert m[("scoring_cache_misses_total", ())] == 2
    assert m[("scoring_init_seconds", ())] == 1.25
    kinds = families(text)
    assert kinds["scoring_requests_in_flight"] == "gauge"  # the name KEDA reads
    assert kinds["scoring_request_duration_seconds"] == "histogram"
    assert kinds["scoring_run_duration_seconds"] == "histogram"
    assert kinds["scoring_requests"] == "counter"
    assert kinds["scoring_data_collection_dropped"] == "counter"


def test_histogram_buckets_are_cumulative_and_le_is_inclusive() -> None:
    metrics = Metrics()
    for seconds in (0.001, 0.001, 0.0010001, 61.0):
        metrics.request(ROUTE_INDEX["/score"], 200, seconds)
    m = parse(render(metrics.totals()))
    bucket = "scoring_request_duration_seconds_bucket"
    assert m[(bucket, (("le", "0.001"), ("route", "/score")))] == 2
    assert m[(bucket, (("le", "0.0025"), ("route", "/score")))] == 3
    assert m[(bucket, (("le", "60"), ("route", "/score")))] == 3
    assert m[(bucket, (("le", "+Inf"), ("route", "/score")))] == 4


def test_no_init_time_before_init_has_run() -> None:
    text = render(Metrics().totals())
    assert "scoring_init_seconds" not in text
    assert math.isnan(Metrics().totals()[1])


_WORKER = """
import sys
sys.path.insert(0, {repo!r})
from scoring.observability.metrics import Metrics, IN_FLIGHT, DC_DROPPED_FULL, INIT_SECONDS
m = Metrics({directory!r})
m.request(0, 200, 0.01)
m.request(0, 200, 0.01)
m.set(IN_FLIGHT, 3)
m.set(INIT_SECONDS, 9.5)
m.add(DC_DROPPED_FULL, 4)
m.close()
"""


def test_workers_add_up_and_an_exited_workers_gauges_do_not_count(tmp_path: Path) -> None:
    directory = str(tmp_path / "metrics")
    code = _WORKER.format(repo=str(REPO), directory=directory)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # it exits
    live = Metrics(directory)
    live.request(0, 200, 0.02)
    live.request(0, 503, 0.02)
    live.set(IN_FLIGHT, 1)
    live.add(DC_DROPPED_FULL)
    m = parse(live.render().decode())
    assert m[("scoring_requests_total", (("route", "/score"), ("status", "200")))] == 3
    assert m[("scoring_requests_total", (("route", "/score"), ("status", "503")))] == 1
    assert m[("scoring_request_duration_seconds_count", (("route", "/score"),))] == 4
    dropped = ("scoring_data_collection_dropped_total", (("reason", "buffer_full"),))
    assert m[dropped] == 5  # counters of the exited worker stay counted
    assert m[("scoring_requests_in_flight", ())] == 1  # its gauge does not
    assert ("scoring_init_seconds", ()) not in m
    files = sorted(p.name for p in Path(directory).iterdir())
    assert f"w-{os.getpid()}.bin" in files and len(files) == 2
    live.close()


def test_a_live_workers_gauge_counts(tmp_path: Path) -> None:
    directory = str(tmp_path / "metrics")
    code = _WORKER.format(repo=str(REPO), directory=directory) + "\nsys.stdin.read()\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    mine = Metrics(directory)
    try:
        m: dict[Any, float] = {}
        for _ in range(600):  # until the worker has written its cells
            m = parse(mine.render().decode())
            if m.get(("scoring_requests_in_flight", ())):
                break
            time.sleep(0.05)
        assert m[("scoring_requests_in_flight", ())] == 3
        assert m[("scoring_init_seconds", ())] == 9.5
    finally:
        proc.communicate(b"", timeout=30)
        mine.close()


# -- the host running as a server -------------------------------------------------------------


def test_get_metrics_needs_no_key_and_counts_what_was_served(
    start_host: HostFactory, model_dir: Path
) -> None:
    host = start_host(model_dir=model_dir, env={"SCORING_AUTH_KEYS": "k1"})
    auth = {"authorization": "Bearer k1"}
    for _ in range(3):
        assert host.client.post("/score", json=SEED_PAYLOAD, headers=auth).status_code == 200
    assert host.client.post("/score", json=SEED_PAYLOAD).status_code == 401
    r = host.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    m = parse(r.text)
    assert m[("scoring_requests_total", (("route", "/score"), ("status", "200")))] == 3
    assert m[("scoring_requests_total", (("route", "/score"), ("status", "401")))] == 1
    assert m[("scoring_run_duration_seconds_count", ())] == 3
    assert m[("scoring_requests_in_flight", ())] == 0
    assert m[("scoring_init_seconds", ())] > 0
    assert "5021" not in r.text  # no payload, no prediction
    again = parse(host.client.get("/metrics").text)
    assert again[("scoring_requests_total", (("route", "/metrics"), ("status", "200")))] == 1


def test_the_in_flight_gauge_counts_score_requests_being_served(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "slow.py", env={"SCORING_MAX_QUEUE_WAIT_MS": "0"})  # no limit
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        calls = [
            pool.submit(lambda: httpx.post(f"{host.url}/score", json={"sleep": 1.5}, timeout=30))
            for _ in range(3)
        ]
        seen = 0.0
        deadline = time.monotonic() + 10
        while seen < 3 and time.monotonic() < deadline:
            seen = parse(host.client.get("/metrics").text)[("scoring_requests_in_flight", ())]
            time.sleep(0.05)
        assert seen == 3  # one in run(), two waiting for the run thread
        assert [c.result().status_code for c in calls] == [200, 200, 200]
    assert parse(host.client.get("/metrics").text)[("scoring_requests_in_flight", ())] == 0


def test_two_workers_answer_the_same_totals(start_host: HostFactory, model_dir: Path) -> None:
    host = start_host(model_dir=model_dir, args=["--worker_count", "2"])
    for _ in range(20):  # a connection each: both workers serve some
        assert httpx.post(f"{host.url}/score", json=SEED_PAYLOAD).status_code == 200
    totals = set()
    for _ in range(10):
        m = parse(httpx.get(f"{host.url}/metrics").text)
        totals.add(m[("scoring_requests_total", (("route", "/score"), ("status", "200")))])
    assert totals == {20}
