"""The client against the REAL scoring host (``python -m scoring`` as a process) through a stack
outputs file shaped by the real dev program, and against a scripted loopback server for the
429/503 sequences, timeouts and non-JSON answers."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from client import (
    AuthRefusedError,
    BadPayloadError,
    ClientError,
    NotJsonError,
    RetriesExhaustedError,
    RetryPolicy,
    ScoringClient,
    StackOutputs,
    TargetOffError,
    UnknownTargetError,
    load_file,
)
from client.scoring import parse_retry_after

from .conftest import GOOD_KEY, OTHER_KEY, SEED_PAYLOAD, json_body

ROOT = Path(__file__).resolve().parents[2]


def outputs_for(dev_outputs: dict[str, Any], base: str, key: str | None) -> dict[str, Any]:
    """The real dev outputs with the aks target pointed at ``base`` and keyed with ``key``."""
    out = copy.deepcopy(dev_outputs)
    aks = out["endpoints"]["aks"]
    aks["scoring_uri"] = f"{base}/score"
    aks["swagger_uri"] = f"{base}/swagger.json"
    aks["health_uri"] = f"{base}/ready"
    aks["auth"]["key"] = key
    return out


def write(tmp_path: Path, outputs: dict[str, Any], name: str = "outputs.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(outputs))
    return path


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def no_sleep(log: list[float]):
    return log.append


# --- the real dev outputs contract ---------------------------------------------------------------
def test_the_real_dev_outputs_carry_what_the_client_reads(dev_outputs: dict[str, Any]):
    outputs = StackOutputs(dev_outputs, "dev")
    assert "aks" in outputs.endpoints
    for name in outputs.endpoints:
        target = outputs.target(name)
        assert target.scoring_uri.startswith(("http://", "https://"))
        assert target.auth.scheme in ("bearer-key", "function-key", "aml-key", "none")
        if target.auth.scheme != "none":
            assert target.auth.key and target.auth.key != "[secret]"


# --- against the real scoring host -----------------------------------------------------------
def test_cli_scores_the_sample_payload_through_an_outputs_file(
    keyed_host, dev_outputs, tmp_path: Path
):
    outputs = write(tmp_path, outputs_for(dev_outputs, keyed_host.url, GOOD_KEY))
    data = tmp_path / "sample.json"
    data.write_text(json.dumps(SEED_PAYLOAD))

    proc = cli("score", "--target", "aks", "--data", str(data), "--outputs", str(outputs))

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    direct = keyed_host.client.post(
        "/score", json=SEED_PAYLOAD, headers={"Authorization": f"Bearer {GOOD_KEY}"}
    )
    assert direct.status_code == 200
    assert result == direct.json()
    assert len(result) == 2 and all(isinstance(v, float) for v in result)  # two rows scored


def test_second_key_works_too(keyed_host, dev_outputs, tmp_path: Path):
    client = ScoringClient(
        load_file(write(tmp_path, outputs_for(dev_outputs, keyed_host.url, OTHER_KEY)))
    )
    assert client.score("aks", SEED_PAYLOAD)


def test_wrong_key_is_auth_refused(keyed_host, dev_outputs, tmp_path: Path):
    outputs = load_file(write(tmp_path, outputs_for(dev_outputs, keyed_host.url, "not-the-key")))
    with pytest.raises(AuthRefusedError) as err:
        ScoringClient(outputs, retry=RetryPolicy(retries=0)).score("aks", SEED_PAYLOAD)
    assert err.value.status == 401
    assert "Invalid key" in str(err.value)


def test_cli_reports_auth_refused_in_one_line(keyed_host, dev_outputs, tmp_path: Path):
    outputs = write(tmp_path, outputs_for(dev_outputs, keyed_host.url, "not-the-key"))
    data = tmp_path / "sample.json"
    data.write_text(json.dumps(SEED_PAYLOAD))
    proc = cli("score", "--target", "aks", "--data", str(data), "--outputs", str(outputs))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "refused the credentials (401)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_payload_carries_the_servers_reason(keyed_host, dev_outputs, tmp_path: Path):
    client = ScoringClient(
        load_file(write(tmp_path, outputs_for(dev_outputs, keyed_host.url, GOOD_KEY)))
    )
    with pytest.raises(BadPayloadError) as err:
        client.score("aks", {"data": "not a matrix"})
    assert err.value.status == 400
    reason = keyed_host.client.post(
        "/score", json={"data": "not a matrix"}, headers={"Authorization": f"Bearer {GOOD_KEY}"}
    ).json()["message"]
    assert err.value.reason == reason and reason


def test_unknown_target_lists_the_known_ones(dev_outputs, tmp_path: Path):
    outputs = write(tmp_path, dev_outputs)
    data = tmp_path / "sample.json"
    data.write_text(json.dumps(SEED_PAYLOAD))
    proc = cli("score", "--target", "fpga-cloud", "--data", str(data), "--outputs", str(outputs))
    assert proc.returncode == 2
    for name in dev_outputs["endpoints"]:
        assert name in proc.stderr
    with pytest.raises(UnknownTargetError) as err:
        load_file(outputs).target("fpga-cloud")
    assert err.value.available == sorted(dev_outputs["endpoints"])


def test_target_switched_off_names_its_config_key(dev_outputs):
    outputs = copy.deepcopy(dev_outputs)
    del outputs["endpoints"]["aci"]
    with pytest.raises(TargetOffError) as err:
        StackOutputs(outputs, "f").target("aci")
    assert "mlscore:aciEnabled" in str(err.value)


def test_masked_secrets_are_explained(dev_outputs):
    outputs = copy.deepcopy(dev_outputs)
    outputs["endpoints"]["aks"]["auth"]["key"] = "[secret]"
    with pytest.raises(ClientError, match="--show-secrets"):
        ScoringClient(StackOutputs(outputs, "f")).score("aks", SEED_PAYLOAD)


def test_cli_lists_targets(dev_outputs, tmp_path: Path):
    proc = cli("targets", "--outputs", str(write(tmp_path, dev_outputs)))
    assert proc.returncode == 0, proc.stderr
    assert {line.split("\t")[0] for line in proc.stdout.splitlines()} == set(
        dev_outputs["endpoints"]
    )


# --- each auth scheme's header, seen by a loopback server ----------------------------------------
@pytest.mark.parametrize(
    ("scheme", "header", "value"),
    [
        ("bearer-key", "Authorization", "Bearer K1"),
        ("aml-key", "Authorization", "Bearer K1"),
        ("function-key", "x-functions-key", "K1"),
        ("none", None, None),
    ],
)
def test_each_auth_scheme_sends_its_header(scheme, header, value, scripted):
    server = scripted((200, {"Content-Type": "application/json"}, json_body([1.0])))
    outputs = {
        "endpoints": {
            "t": {"scoring_uri": f"{server.url}/api/score", "auth": {"scheme": scheme, "key": "K1"}}
        }
    }
    assert ScoringClient(StackOutputs(outputs, "f")).score("t", SEED_PAYLOAD) == [1.0]
    seen = {k.lower(): v for k, v in server.seen[0]["headers"].items()}
    assert json.loads(server.seen[0]["body"]) == SEED_PAYLOAD
    if header is None:
        assert "authorization" not in seen and "x-functions-key" not in seen
    else:
        assert seen[header.lower()] == value


def test_online_endpoint_deployment_is_pinned_by_header(scripted):
    server = scripted((200, {"Content-Type": "application/json"}, json_body([1.0])))
    entry = {"scoring_uri": f"{server.url}/score", "auth": {"scheme": "aml-key", "key": "K"}}
    outputs = {"endpoints": {"aml_online": entry}}
    ScoringClient(StackOutputs(outputs, "f")).score("aml_online", SEED_PAYLOAD, deployment="green")
    assert server.seen[0]["headers"]["azureml-model-deployment"] == "green"


# --- retries, timeouts, non-JSON ---------------------------------------------------------------
def _one(url: str) -> StackOutputs:
    return StackOutputs(
        {"endpoints": {"t": {"scoring_uri": f"{url}/score", "auth": {"scheme": "none"}}}}, "f"
    )


def test_retries_503_then_429_honouring_retry_after(scripted):
    server = scripted(
        (503, {"Retry-After": "3"}, json_body({"message": "warming up"})),
        (429, {}, json_body({"message": "slow down"})),
        (200, {"Content-Type": "application/json"}, json_body({"result": [1, 2]})),
    )
    waits: list[float] = []
    client = ScoringClient(_one(server.url), retry=RetryPolicy(backoff=0.25), sleep=waits.append)
    assert client.score("t", SEED_PAYLOAD) == {"result": [1, 2]}
    assert len(server.seen) == 3
    assert waits == [3.0, 0.5]  # Retry-After, then backoff 0.25 x 2^1


def test_retry_after_is_really_waited_for(scripted, tmp_path: Path):
    server = scripted(
        (503, {"Retry-After": "1"}, b"busy"),
        (200, {"Content-Type": "application/json"}, json_body([42])),
    )
    data = tmp_path / "d.json"
    data.write_text(json.dumps(SEED_PAYLOAD))
    outputs = write(tmp_path, dict(_one(server.url).raw))
    started = time.monotonic()
    proc = cli("score", "--target", "t", "--data", str(data), "--outputs", str(outputs))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [42]
    assert time.monotonic() - started >= 1.0


def test_retries_are_bounded(scripted):
    server = scripted((503, {}, json_body({"message": "down for maintenance"})))
    waits: list[float] = []
    client = ScoringClient(_one(server.url), retry=RetryPolicy(retries=3), sleep=waits.append)
    with pytest.raises(RetriesExhaustedError) as err:
        client.score("t", SEED_PAYLOAD)
    assert len(server.seen) == 4 and err.value.attempts == 4
    assert waits == [0.5, 1.0, 2.0]
    assert "down for maintenance" in str(err.value)


def test_backoff_and_retry_after_are_capped(scripted):
    server = scripted((429, {"Retry-After": "3600"}, b""), (200, {}, json_body([0])))
    waits: list[float] = []
    client = ScoringClient(_one(server.url), retry=RetryPolicy(max_wait=5), sleep=waits.append)
    client.score("t", SEED_PAYLOAD)
    assert waits == [5]


def test_client_errors_are_not_retried(scripted):
    server = scripted((400, {"Content-Type": "application/json"}, json_body({"message": "bad"})))
    with pytest.raises(BadPayloadError, match="bad"):
        ScoringClient(_one(server.url), sleep=lambda _: None).score("t", SEED_PAYLOAD)
    assert len(server.seen) == 1


def test_forbidden_is_auth_refused(scripted):
    server = scripted((403, {}, b"IP not allowed"))
    with pytest.raises(AuthRefusedError, match="IP not allowed"):
        ScoringClient(_one(server.url)).score("t", SEED_PAYLOAD)


def test_non_json_answer_is_a_clear_error(scripted):
    server = scripted((200, {"Content-Type": "text/html"}, b"<html>App Service is starting</html>"))
    with pytest.raises(NotJsonError, match="text/html"):
        ScoringClient(_one(server.url)).score("t", SEED_PAYLOAD)


def test_read_timeout(scripted):
    server = scripted((200, {}, json_body([1])), delay=2.0)
    client = ScoringClient(_one(server.url), timeout=(2.0, 0.3))
    with pytest.raises(ClientError, match=r"did not answer within 0\.3s"):
        client.score("t", SEED_PAYLOAD)


def test_refused_connections_are_retried_then_reported():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    waits: list[float] = []
    client = ScoringClient(
        _one(f"http://127.0.0.1:{port}"), retry=RetryPolicy(retries=2), sleep=waits.append
    )
    with pytest.raises(ClientError, match="cannot connect"):
        client.score("t", SEED_PAYLOAD)
    assert waits == [0.5, 1.0]


def test_parse_retry_after():
    now = time.time()
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    in_ten = parse_retry_after(formatdate(now + 10, usegmt=True), now=now)
    assert in_ten is not None and 9 <= in_ten <= 10


def test_missing_outputs_file_and_bad_json(tmp_path: Path):
    with pytest.raises(ClientError, match="does not exist"):
        load_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ClientError, match="not JSON"):
        load_file(bad)


def test_host_is_really_guarded(keyed_host):
    # the 401 above comes from the host's own check, not from a misconfigured client
    assert keyed_host.client.post("/score", json=SEED_PAYLOAD).status_code == 401
    assert httpx.get(f"{keyed_host.url}/ready").status_code == 200
