"""The Redis prediction cache against a real redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from _scoring_support import (
    SCRIPTS,
    SEED_PAYLOAD,
    Host,
    HostFactory,
    RedisServer,
    free_port,
)

from scoring.cache import (
    KEY_PREFIX,
    cache_key,
    decode_value,
    encode_value,
)


def test_key_depends_on_model_identity_script_and_body() -> None:
    base = cache_key("m", "1", "sha", b'{"a":1}')
    assert base.startswith(KEY_PREFIX)
    assert base == cache_key("m", "1", "sha", b'{"a":1}')
    assert (
        len(
            {
                base,
                cache_key("m", "2", "sha", b'{"a":1}'),
                cache_key("n", "1", "sha", b'{"a":1}'),
                cache_key("m", "1", "other", b'{"a":1}'),
                cache_key("m", "1", "sha", b'{"a":2}'),
                cache_key("m1", "", "sha", b'{"a":1}'),  # length-prefixed: no ambiguity
            }
        )
        == 6
    )


def test_value_round_trip() -> None:
    assert decode_value(encode_value("application/json", b"[1,\n2]")) == (
        "application/json",
        b"[1,\n2]",
    )
    assert decode_value(b"garbage-without-newline") is None


def _post(host: Host, body: bytes) -> httpx.Response:
    return host.client.post("/score", content=body, headers={"Content-Type": "application/json"})


def test_miss_then_hit_returns_the_same_body(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    host = start_host(
        SCRIPTS / "counting.py", env=redis_server.env(MODEL_NAME="counting", MODEL_VERSION="7")
    )
    first = _post(host, b'{"b": 2, "a": 1}')
    assert first.status_code == 200
    assert first.headers["x-scoring-cache"] == "miss"
    assert first.json()["calls"] == 1
    time.sleep(0.1)  # the store happens after the response
    second = _post(host, b'{"b": 2, "a": 1}')  # the same text: what run() would see again
    assert second.status_code == 200
    assert second.headers["x-scoring-cache"] == "hit"
    assert second.content == first.content  # byte for byte, run() not called again
    other = host.client.post("/score", json={"a": 2})
    assert other.headers["x-scoring-cache"] == "miss"
    assert other.json()["calls"] == 2
    keys = redis_server.client().keys(KEY_PREFIX + "*")
    assert len(keys) == 2
    status = host.client.get("/status").json()["cache"]
    assert status["enabled"] is True and status["connected"] is True
    assert status["hits"] == 1 and status["misses"] == 2


def test_a_plain_script_is_keyed_by_the_exact_text_run_receives(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    # run(raw_data) gets the text: '{"a":1}' and '{"a": 1}' are two inputs to it
    host = start_host(SCRIPTS / "counting.py", env=redis_server.env())
    assert _post(host, b'{"a":1}').json()["calls"] == 1
    time.sleep(0.1)
    spaced = _post(host, b'{"a": 1}')
    assert spaced.headers["x-scoring-cache"] == "miss"
    assert spaced.json()["calls"] == 2
    time.sleep(0.1)
    assert _post(host, b'{"a":1}').headers["x-scoring-cache"] == "hit"


def test_a_schema_script_is_keyed_by_its_canonical_parsed_input(
    start_host: HostFactory, redis_server: RedisServer, model_dir: Path
) -> None:
    # the decorators hand run() the parsed object: key order and spacing don't reach it
    host = start_host(model_dir=model_dir, env=redis_server.env())
    first = _post(host, json.dumps(SEED_PAYLOAD).encode())
    assert first.headers["x-scoring-cache"] == "miss"
    time.sleep(0.1)
    spaced = _post(host, json.dumps(SEED_PAYLOAD, indent=3).encode())
    assert spaced.headers["x-scoring-cache"] == "hit"
    assert spaced.content == first.content


def test_ttl_is_applied_and_expiry_means_a_miss(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    host = start_host(SCRIPTS / "counting.py", env=redis_server.env(CACHE_TTL_SECONDS="1"))
    host.client.post("/score", json={"x": 1})
    time.sleep(0.1)
    r = redis_server.client()
    (key,) = r.keys(KEY_PREFIX + "*")
    assert 0 < r.ttl(key) <= 1
    assert host.client.post("/score", json={"x": 1}).headers["x-scoring-cache"] == "hit"
    time.sleep(1.3)
    again = host.client.post("/score", json={"x": 1})
    assert again.headers["x-scoring-cache"] == "miss"
    assert again.json()["calls"] == 2


def test_errors_are_not_cached(start_host: HostFactory, redis_server: RedisServer) -> None:
    host = start_host(SCRIPTS / "raising.py", env=redis_server.env())
    assert host.client.post("/score", json={"x": 1}).status_code == 500
    time.sleep(0.1)
    assert redis_server.client().keys(KEY_PREFIX + "*") == []


def test_password_auth(start_host: HostFactory, redis_server: RedisServer) -> None:
    redis_server.client().config_set("requirepass", "s3cret")
    host = start_host(SCRIPTS / "counting.py", env=redis_server.env(REDIS_PASSWORD="s3cret"))
    host.client.post("/score", json={"x": 1})
    time.sleep(0.1)
    assert host.client.post("/score", json={"x": 1}).headers["x-scoring-cache"] == "hit"

    wrong = start_host(SCRIPTS / "counting.py", env=redis_server.env(REDIS_PASSWORD="wrong"))
    r = wrong.client.post("/score", json={"x": 1})
    assert r.status_code == 200  # served without the cache
    cache = wrong.client.get("/status").json()["cache"]
    assert cache["connected"] is False
    assert cache["disabled_reason"]


def test_redis_killed_mid_run_host_keeps_serving(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    host = start_host(
        SCRIPTS / "counting.py", env=redis_server.env(REDIS_RETRY_MS="200", REDIS_TIMEOUT_MS="100")
    )
    host.client.post("/score", json={"x": 1})
    time.sleep(0.1)
    assert host.client.post("/score", json={"x": 1}).headers["x-scoring-cache"] == "hit"
    assert host.client.get("/status").json()["cache"]["connected"] is True

    redis_server.kill()
    t0 = time.monotonic()
    for i in range(20):
        r = host.client.post("/score", json={"x": i})
        assert r.status_code == 200
    assert time.monotonic() - t0 < 5  # no request waits long on the dead cache
    status = host.client.get("/status").json()["cache"]
    assert status["enabled"] is True
    assert status["connected"] is False
    assert status["disabled_reason"]
    assert "prediction cache unavailable" in host.log()

    redis_server.start()  # back on the same port: the host reconnects by itself
    deadline = time.monotonic() + 10
    while not host.client.get("/status").json()["cache"]["connected"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    host.client.post("/score", json={"y": 1})
    time.sleep(0.1)
    assert host.client.post("/score", json={"y": 1}).headers["x-scoring-cache"] == "hit"


def test_unreachable_redis_at_start_is_reported(start_host: HostFactory) -> None:

    port = free_port()  # nothing listens there
    host = start_host(
        SCRIPTS / "counting.py",
        env={"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "REDIS_SSL": "false"},
    )
    assert host.client.post("/score", json={"x": 1}).status_code == 200
    cache = host.client.get("/status").json()["cache"]
    assert cache["enabled"] is True and cache["connected"] is False


@pytest.mark.parametrize("script", ["raw.py", "echo_string.py"])
def test_requests_that_depend_on_more_than_the_body_are_not_cached(
    start_host: HostFactory, redis_server: RedisServer, script: str
) -> None:
    host = start_host(SCRIPTS / script, env=redis_server.env())
    r = host.client.post("/score", content=b"abc", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert "x-scoring-cache" not in r.headers
    time.sleep(0.1)
    assert redis_server.client().keys(KEY_PREFIX + "*") == []


def test_hits_are_much_faster_than_a_20ms_model(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    host = start_host(SCRIPTS / "model20ms.py", env=redis_server.env())
    payload = {"data": [[1, 2, 3], [4, 5, 6]]}
    miss = host.client.post("/score", json=payload)
    assert miss.json() == [6, 15]
    time.sleep(0.1)
    t0 = time.perf_counter()
    for _ in range(50):
        hit = host.client.post("/score", json=payload)
        assert hit.headers["x-scoring-cache"] == "hit"
        assert hit.content == miss.content
    per_hit = (time.perf_counter() - t0) / 50
    assert per_hit < 0.02  # a hit never pays the model's 20 ms


def test_a_host_without_a_cache_never_loads_redis() -> None:
    """redis imports OpenTelemetry's metrics SDK: 0.1 s of every start (bench: cold start). A
    host with no cache configured builds its app without it; with one, test_miss_then_hit and
    the rest show the client loads when needed."""
    code = (
        "import sys; from scoring.app import create_app; create_app(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'opentelemetry'}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "AZUREML_"))}
    env["AZUREML_ENTRY_SCRIPT"] = str(SCRIPTS / "plain.py")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
