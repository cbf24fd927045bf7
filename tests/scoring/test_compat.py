"""Drop-in compatibility with azmlinfsrv 1.5.1, over HTTP, with entry scripts like a user's.

Each behaviour was checked against azmlinfsrv side by side (README: "Compatibility with
azmlinfsrv"); where this host differs on purpose the test says so.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from _scoring_support import SCRIPTS, Host, HostFactory, free_port

APP = SCRIPTS / "c_app"
STREAM = SCRIPTS / "c_refpath_stream.py"


def test_generator_body_streams_one_chunk_per_yield(start_host: HostFactory) -> None:
    host = start_host(STREAM)  # imports azureml_inference_server_http.api.aml_request
    t0 = time.monotonic()
    arrivals = []
    with host.client.stream("GET", "/score", params={"n": "3", "pause": "0.6"}) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers
        for chunk in r.iter_raw():
            arrivals.append((time.monotonic() - t0, chunk))
    assert b"".join(c for _, c in arrivals) == b"chunk 0\nchunk 1\nchunk 2\n"
    assert arrivals[0][0] < 0.5, arrivals  # the first yield is sent before the next is made
    assert arrivals[-1][0] >= 1.2
    assert host.client.get("/ready").status_code == 200


def test_rawhttp_options_head_and_none(start_host: HostFactory) -> None:
    host = start_host(STREAM)
    options = host.client.options("/score")
    assert (options.status_code, options.text) == (200, "options seen")
    assert options.headers.get_list("allow") == ["GET", "POST", "OPTIONS"]
    head = host.client.head("/score")
    assert head.status_code == 200 and head.headers["x-method"] == "HEAD" and head.content == b""
    none = host.client.post("/score", content=b"none")
    assert (none.status_code, none.text, none.headers["content-type"]) == (
        200,
        "{}",
        "application/json",
    )


@pytest.mark.parametrize(
    ("body", "content_type", "seen"),
    [
        (b"nope", "application/json", "nope"),
        (b"", None, ""),
        (b'{"a": 1', "application/json", '{"a": 1'),
        (b'{"a":  1}', None, '{"a":  1}'),
        ("héllo".encode(), "text/plain", "héllo"),
    ],
    ids=["not-json", "empty", "truncated-json", "spacing-kept", "text"],
)
def test_plain_run_gets_any_body_as_text(
    start_host: HostFactory, body: bytes, content_type: str | None, seen: str
) -> None:
    host = start_host(SCRIPTS / "c_plain.py")
    headers = {"Content-Type": content_type} if content_type else {}
    r = host.client.post("/score", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"raw": seen}


def test_plain_run_none_and_undecodable_body(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "c_plain.py")
    assert host.client.post("/score", content=b"none").text == "{}"
    bad = host.client.post("/score", content=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400 and "UTF-8" in bad.json()["message"]  # as azmlinfsrv
    got = host.client.get("/score?b=2&a=1").json()
    assert got == {"raw": '{"b": 2, "a": 1}'}  # the query as JSON text, in its order


def test_schema_default_parameter_and_415_without_content_type(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "c_schema_default.py")
    assert host.client.post("/score", json={"data": [1, 2]}).json() == {"total": 30}
    assert host.client.post("/score", json={"data": [1, 2], "scale": 2}).json() == {"total": 6}
    assert host.client.get("/score", params={"data": "[1,2]"}).json() == {"total": 30}
    bare = host.client.post("/score", content=b'{"data": [1, 2]}')  # no Content-Type
    assert bare.status_code == 415
    assert "application/json" in bare.json()["message"]
    # this host's improvement: input the schema rejects is the client's 400, not run()'s 500
    assert host.client.post("/score", json={"data": "x"}).status_code == 400


def test_flask_rawhttp_script_and_app_root(start_host: HostFactory, tmp_path: Path) -> None:
    host = start_host(SCRIPTS / "c_flask_raw.py")
    r = host.client.get("/score", params={"a": "1"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "method": "GET",
        "flask_request_is_request": True,
        "args": {"a": "1"},
        "app_root": str(tmp_path),  # AML_APP_ROOT defaults to the working directory
    }
    post = host.client.post("/score", content=b"abc")
    assert (post.status_code, post.text) == (201, "cba")
    assert post.headers["content-type"].startswith("text/plain")


def test_source_directory_helpers_and_server_port(start_host: HostFactory) -> None:
    env = {"AML_APP_ROOT": str(APP), "AZUREML_SOURCE_DIRECTORY": "src", "SERVER_PORT": "1"}
    host = start_host(APP / "score.py", env=env)  # SERVER_PORT in the environment: ignored
    r = host.client.post("/score", content=b"hi")
    assert r.json() == {"shout": "HI", "app_root": str(APP), "port": str(host.port)}


def test_user_swagger_files_and_path_prefix(start_host: HostFactory) -> None:
    env = {"AML_APP_ROOT": str(APP), "AZUREML_SOURCE_DIRECTORY": "src"}
    host = start_host(APP / "score.py", env={**env, "SERVICE_PATH_PREFIX": "/api/v1/"})
    assert host.client.get("/swagger.json").json()["info"]["title"] == "user swagger 2"
    v3 = host.client.get("/swagger.json", params={"version": "3"}).json()
    assert v3["info"]["title"] == "user swagger 3"
    generated = host.client.get("/swagger.json", params={"version": "3.1"}).json()
    assert set(generated["paths"]) == {"/api/v1/", "/api/v1/score"}
    for path in ("/score", "/api/v1/score"):
        assert host.client.post(path, content=b"x").json()["shout"] == "X"
    assert host.client.get("/api/v1/").text == "Healthy"


def test_cors_origins_and_preflight(start_host: HostFactory) -> None:
    host = start_host(
        SCRIPTS / "c_plain.py", args=["--access_control_allow_origins", "http://a.example"]
    )
    r = host.client.post("/score", content=b"x", headers={"Origin": "http://a.example"})
    assert r.headers["access-control-allow-origin"] == "http://a.example"
    other = host.client.post("/score", content=b"x", headers={"Origin": "http://b.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = host.client.options(
        "/score",
        headers={
            "Origin": "http://a.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://a.example"
    assert preflight.headers["access-control-allow-methods"] == "GET, POST"
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    many = start_host(SCRIPTS / "c_plain.py", env={"AML_CORS_ORIGINS": "http://a.x, http://b.x"})
    r = many.client.get("/", headers={"Origin": "http://B.x"})
    assert r.headers["access-control-allow-origin"] == "http://B.x"
    assert r.headers["vary"] == "Origin"


def test_reference_flags_health_port_and_config_file(
    start_host: HostFactory, tmp_path: Path
) -> None:
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"SERVICE_NAME": "from-config", "SCORING_TIMEOUT_MS": 5000}))
    health = free_port()
    host = start_host(
        SCRIPTS / "c_plain.py",
        env={"SERVER_VERSION_LOG_RESPONSE_ENABLED": "false"},
        args=[
            "--health_port",
            str(health),
            "--appinsights_instrumentation_key",
            "00000000-0000-0000-0000-000000000000",
            "--config_file",
            str(config),
        ],
    )
    probe = httpx.get(f"http://127.0.0.1:{health}/", timeout=10)
    assert (probe.status_code, probe.text) == (200, "Healthy")
    assert "x-ms-server-version" not in probe.headers
    assert host.client.get("/swagger.json").json()["info"]["title"] == "from-config"


def test_main_py_in_the_app_root_is_the_default_entry_script(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from _scoring_support import REPO

    (tmp_path / "main.py").write_text((SCRIPTS / "c_plain.py").read_text())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SCORING_"))}
    env.pop("AZUREML_ENTRY_SCRIPT", None)
    env.update(PYTHONPATH=str(REPO), AML_APP_ROOT=str(tmp_path))
    log = tmp_path / "host.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoring", "--port", str(port), "--host", "127.0.0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(tmp_path),
        )
    host = Host(proc, port, log)
    try:
        host.wait_ready()
        assert host.client.post("/score", content=b"hi").json() == {"raw": "hi"}
    finally:
        host.stop()


def test_request_id_431_carries_an_id_and_server_version(sample_host: Host) -> None:
    long_id = "x" * 101
    r = sample_host.client.get(
        "/", headers={"x-ms-client-request-id": long_id, "x-request-id": "r"}
    )
    assert r.status_code == 431 and r.headers["x-request-id"] == "r"
    own = sample_host.client.get("/", headers={"x-request-id": long_id})
    assert own.status_code == 431 and len(own.headers["x-request-id"]) == 36  # a new one
    assert sample_host.client.get("/").headers["x-ms-server-version"].startswith("scoring/")


def test_requests_during_init_wait_for_it(start_host: HostFactory) -> None:
    host = start_host(SCRIPTS / "slow.py", env={"SLOW_INIT_SECONDS": "1.5"}, wait=False)
    deadline = time.monotonic() + 30
    while True:  # /ready answers (503) while init() runs
        try:
            if host.client.get("/ready", timeout=0.5).status_code == 503:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with ThreadPoolExecutor(2) as pool:
        live = pool.submit(host.client.get, "/")
        early = pool.submit(host.client.post, "/score", json={"sleep": 0})
        time.sleep(0.3)
        assert not live.done() and not early.done()  # a probe on / never lets traffic in early
        assert host.client.get("/ready").status_code == 503
        assert host.client.get("/status").json()["ready"] is False
        assert live.result().text == "Healthy"
        assert host.client.get("/ready").status_code == 200
        assert early.result().json() == {"slept": 0}
