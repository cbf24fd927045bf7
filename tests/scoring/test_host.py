"""The scoring host as a real process over HTTP: the Azure ML contract and our improvements."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from _scoring_support import SCRIPTS, SEED_PAYLOAD, Host, HostFactory


def _expected_predictions(model_dir: Path) -> list[float]:
    import joblib
    import numpy as np

    model = joblib.load(model_dir / "diabetes-ridge" / "1" / "model.joblib")
    return model.predict(np.array(SEED_PAYLOAD["data"], dtype=float)).tolist()


def test_seed_payload_scores_with_the_sample_model(sample_host: Host, model_dir: Path) -> None:
    r = sample_host.client.post("/score", json=SEED_PAYLOAD)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == pytest.approx(_expected_predictions(model_dir))
    assert r.headers["x-ms-run-function-failed"] == "False"
    assert float(r.headers["x-ms-run-fn-exec-ms"]) >= 0


def test_get_score_reads_query_parameters(sample_host: Host, model_dir: Path) -> None:
    r = sample_host.client.get("/score", params={"data": json.dumps(SEED_PAYLOAD["data"])})
    assert r.status_code == 200, r.text
    assert r.json() == pytest.approx(_expected_predictions(model_dir))


def test_liveness_readiness_and_status(sample_host: Host) -> None:
    assert sample_host.client.get("/").status_code == 200
    assert sample_host.client.get("/").text == "Healthy"
    assert sample_host.client.get("/ready").json() == {"ready": True}
    status = sample_host.client.get("/status").json()
    assert status["model"] == {"name": "diabetes-ridge", "version": "1"}
    assert status["ready"] is True
    assert status["input"] == "schema"
    assert status["cache"] == {
        "enabled": False,
        "connected": False,
        "disabled_reason": "REDIS_HOST is not set",
    }


def test_unknown_path_is_404_json(sample_host: Host) -> None:
    r = sample_host.client.get("/nope")
    assert r.status_code == 404
    assert "message" in r.json()


def test_unsupported_method_is_405(sample_host: Host) -> None:
    r = sample_host.client.put("/score", json=SEED_PAYLOAD)
    assert r.status_code == 405


@pytest.mark.parametrize("version", ["2", "3"])
def test_swagger_generated_from_inference_schema(sample_host: Host, version: str) -> None:
    r = sample_host.client.get("/swagger.json", params={"version": version})
    assert r.status_code == 200
    doc = r.json()
    if version == "2":
        assert doc["swagger"] == "2.0"
        service_input = doc["definitions"]["ServiceInput"]
    else:
        assert doc["openapi"].startswith("3.0")
        service_input = doc["components"]["schemas"]["ServiceInput"]
    data = service_input["properties"]["data"]
    assert data["type"] == "array"
    assert service_input["example"]["data"] == [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]]
    assert "/score" in doc["paths"]


def test_swagger_default_is_v2_and_bad_version_404(sample_host: Host) -> None:
    assert sample_host.client.get("/swagger.json").json()["swagger"] == "2.0"
    r = sample_host.client.get("/swagger.json", params={"version": "9"})
    assert r.status_code == 404
    assert "not valid" in r.json()["message"]


def test_request_ids_are_echoed(sample_host: Host) -> None:
    r = sample_host.client.post(
        "/score",
        json=SEED_PAYLOAD,
        headers={"x-request-id": "req-1", "x-ms-client-request-id": "client-1"},
    )
    assert r.headers["x-request-id"] == "req-1"
    assert r.headers["x-ms-client-request-id"] == "client-1"
    assert r.headers["x-ms-request-id"] == "client-1"
    r = sample_host.client.post("/score", json=SEED_PAYLOAD, headers={"x-ms-request-id": "legacy"})
    assert r.headers["x-ms-request-id"] == "legacy"
    assert r.headers["x-ms-client-request-id"] == "legacy"
    generated = sample_host.client.post("/score", json=SEED_PAYLOAD).headers["x-request-id"]
    assert len(generated) == 36
    too_long = sample_host.client.get("/", headers={"x-request-id": "x" * 101})
    assert too_long.status_code == 431


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b'{"data": [[1,2,3', "application/json", 400, "could not be decoded as JSON"),
        (b"", "application/json", 400, "empty"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (b'{"other": 1}', "application/json", 400, "'data'"),
        (b'{"data": [[1,2,3]]}', "application/json", 400, "does not match the input schema"),
        (
            b'{"data": [["a","b","c","d","e","f","g","h","i","j"]]}',
            "application/json",
            400,
            "does not match the input schema",
        ),
        (b'{"data": "not an array"}', "application/json", 400, "does not match the input schema"),
        (b"\xff\xfe\xfa garbage", "application/json", 400, ""),
        (b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400, ""),
        (b'{"data": [[1,2,3,4,5,6,7,8,9,10]]}', "text/plain", 415, "application/json"),
        (b"data=1", "application/x-www-form-urlencoded", 415, "application/json"),
    ],
    ids=[
        "truncated",
        "empty",
        "not-object",
        "missing-param",
        "wrong-shape",
        "strings",
        "scalar",
        "invalid-utf8",
        "deep-nesting",
        "text-plain",
        "form",
    ],
)
def test_bad_bodies_are_4xx_with_a_reason(
    sample_host: Host, body: bytes, content_type: str, status: int, fragment: str
) -> None:
    r = sample_host.client.post("/score", content=body, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    assert fragment in r.json()["message"]
    assert r.headers["x-ms-run-function-failed"] == "False"


def test_host_still_healthy_after_hostile_inputs(sample_host: Host) -> None:
    assert sample_host.client.post("/score", json=SEED_PAYLOAD).status_code == 200


def test_oversized_body_is_413(start_host: HostFactory, model_dir: Path) -> None:
    host = start_host(model_dir=model_dir, env={"SCORING_MAX_BODY_BYTES": "1000"})
    r = host.client.post(
        "/score", content=b"{" + b" " * 5000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert "1000" in r.json()["message"]

    # chunked upload without Content-Length is counted too
    def chunks():
        for _ in range(10):
            yield b" " * 500

    r = host.client.post("/score", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert host.client.post("/score", json=SEED_PAYLOAD).status_code == 200


def test_run_raising_is_500_json_without_traceback(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "raising.py")
    r = host.client.post("/score", json={"x": 1})
    assert r.status_code == 500
    assert r.headers["x-ms-run-function-failed"] == "True"
    body = r.json()
    assert set(body) == {"message"}
    assert "secret-detail-42" not in r.text and "Traceback" not in r.text
    time.sleep(0.2)
    log = host.log()
    assert "Traceback" in log and "secret-detail-42" in log


def test_timeout_is_500_with_message_and_host_keeps_serving(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "slow.py", env={"SCORING_TIMEOUT_MS": "300"})
    t0 = time.monotonic()
    r = host.client.post("/score", json={"sleep": 3})
    assert time.monotonic() - t0 < 2.5
    assert r.status_code == 500
    assert r.json() == {"message": "Scoring timeout after 300 ms"}
    assert r.headers["x-ms-run-function-failed"] == "True"
    # the next request is not queued behind the stuck run()
    t0 = time.monotonic()
    assert host.client.post("/score", json={"sleep": 0}).json() == {"slept": 0}
    assert time.monotonic() - t0 < 1.0


def test_timeout_interrupts_a_pure_python_loop(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "busy.py", env={"SCORING_TIMEOUT_MS": "200"})
    r = host.client.post("/score", json={"n": 0})
    assert r.status_code == 500
    assert "timeout" in r.json()["message"]
    # the loop was stopped, so the worker has its CPU back and answers quickly
    t0 = time.monotonic()
    assert host.client.post("/score", json={"n": 10}).json() == {"total": 45}
    assert time.monotonic() - t0 < 1.0


def _run_status(host: Host) -> dict[str, object]:
    return host.client.get("/status").json()["run"]


def test_fast_calls_then_a_slow_one_never_hold_up_readiness(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "slow.py")
    for _ in range(30):
        assert host.client.post("/score", json={"sleep": 0}).json() == {"slept": 0}
    assert _run_status(host)["where"] == "run thread"
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(host.client.post, "/score", json={"sleep": 1.5})
        time.sleep(0.2)
        t0 = time.monotonic()
        assert host.client.get("/ready").status_code == 200
        assert host.client.get("/").status_code == 200
        assert time.monotonic() - t0 < 0.5
        assert slow.result().json() == {"slept": 1.5}


def test_broken_init_exits_nonzero_with_the_reason_logged(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "broken_init.py", wait=False)
    assert host.proc.wait(30) == 3
    assert "model file is corrupt" in host.log()


def test_missing_entry_script_fails_fast(start_host: HostFactory, tmp_path: Path) -> None:
    host = start_host(tmp_path / "nope.py", wait=False)
    assert host.proc.wait(30) == 3
    assert "entry script not found" in host.log()


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("SCORING_MAX_STUCK_RUNS", "-1", "must be >= 0"),
        ("SCORING_MAX_STUCK_RUNS", "many", "expected an integer"),
        ("SCORING_STALL_TIMEOUT_SECONDS", "0", "must be > 0"),
        ("SCORING_TIMEOUT_MS", "0", "must be >= 1"),
        ("SCORING_ACCESS_LOG", "maybe", "expected true or false"),
    ],
)
def test_a_bad_setting_stops_the_host_naming_it(
    start_host: HostFactory, name: str, value: str, reason: str
) -> None:
    host = start_host(SCRIPTS / "plain.py", env={name: value}, wait=False)
    assert host.proc.wait(30) == 2
    assert f"configuration error: {name}={value!r}: {reason}" in host.log()


def test_undecorated_run_gets_the_body_string_and_headers(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "echo_string.py")
    r = host.client.post(
        "/score", content=b"hello, world", headers={"Content-Type": "text/plain", "X-Custom": "yes"}
    )
    assert r.json() == {"raw": "hello, world", "type": "str", "header": "yes"}
    # malformed JSON is run()'s to judge, as in azmlinfsrv (tests/scoring/test_compat.py)
    r = host.client.post("/score", content=b'{"a": 1', headers={"Content-Type": "application/json"})
    assert r.json()["raw"] == '{"a": 1'
    r = host.client.post("/score", content=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400


def test_numpy_results_are_serialised(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "plain.py")
    r = host.client.post("/score", json={"data": [[1, 2], [3, 4]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"sums": [3.0, 7.0], "count": 2}


def test_rawhttp_script_gets_the_request_and_returns_amlresponse(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "raw.py")
    r = host.client.get("/score", params={"a": "1"})
    assert r.status_code == 200
    assert r.text == "/score?a=1"
    r = host.client.post("/score", content=b"abc", headers={"X-Custom": "hdr"})
    assert r.status_code == 200
    assert r.content == b"cba"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["access-control-allow-origin"] == "http://www.example.com"
    assert r.headers["x-seen-header"] == "hdr"
    failed = host.client.post("/score", content=b"fail")
    assert failed.status_code == 503
    assert failed.headers["x-ms-run-function-failed"] == "True"
    assert host.client.get("/swagger.json").status_code == 200


def test_keep_alive_reuses_one_connection(sample_host: Host) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sample_host.port, timeout=10)
    body = json.dumps(SEED_PAYLOAD)
    conn.request("POST", "/score", body, {"Content-Type": "application/json"})
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    for _ in range(20):
        conn.request("POST", "/score", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("connection", "").lower() != "close"
        resp.read()
    assert conn.sock is sock  # no reconnect happened
    conn.close()


def test_concurrent_requests_all_succeed(sample_host: Host, model_dir: Path) -> None:
    expected = _expected_predictions(model_dir)

    def call(i: int) -> list[float]:
        with httpx.Client(base_url=sample_host.url, timeout=30) as c:
            return [c.post("/score", json=SEED_PAYLOAD).json() for _ in range(10)][-1]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(32)))
    assert all(r == pytest.approx(expected) for r in results)


def test_auth_keys_guard_score_and_swagger_only(start_host: HostFactory, model_dir: Path) -> None:
    host = start_host(model_dir=model_dir, env={"SCORING_AUTH_KEYS": "primary-key,secondary-key"})
    r = host.client.post("/score", json=SEED_PAYLOAD)
    assert r.status_code == 401 and "Authorization" in r.json()["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    bad = host.client.post("/score", json=SEED_PAYLOAD, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    for key in ("primary-key", "secondary-key"):
        ok = host.client.post(
            "/score", json=SEED_PAYLOAD, headers={"Authorization": f"Bearer {key}"}
        )
        assert ok.status_code == 200
    assert host.client.get("/swagger.json").status_code == 401
    swagger = host.client.get("/swagger.json", headers={"Authorization": "Bearer primary-key"})
    assert swagger.json()["paths"]["/score"]["post"]["security"] == [{"Bearer": []}]
    for open_path in ("/", "/ready", "/status"):
        assert host.client.get(open_path).status_code == 200


def test_worker_count_starts_several_workers(start_host: HostFactory, model_dir: Path) -> None:
    host = start_host(SCRIPTS / "counting.py", args=["--worker_count", "2"])
    pids = set()
    deadline = time.monotonic() + 20
    while len(pids) < 2 and time.monotonic() < deadline:
        with httpx.Client(base_url=host.url) as c:  # new connection each time
            r = c.post("/score", json={"i": time.monotonic()})
            if r.status_code == 200:
                pids.add(r.json()["pid"])
    assert len(pids) == 2
