"""The limits of v1's AKS web service: run() calls at a time per worker (SCORING_RUN_THREADS)
and the queue wait (SCORING_MAX_QUEUE_WAIT_MS) answered 503 with Retry-After; failing closed on
an unresolved Key Vault reference. Fast checks: the load runs are bench/overload.py."""

from __future__ import annotations

import concurrent.futures
import contextlib
import time

import httpx
import pytest
from _scoring_support import SCRIPTS, HostFactory
from test_metrics import parse

from scoring.admission import QueueFull
from scoring.config import ConfigError, Settings, unresolved_secrets

REFUSED = "scoring_requests_refused_total"


def _post(
    url: str, seconds: float, client: httpx.Client | None = None
) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    r = (client or httpx).post(f"{url}/score", json={"sleep": seconds}, timeout=30)
    return r, time.monotonic() - t0


def test_a_call_queued_past_the_wait_limit_gets_a_503_with_retry_after(
    start_host: HostFactory,
) -> None:
    host = start_host(SCRIPTS / "slow.py", env={"SCORING_MAX_QUEUE_WAIT_MS": "300"})
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        long = pool.submit(_post, host.url, 2.0)
        time.sleep(0.3)  # run() is busy with it
        queued = [pool.submit(_post, host.url, 0.0) for _ in range(3)]
        t0 = time.monotonic()
        ready = host.client.get("/ready", timeout=5)
        assert ready.status_code == 200 and time.monotonic() - t0 < 1.0  # /ready never queues
        for call in queued:
            r, seconds = call.result()
            assert r.status_code == 503
            assert int(r.headers["retry-after"]) >= 1
            assert "SCORING_MAX_QUEUE_WAIT_MS" in r.json()["message"]
            assert 0.25 <= seconds < 1.5  # at the limit, long before the running call ends
        assert long.result()[0].status_code == 200
    m = parse(host.client.get("/metrics").text)
    assert m[(REFUSED, (("reason", "queue_timeout"),))] == 3
    assert m[("scoring_requests_total", (("route", "/score"), ("status", "503")))] == 3
    assert host.client.get("/status").json()["run"]["queue"]["timed_out"] == 3


def test_a_call_foreseen_to_wait_too_long_is_refused_at_once(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "slow.py", env={"SCORING_MAX_QUEUE_WAIT_MS": "1000"})
    client = httpx.Client(limits=httpx.Limits(max_connections=16))  # one, made beforehand
    for _ in range(8):  # run() takes 0.15 s: the average the foresight uses
        assert _post(host.url, 0.15, client)[0].status_code == 200
    with contextlib.closing(client), concurrent.futures.ThreadPoolExecutor(13) as pool:
        long = pool.submit(_post, host.url, 3.0, client)
        time.sleep(0.3)
        calls = [pool.submit(_post, host.url, 0.15, client) for _ in range(12)]
        answers = [c.result() for c in calls]
        assert long.result()[0].status_code == 200
    assert all(r.status_code == 503 for r, _ in answers)  # the long call held the thread
    m = parse(host.client.get("/metrics").text)
    on_arrival = m[(REFUSED, (("reason", "queue_full"),))]
    # from the 6th call in the queue, its wait and run would pass 1 s: refused on arrival
    assert on_arrival >= 3
    assert on_arrival + m[(REFUSED, (("reason", "queue_timeout"),))] == 12
    seconds = sorted(s for _, s in answers)
    assert seconds[0] < 0.5 <= 0.9 <= seconds[-1]  # the first refusals long before the limit


def test_raised_concurrency_runs_calls_side_by_side(start_host: HostFactory) -> None:
    env = {"SCORING_RUN_THREADS": "4", "SCORING_MAX_QUEUE_WAIT_MS": "300"}
    host = start_host(SCRIPTS / "slow.py", env=env)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: _post(host.url, 0.6), range(4)))
    assert [r.status_code for r, _ in answers] == [200] * 4  # none waited: no 503
    assert max(s for _, s in answers) < 1.2  # together, not one after another


def test_the_limit_is_off_with_zero_and_validated() -> None:
    base = {"AZUREML_ENTRY_SCRIPT": str(SCRIPTS / "slow.py")}
    assert Settings.from_env(base).max_queue_wait_ms == 500  # v1's default
    assert Settings.from_env({**base, "SCORING_MAX_QUEUE_WAIT_MS": "0"}).max_queue_wait_ms == 0
    for bad in ("-1", "soon", "3600001"):
        with pytest.raises(ConfigError, match="SCORING_MAX_QUEUE_WAIT_MS"):
            Settings.from_env({**base, "SCORING_MAX_QUEUE_WAIT_MS": bad})
    assert QueueFull(True, 2).retry_after == 2


REFERENCE = "@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/scoring-key/)"


def test_unresolved_key_vault_references_are_found_in_every_secret_setting() -> None:
    assert unresolved_secrets({"SCORING_AUTH_KEYS": REFERENCE}) == ("SCORING_AUTH_KEYS",)
    assert unresolved_secrets({"SCORING_AUTH_KEYS": f"k1, {REFERENCE}"}) == ("SCORING_AUTH_KEYS",)
    lower = "@microsoft.keyvault(VaultName=kv1;SecretName=redis)"
    assert unresolved_secrets({"REDIS_PASSWORD": lower}) == ("REDIS_PASSWORD",)
    config = "@Microsoft.AppConfiguration(Endpoint=https://c.azconfig.io; Key=k)"
    assert unresolved_secrets({"APPLICATIONINSIGHTS_CONNECTION_STRING": config})
    assert unresolved_secrets({"SCORING_AUTH_KEYS": "a-real-key", "REDIS_PASSWORD": "p@ss"}) == ()


def test_an_unresolved_scoring_key_fails_closed(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "slow.py", env={"SCORING_AUTH_KEYS": REFERENCE}, wait=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # GET / answers once init() has run
        try:
            if host.client.get("/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    # the guessable reference itself is not a key: nobody scores, whatever they send
    for headers in ({"Authorization": f"Bearer {REFERENCE}"}, {}):
        r = host.client.post("/score", json={"sleep": 0}, headers=headers)
        assert r.status_code == 503
        assert "SCORING_AUTH_KEYS" in r.json()["message"]
    assert host.client.get("/ready").status_code == 503
    assert host.log().count("failing closed: SCORING_AUTH_KEYS") == 1
