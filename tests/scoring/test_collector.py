"""Model data collection in Azure ML's format, written to Azurite with the real SDK."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _scoring_support import SEED_PAYLOAD, Azurite, HostFactory

from scoring.config import Settings
from scoring.observability import Observability
from scoring.observability.collector import DataCollector, rows
from scoring.observability.metrics import (
    DC_COLLECTED,
    DC_DROPPED_FULL,
    DC_DROPPED_UPLOAD,
    DC_SKIPPED,
    DC_UPLOADED,
    Metrics,
)
from scoring.observability.settings import DataCollectionSettings

BODY = b'{"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}'
OUTPUT = b"[5021.23, 3917.5]"


def _settings(**env: str) -> DataCollectionSettings:
    return DataCollectionSettings.from_env(env)


def _collector(azurite: Azurite, endpoint: str, **env: str) -> DataCollector:
    settings = _settings(
        DATA_COLLECTION_ENABLED="true",
        DATA_COLLECTION_CONNECTION_STRING=azurite.connection_string,
        SCORING_ENDPOINT_NAME=endpoint,
        SCORING_DEPLOYMENT_NAME="blue",
        **env,
    )
    assert settings.problem is None, settings.problem
    collector = DataCollector(settings, Metrics(), model_version="3", instance="pod-a")
    assert collector.start(), collector.error
    return collector


def _blobs(
    azurite: Azurite, prefix: str, container: str = "modeldata", *, in_flight: bool = False
) -> dict[str, list[Any]]:
    """The collected blobs under `prefix`. With `in_flight` (the host is still writing), a blob
    with no block yet is left out: an append blob is created empty and its first block lands
    in a second call, so a reader between the two sees "" (the flake CI hit)."""
    client = azurite.service().get_container_client(container)
    out: dict[str, list[Any]] = {}
    if not client.exists():
        return out
    for blob in client.list_blobs(name_starts_with=prefix):
        text = client.download_blob(blob.name).readall().decode()
        if in_flight and not text:
            continue
        out[blob.name] = [json.loads(line) for line in text.splitlines()]
        assert text.endswith("\n")
        assert blob.blob_type == "AppendBlob"
    return out


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({}, "needs DATA_COLLECTION_BLOB_URL"),
        ({"DATA_COLLECTION_BLOB_URL": "not a url"}, "expected a container URL"),
        ({"DATA_COLLECTION_BLOB_URL": "https://a.blob.core.windows.net/c?sv=x"}, "no SAS"),
        ({"DATA_COLLECTION_BLOB_URL": "https://a:port/c"}, "expected a container URL"),
        (
            {"DATA_COLLECTION_BLOB_URL": "https://a/c", "DATA_COLLECTION_CONNECTION_STRING": "x"},
            "both set",
        ),
        ({"DATA_COLLECTION_CONNECTION_STRING": "AccountName=a"}, "malformed"),
        ({"DATA_COLLECTION_CONNECTION_STRING": "garbage"}, "malformed"),
        (
            {"DATA_COLLECTION_BLOB_URL": "https://a/c", "DATA_COLLECTION_SAMPLING_RATE": "1.5"},
            "DATA_COLLECTION_SAMPLING_RATE='1.5'",
        ),
        (
            {"DATA_COLLECTION_BLOB_URL": "https://a/c", "DATA_COLLECTION_SAMPLING_RATE": "half"},
            "from 0 to 1",
        ),
        (
            {"DATA_COLLECTION_BLOB_URL": "https://a/c", "DATA_COLLECTION_CONTAINER": "Model_Data"},
            "DATA_COLLECTION_CONTAINER",
        ),
    ],
)
def test_bad_collection_settings_turn_collection_off(env: dict[str, str], fragment: str) -> None:
    settings = _settings(DATA_COLLECTION_ENABLED="true", **env)
    assert not settings.enabled
    assert settings.problem is not None and fragment in settings.problem
    assert settings.problem.endswith("model data collection is off")


def test_collection_settings() -> None:
    assert not _settings().enabled and _settings().problem is None
    assert "DATA_COLLECTION_ENABLED='maybe'" in (
        _settings(DATA_COLLECTION_ENABLED="maybe").problem or ""
    )
    s = _settings(
        DATA_COLLECTION_ENABLED="true",
        DATA_COLLECTION_BLOB_URL="https://st1.blob.core.windows.net/mdc",
        DATA_COLLECTION_SAMPLING_RATE="0.25",
        SCORING_ENDPOINT_NAME="diabetes endpoint/x",
        AZURE_CLIENT_ID="abc",
    )
    assert (s.enabled, s.sampling_rate, s.endpoint, s.deployment, s.client_id) == (
        True,
        0.25,
        "diabetes-endpoint-x",  # a safe blob path segment
        "default",
        "abc",
    )


def test_rows_are_a_dataframes_records() -> None:
    assert rows({"data": [[1, 2], [3, 4]]}) == [{"0": 1, "1": 2}, {"0": 3, "1": 4}]
    assert rows([5021.2, 3.5]) == [{"0": 5021.2}, {"0": 3.5}]
    assert rows([{"age": 3}, {"age": 4}]) == [{"age": 3}, {"age": 4}]
    assert rows({"data": [{"age": 3}]}) == [{"age": 3}]
    assert rows({"predictions": [1, 2]}) == [{"predictions": [1, 2]}]
    assert rows(7) == [{"0": 7}]
    assert rows([[1], {"a": 1}]) == [[1], {"a": 1}]  # mixed: as it is


# -- Azurite --------------------------------------------------------------------------------


def test_inputs_and_outputs_land_in_azure_mls_layout(azurite: Azurite) -> None:
    endpoint = f"ep-{uuid.uuid4().hex[:8]}"
    collector = _collector(azurite, endpoint)
    before = time.time()
    collector.collect(BODY, OUTPUT, "req-1")
    collector.collect(b'{"data": [[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]]}', b"[12.0]", "req-2")
    collector.flush()
    collector.collect(b"plain text input", b'"a string"', "req-3")  # appended to the same blob
    collector.close()
    blobs = _blobs(azurite, f"modelDataCollector/{endpoint}/")
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime(before))
    inputs = f"modelDataCollector/{endpoint}/blue/model_inputs/{hour}/pod-a.jsonl"
    outputs = f"modelDataCollector/{endpoint}/blue/model_outputs/{hour}/pod-a.jsonl"
    assert set(blobs) == {inputs, outputs}, sorted(blobs)
    first_in, first_out = blobs[inputs][0], blobs[outputs][0]
    assert set(first_in) == {
        "specversion",
        "id",
        "source",
        "type",
        "datacontenttype",
        "time",
        "data",
        "contentrange",
        "correlationid",
        "xrequestid",
        "modelversion",
        "agent",
    }
    assert first_in["specversion"] == "1.0"
    assert first_in["type"] == "azureml.inference.model_inputs"
    assert first_out["type"] == "azureml.inference.model_outputs"
    assert first_in["source"] == f"/endpoints/{endpoint}/deployments/blue"
    assert first_in["datacontenttype"] == "application/json"
    assert first_in["data"][0] == {str(i): i + 1 for i in range(10)}
    assert len(first_in["data"]) == 2
    assert first_out["data"] == [{"0": 5021.23}, {"0": 3917.5}]
    assert first_in["correlationid"] == first_out["correlationid"] == "req-1"
    assert first_in["xrequestid"] == "req-1"
    assert first_in["id"] != first_out["id"]
    assert first_in["contentrange"] == f"bytes 0-{len(BODY) - 1}/{len(BODY)}"
    assert first_in["modelversion"] == "3"
    assert (
        abs(
            time.mktime(time.strptime(first_in["time"], "%Y-%m-%dT%H:%M:%SZ"))
            - time.mktime(time.gmtime(before))
        )
        < 5
    )
    assert [e["correlationid"] for e in blobs[inputs]] == ["req-1", "req-2", "req-3"]
    assert blobs[inputs][2]["datacontenttype"] == "text/plain"
    assert blobs[inputs][2]["data"] == "plain text input"
    status = collector.status()
    assert (status["collected"], status["uploaded"]) == (3, 3)
    assert status["dropped"] == {"buffer_full": 0, "upload_failed": 0, "not_collectable": 0}


def test_sampling_rate(azurite: Azurite) -> None:
    endpoint = f"ep-{uuid.uuid4().hex[:8]}"
    none = _collector(azurite, endpoint, DATA_COLLECTION_SAMPLING_RATE="0")
    for i in range(50):
        none.collect(BODY, OUTPUT, f"n{i}")
    none.close()
    assert none.metrics.cells[DC_COLLECTED] == 0
    assert _blobs(azurite, f"modelDataCollector/{endpoint}/") == {}
    some = _collector(azurite, endpoint, DATA_COLLECTION_SAMPLING_RATE="0.3")
    for i in range(1000):
        some.collect(BODY, OUTPUT, f"s{i}")
    some.close()
    collected = some.metrics.cells[DC_COLLECTED]
    assert 200 < collected < 400  # 300 expected; outside this, p < 1e-10
    blobs = _blobs(azurite, f"modelDataCollector/{endpoint}/")
    assert sorted(len(v) for v in blobs.values()) == [collected, collected]


def test_binary_and_oversized_payloads_are_skipped(azurite: Azurite) -> None:
    endpoint = f"ep-{uuid.uuid4().hex[:8]}"
    collector = _collector(azurite, endpoint)
    collector.collect(b"\xff\xd8\xff\xe0 a jpeg", b"[1]", "bin")
    collector.collect(b'"' + b"x" * (5 * 1024 * 1024) + b'"', b"[1]", "big")
    collector.collect(BODY, OUTPUT, "fine")
    collector.close()
    assert collector.metrics.cells[DC_SKIPPED] == 2
    blobs = _blobs(azurite, f"modelDataCollector/{endpoint}/")
    assert [[e["correlationid"] for e in v] for v in blobs.values()] == [["fine"], ["fine"]]


def test_storage_down_never_slows_collection_and_drops_are_counted() -> None:
    settings = _settings(
        DATA_COLLECTION_ENABLED="true",
        # nothing listens on port 9 (discard): every append fails at once
        DATA_COLLECTION_CONNECTION_STRING=(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={Azurite.KEY};BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
        ),
    )
    collector = DataCollector(settings, Metrics(), max_buffer=100, interval=0.05)
    assert collector.start()
    started = time.perf_counter()
    for i in range(300):
        collector.collect(BODY, OUTPUT, f"r{i}")
    elapsed = time.perf_counter() - started
    assert elapsed < 0.1, f"collect() took {elapsed:.3f}s for 300 records"
    deadline = time.monotonic() + 60
    cells = collector.metrics.cells
    while cells[DC_DROPPED_UPLOAD] + cells[DC_DROPPED_FULL] < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    collector.close()
    assert cells[DC_DROPPED_FULL] >= 200  # the buffer holds 100
    assert cells[DC_DROPPED_FULL] + cells[DC_DROPPED_UPLOAD] == 300
    assert cells[DC_UPLOADED] == 0
    status = collector.status()
    assert status["dropped"]["upload_failed"] == cells[DC_DROPPED_UPLOAD] > 0
    assert "ServiceRequestError" in (status["last_error"] or "")


def test_a_bad_setting_is_one_log_line_and_scoring_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env(
        {
            "AZUREML_ENTRY_SCRIPT": str(tmp_path / "score.py"),
            "DATA_COLLECTION_ENABLED": "true",
            "DATA_COLLECTION_BLOB_URL": "https://account.blob.core.windows.net/c?sig=secret",
            "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=;IngestionEndpoint=x",
        }
    )
    obs = Observability(settings)
    with caplog.at_level(logging.INFO, logger="scoring"):
        obs.start()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2, [r.getMessage() for r in errors]
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in errors[0].getMessage()
    assert "DATA_COLLECTION_BLOB_URL" in errors[1].getMessage()
    assert "secret" not in errors[1].getMessage()  # a SAS is never logged
    assert obs.telemetry is None and obs.collector is None
    obs.collect(BODY, OUTPUT, "r")  # a no-op, not an error
    obs.request_finished(0.0, 0.001, "/score", "POST", 200, "r")
    status = obs.status()
    assert status["data_collection"]["enabled"] is False
    assert "DATA_COLLECTION_BLOB_URL" in status["data_collection"]["error"]
    assert status["telemetry"]["enabled"] is False
    obs.close()


# -- the host running as a server -------------------------------------------------------------


def test_the_host_collects_what_it_scores(
    start_host: HostFactory, model_dir: Path, azurite: Azurite
) -> None:
    endpoint = f"ep-{uuid.uuid4().hex[:8]}"
    env = {
        "DATA_COLLECTION_ENABLED": "true",
        "DATA_COLLECTION_CONNECTION_STRING": azurite.connection_string,
        "SCORING_ENDPOINT_NAME": endpoint,
        "SCORING_DEPLOYMENT_NAME": "blue",
    }
    host = start_host(model_dir=model_dir, env=env)
    rid = str(uuid.uuid4())
    r = host.client.post("/score", json=SEED_PAYLOAD, headers={"x-request-id": rid})
    assert r.status_code == 200
    prefix = f"modelDataCollector/{endpoint}/blue/"
    deadline = time.monotonic() + 20
    blobs: dict[str, list[Any]] = {}
    while len(blobs) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        blobs = _blobs(azurite, prefix, in_flight=True)
    assert len(blobs) == 2, blobs
    (inputs,) = [v for k, v in blobs.items() if "/model_inputs/" in k]
    (outputs,) = [v for k, v in blobs.items() if "/model_outputs/" in k]
    assert inputs[0]["correlationid"] == outputs[0]["correlationid"] == rid
    assert inputs[0]["data"] == [
        {str(i): v for i, v in enumerate(row)} for row in SEED_PAYLOAD["data"]
    ]
    assert outputs[0]["data"] == [{"0": v} for v in r.json()]
    layout = (
        rf"{prefix}model_(inputs|outputs)/\d{{4}}/\d\d/\d\d/\d\d/[\w.-]+-{host.proc.pid}\.jsonl"
    )
    for name in blobs:  # .../{yyyy}/{MM}/{dd}/{HH}/{instance}.jsonl, instance: host-pid
        assert re.fullmatch(layout, name), name
    deadline = time.monotonic() + 10  # the writer's counts come back at its next hand-over
    status = host.client.get("/status").json()["data_collection"]
    while status["uploaded"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = host.client.get("/status").json()["data_collection"]
    assert status["enabled"] is True
    assert status["uploaded"] == 1 and status["dropped"]["upload_failed"] == 0
    m = host.client.get("/metrics").text
    assert 'scoring_data_collection_records_total{outcome="uploaded"} 1' in m


def test_storage_down_never_fails_or_slows_scoring(
    start_host: HostFactory, model_dir: Path
) -> None:
    env = {
        "DATA_COLLECTION_ENABLED": "true",
        "DATA_COLLECTION_CONNECTION_STRING": (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={Azurite.KEY};BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
        ),
    }
    host = start_host(model_dir=model_dir, env=env)
    for _ in range(20):
        started = time.perf_counter()
        assert host.client.post("/score", json=SEED_PAYLOAD).status_code == 200
        assert time.perf_counter() - started < 1.0
    deadline = time.monotonic() + 30
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = host.client.get("/status").json()["data_collection"]
        if status["dropped"]["upload_failed"] > 0:
            break
        time.sleep(0.2)
    assert status["dropped"]["upload_failed"] > 0, status
    assert "ServiceRequestError" in status["last_error"]


def test_a_malformed_collection_url_is_one_log_line_and_the_host_serves(
    start_host: HostFactory, model_dir: Path
) -> None:
    env = {"DATA_COLLECTION_ENABLED": "true", "DATA_COLLECTION_BLOB_URL": "https//nope"}
    host = start_host(model_dir=model_dir, env=env)
    assert host.client.post("/score", json=SEED_PAYLOAD).status_code == 200
    lines = [line for line in host.log().splitlines() if "DATA_COLLECTION_BLOB_URL" in line]
    assert len(lines) == 1 and "model data collection is off" in lines[0], host.log()
    status = host.client.get("/status").json()["data_collection"]
    assert status["enabled"] is False and "DATA_COLLECTION_BLOB_URL" in status["error"]
