"""Application Insights telemetry: the real Azure Monitor exporter over real HTTP, to a fake
ingestion endpoint on loopback (``IngestionEndpoint=http://127.0.0.1:PORT/``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _observability_support import IKEY, QUIET_SDK, FakeIdentity, FakeIngestion
from _scoring_support import SCRIPTS, SEED_PAYLOAD, HostFactory

from scoring.observability.metrics import TM_DROPPED, TM_EXPORTED, Metrics
from scoring.observability.settings import TelemetrySettings
from scoring.observability.telemetry import Telemetry, thin, trace_ids

RID = "0f8fad5b-d9cb-469f-a165-70867728950e"
JSON_TYPE = {"content-type": "application/json"}


@pytest.fixture(autouse=True)
def _quiet_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in QUIET_SDK.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def ingestion() -> Iterator[FakeIngestion]:
    with FakeIngestion() as fake:
        yield fake


def _telemetry(conn: str, tmp_path: Path, **env: str) -> Telemetry:
    settings = TelemetrySettings.from_env({"APPLICATIONINSIGHTS_CONNECTION_STRING": conn, **env})
    assert settings.problem is None, settings.problem
    t = Telemetry(
        settings,
        Metrics(),
        service="diabetes",
        deployment="blue",
        model="diabetes:3",
        exporter_options={"storage_directory": str(tmp_path / "offline")},
    )
    assert t.start(), t.error
    return t


def _props(item: dict[str, Any]) -> dict[str, Any]:
    return item["data"]["baseData"]["properties"]


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (IKEY, "an instrumentation key alone"),
        (f"InstrumentationKey={IKEY}", "no IngestionEndpoint"),
        ("InstrumentationKey=not-a-uuid;IngestionEndpoint=https://x.in.ai.azure.com/", "valid"),
        (f"InstrumentationKey={IKEY};IngestionEndpoint", "part 2 is not Key=value"),
        (f"InstrumentationKey={IKEY};IngestionEndpoint=ftp://x/", "is not a URL"),
        (f"InstrumentationKey={IKEY};IngestionEndpoint=https://x:99999/", "is not a URL"),
        (f"InstrumentationKey={IKEY};IngestionEndpoint=https://x/;Authorization=AAD", "AAD"),
    ],
)
def test_a_connection_string_that_is_not_complete_turns_telemetry_off(
    value: str, fragment: str
) -> None:
    settings = TelemetrySettings.from_env({"APPLICATIONINSIGHTS_CONNECTION_STRING": value})
    assert not settings.enabled
    assert settings.problem is not None
    assert fragment in settings.problem
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings.problem
    assert IKEY not in settings.problem  # the log line does not repeat the value


def test_a_full_connection_string_is_normalised() -> None:
    raw = (
        f" InstrumentationKey={IKEY}; "
        "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;"
        "LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/; "
    )
    settings = TelemetrySettings.from_env({"APPLICATIONINSIGHTS_CONNECTION_STRING": raw})
    assert settings.problem is None
    assert settings.connection_string == (
        f"InstrumentationKey={IKEY};"
        "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;"
        "LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/"
    )
    suffix = TelemetrySettings.from_env(
        {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                f"InstrumentationKey={IKEY};EndpointSuffix=applicationinsights.azure.cn"
            )
        }
    )
    assert suffix.enabled


def test_sampler_settings_fall_back_to_the_distros_default() -> None:
    default = TelemetrySettings.from_env({})
    assert (default.sampler, default.sampler_arg) == ("microsoft.rate_limited", 5.0)
    fixed = TelemetrySettings.from_env(
        {"OTEL_TRACES_SAMPLER": "microsoft.fixed_percentage", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    assert (fixed.sampler, fixed.sampler_arg, fixed.warnings) == (
        "microsoft.fixed_percentage",
        0.25,
        (),
    )
    assert TelemetrySettings.from_env({"OTEL_TRACES_SAMPLER": "always_on"}).sampler_arg == 1.0
    bad = TelemetrySettings.from_env(
        {"OTEL_TRACES_SAMPLER": "microsoft.fixed_percentage", "OTEL_TRACES_SAMPLER_ARG": "3"}
    )
    assert bad.sampler_arg == 1.0
    assert "OTEL_TRACES_SAMPLER_ARG='3'" in bad.warnings[0]
    unknown = TelemetrySettings.from_env({"OTEL_TRACES_SAMPLER": "sometimes"})
    assert unknown.sampler == "microsoft.rate_limited"
    assert "sometimes" in unknown.warnings[0]
    flag = TelemetrySettings.from_env({"TELEMETRY_INCLUDE_PAYLOADS": "perhaps"})
    assert not flag.include_payloads
    assert "TELEMETRY_INCLUDE_PAYLOADS" in flag.warnings[0]


def test_entra_id_payload_and_role_settings() -> None:
    conn = (
        f"InstrumentationKey={IKEY};IngestionEndpoint=https://x.in.applicationinsights.azure.com/"
    )
    base = {"APPLICATIONINSIGHTS_CONNECTION_STRING": conn}
    assert not TelemetrySettings.from_env(base).entra_id
    by_id = TelemetrySettings.from_env({**base, "AZURE_CLIENT_ID": "id-1"})
    assert (by_id.entra_id, by_id.client_id) == (True, "id-1")
    auth = "Authorization=AAD;ClientId=id-2"
    by_string = TelemetrySettings.from_env(
        {**base, "AZURE_CLIENT_ID": "id-1", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": auth}
    )
    assert (by_string.entra_id, by_string.client_id) == (True, "id-2")
    system = TelemetrySettings.from_env(
        {**base, "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AAD"}
    )
    assert (system.entra_id, system.client_id) == (True, None)
    bad = TelemetrySettings.from_env(
        {**base, "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=id-2"}
    )
    assert not bad.enabled
    assert "APPLICATIONINSIGHTS_AUTHENTICATION_STRING is malformed" in (bad.problem or "")
    assert TelemetrySettings.from_env({"TELEMETRY_PAYLOADS": "true"}).include_payloads
    assert not TelemetrySettings.from_env(
        {"TELEMETRY_PAYLOADS": "true", "TELEMETRY_INCLUDE_PAYLOADS": "false"}
    ).include_payloads
    assert TelemetrySettings.from_env({}).service_name == "scoring"
    assert TelemetrySettings.from_env({"SCORING_ENDPOINT_NAME": "aks"}).service_name == "aks"
    named = {"SCORING_ENDPOINT_NAME": "aks", "OTEL_SERVICE_NAME": "aks-prod"}
    assert TelemetrySettings.from_env(named).service_name == "aks-prod"


def test_the_operation_id_is_the_request_id() -> None:
    assert f"{trace_ids(RID, None)[0]:032x}" == RID.replace("-", "")
    assert trace_ids(RID, None)[1] == 0
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_ids(RID, parent) == (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7)
    assert trace_ids(RID, "00-zz-00f067aa0ba902b7-01") == trace_ids(RID, None)  # invalid
    other = trace_ids("my-own-id", None)[0]
    assert other == trace_ids("my-own-id", None)[0] != trace_ids("my-other-id", None)[0]


# -- export ---------------------------------------------------------------------------------


def test_requests_exceptions_and_logs_reach_application_insights(
    ingestion: FakeIngestion, tmp_path: Path
) -> None:
    t = _telemetry(ingestion.connection_string(), tmp_path, OTEL_TRACES_SAMPLER="always_on")
    try:
        t0 = time.perf_counter()
        t.request(t0, 0.0123, "/score", "POST", 200, RID, "client-7", host="scoring.example")
        try:
            raise ValueError("bad row 3")
        except ValueError as exc:
            failure = exc
        rid2 = "1c1d9a8e-4b7f-4c1e-9a3b-2d4e5f6a7b8c"
        t.request(t0, 0.002, "/score", "POST", 500, rid2, error=failure)
        logging.getLogger("scoring").warning("worker %d is warm", 7)
        t.flush()
    finally:
        t.close()
    ok = ingestion.wait("Request", operation_id=RID.replace("-", ""))
    assert len(ok) == 1
    base = ok[0]["data"]["baseData"]
    assert base["name"] == "POST /score"
    assert base["responseCode"] == "200"
    assert base["success"] is True
    assert base["duration"] == "0.00:00:00.012"
    assert base["url"] == "http://scoring.example/score"
    assert _props(ok[0]) == {
        "request_id": RID,
        "client_request_id": "client-7",
        "deployment": "blue",
        "model": "diabetes:3",
    }
    assert ok[0]["tags"]["ai.cloud.role"] == "diabetes"
    assert ok[0]["iKey"] == IKEY
    failed = ingestion.wait("Request", operation_id=rid2.replace("-", ""))[0]
    assert failed["data"]["baseData"]["success"] is False
    exc_item = ingestion.wait("Exception", operation_id=rid2.replace("-", ""))[0]
    assert exc_item["tags"]["ai.operation.parentId"] == failed["data"]["baseData"]["id"]
    details = exc_item["data"]["baseData"]["exceptions"][0]
    assert details["typeName"] == "ValueError"
    assert details["message"] == "bad row 3"
    assert 'raise ValueError("bad row 3")' in details["stack"]
    messages = ingestion.wait("Message", message="worker 7 is warm")
    assert messages[0]["data"]["baseData"]["severityLevel"] == 2  # Warning
    assert not [m for m in ingestion.of("Message") if "azure" in _props(m).get("logger_name", "")]


def test_no_payload_unless_asked(ingestion: FakeIngestion, tmp_path: Path) -> None:
    body, out = b'{"data": [[1, 2, 3]]}', b"[42.5]"
    for include in ("false", "true"):
        t = _telemetry(
            ingestion.connection_string(),
            tmp_path,
            OTEL_TRACES_SAMPLER="always_on",
            TELEMETRY_INCLUDE_PAYLOADS=include,
        )
        rid = f"{include}-request"
        t.request(time.perf_counter(), 0.001, "/score", "POST", 200, rid, payload=(body, out))
        t.close()
        item = ingestion.wait("Request", request_id=rid)[0]
        text = str(item)
        if include == "true":
            assert _props(item)["request_body"] == body.decode()
            assert _props(item)["response_body"] == out.decode()
        else:
            assert "42.5" not in text
            assert "[[1, 2, 3]]" not in text


def test_init_failure_is_sent_before_the_worker_exits(
    ingestion: FakeIngestion, tmp_path: Path
) -> None:
    t = _telemetry(ingestion.connection_string(), tmp_path)
    try:
        raise FileNotFoundError("no model.joblib under /models")
    except FileNotFoundError as exc:
        t.exception(exc, "init() failed: FileNotFoundError: no model.joblib under /models")
    # no close(), no flush(): exception() sends at once (the worker is about to os._exit)
    item = ingestion.wait("Exception", count=1, timeout=10)
    t.close()
    assert item, "the init() failure was not sent"
    details = item[0]["data"]["baseData"]["exceptions"][0]
    assert details["typeName"] == "FileNotFoundError"
    assert "no model.joblib" in details["message"]
    assert "Traceback" in details["stack"]


def test_rate_limited_sampling_keeps_counts_and_every_failure(tmp_path: Path) -> None:
    settings = TelemetrySettings.from_env({"OTEL_TRACES_SAMPLER_ARG": "5"})
    t = Telemetry(settings, Metrics())

    def item(status: int, rid: str) -> tuple[Any, ...]:
        return (0.0, 0.001, "/score", "POST", status, rid, None, None, None, None, None)

    items = [item(200, f"id-{i}") for i in range(1000)]
    failures = [item(503, f"f-{i}") for i in range(3)]
    chosen = t._sample(items + failures, elapsed=1.0)
    kept = [(i, r) for i, r in chosen if i[4] == 200]
    assert 1 <= len(kept) <= 5
    # each kept item stands for 100/rate requests: together, the thousand
    assert sum(100.0 / r for _, r in kept) == pytest.approx(1000, rel=0.25)
    assert sorted(i[5] for i, r in chosen if i[4] == 503 and r == 100.0) == ["f-0", "f-1", "f-2"]
    few = t._sample(items[:3], elapsed=1.0)
    assert [r for _, r in few] == [100.0] * 3


def test_past_its_cpu_budget_the_export_thread_samples_further_and_counts_stay_right() -> None:
    def item(status: int, rid: str) -> tuple[Any, ...]:
        return (0.0, 0.001, "/score", "POST", status, rid, None, None, None, None, None)

    chosen = [(item(200, f"ok-{i}"), 100.0) for i in range(1000)]
    chosen += [(item(500, f"f-{i}"), 100.0) for i in range(3)]
    kept = thin(chosen, 10)
    assert len(kept) <= 10
    assert sorted(i[5] for i, r in kept if i[4] == 500) == ["f-0", "f-1", "f-2"]
    assert all(r == 100.0 for i, r in kept if i[4] == 500)
    ok = [(i, r) for i, r in kept if i[4] == 200]
    assert sum(100.0 / r for _, r in ok) == pytest.approx(1000, rel=0.2)
    assert thin(chosen[:5], 10) == chosen[:5]


def test_ingestion_down_never_blocks_and_the_buffer_is_bounded(tmp_path: Path) -> None:
    with FakeIngestion(status=503) as down:
        conn = down.connection_string()
    t = _telemetry(conn, tmp_path, OTEL_TRACES_SAMPLER="always_on")  # nothing listens now
    t.max_pending = 100
    try:
        started = time.perf_counter()
        for i in range(150):
            t.request(time.perf_counter(), 0.001, "/score", "POST", 200, f"r{i}")
        assert time.perf_counter() - started < 0.05
        assert t.metrics.cells[TM_DROPPED] >= 50
    finally:
        t.close(timeout=1)


def test_a_refusing_endpoint_counts_failed_items(tmp_path: Path) -> None:
    with FakeIngestion(status=400) as refusing:
        t = _telemetry(refusing.connection_string(), tmp_path, OTEL_TRACES_SAMPLER="always_on")
        t.request(time.perf_counter(), 0.001, "/score", "POST", 200, RID)
        t.close()
        assert refusing.headers, "the exporter did not call the endpoint"
    assert t.metrics.cells[TM_EXPORTED] == 0


@pytest.mark.parametrize("how", ["AZURE_CLIENT_ID", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])
def test_entra_id_ingestion_with_the_managed_identity(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exporter signs in as the user-assigned identity (App Service's token endpoint,
    faked) and sends its token to ingestion over TLS."""
    with FakeIngestion(tls_dir=tmp_path) as ingestion, FakeIdentity() as identity:
        for name, value in identity.env().items():
            monkeypatch.setenv(name, value)
        assert ingestion.ca_file is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ingestion.ca_file))
        client_id = "7d2c1b0a-3e4f-4a5b-8c6d-9e0f1a2b3c4d"
        how_env = (
            {"AZURE_CLIENT_ID": client_id}
            if how == "AZURE_CLIENT_ID"
            else {how: f"Authorization=AAD;ClientId={client_id}"}
        )
        t = _telemetry(
            ingestion.connection_string(), tmp_path, OTEL_TRACES_SAMPLER="always_on", **how_env
        )
        t.request(time.perf_counter(), 0.001, "/score", "POST", 200, RID)
        t.close()
        assert ingestion.wait("Request", request_id=RID), "nothing reached ingestion"
    assert identity.asked, "the managed identity endpoint was not asked for a token"
    assert {a.get("client_id") for a in identity.asked} == {client_id}
    assert all("monitor.azure.com" in a.get("resource", "") for a in identity.asked)
    auth = {h.get("Authorization") for h in ingestion.headers}
    assert auth == {f"Bearer {FakeIdentity.TOKEN}"}


# -- the host running as a server -------------------------------------------------------------


def _host_env(ingestion: FakeIngestion, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **QUIET_SDK,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string(),
        "OTEL_TRACES_SAMPLER": "always_on",
        "TMPDIR": str(tmp_path),  # the exporter's offline storage
        "SCORING_ENDPOINT_NAME": "diabetes",
        "SCORING_DEPLOYMENT_NAME": "green",
        **extra,
    }


def test_the_host_sends_requests_exceptions_and_logs(
    start_host: HostFactory, model_dir: Path, ingestion: FakeIngestion, tmp_path: Path
) -> None:
    host = start_host(model_dir=model_dir, env=_host_env(ingestion, tmp_path))
    headers = {"x-request-id": RID, "x-ms-client-request-id": "client-abc"}
    r = host.client.post("/score", json=SEED_PAYLOAD, headers=headers)
    assert r.status_code == 200
    bad = host.client.post("/score", content=b'{"data": [[1, 2]]}', headers=JSON_TYPE)
    assert bad.status_code == 400
    item = ingestion.wait("Request", operation_id=RID.replace("-", ""))
    assert item, f"no request telemetry; got {[i['name'] for i in ingestion.items]}"
    base = item[0]["data"]["baseData"]
    assert (base["name"], base["responseCode"], base["success"]) == ("POST /score", "200", True)
    assert base["url"].endswith("/score")
    props = _props(item[0])
    assert props["request_id"] == RID
    assert props["client_request_id"] == "client-abc"
    assert props["deployment"] == "green"
    assert item[0]["tags"]["ai.cloud.role"] == "diabetes"
    assert "5021" not in str(item[0]) and "[1, 2, 3" not in str(item[0])  # no payloads
    refused = ingestion.wait("Request", responseCode="400")
    assert refused and refused[0]["tags"]["ai.operation.id"] == _operation(bad)
    ready = ingestion.wait("Message", timeout=10)
    assert any("init() completed" in m["data"]["baseData"]["message"] for m in ready), ready
    assert not any("scoring.access" in str(m) for m in ingestion.of("Message"))


def _operation(response: Any) -> str:
    return response.headers["x-request-id"].replace("-", "")


def test_the_exception_run_raised_is_correlated_with_its_request(
    start_host: HostFactory, ingestion: FakeIngestion, tmp_path: Path
) -> None:
    host = start_host(SCRIPTS / "raising.py", env=_host_env(ingestion, tmp_path))
    r = host.client.post("/score", content=b"anything")
    assert r.status_code == 500
    operation = _operation(r)
    request = ingestion.wait("Request", operation_id=operation)
    exception = ingestion.wait("Exception", operation_id=operation)
    assert request and exception, [i["name"] for i in ingestion.items]
    assert request[0]["data"]["baseData"]["success"] is False
    assert exception[0]["tags"]["ai.operation.parentId"] == request[0]["data"]["baseData"]["id"]
    details = exception[0]["data"]["baseData"]["exceptions"][0]
    assert details["typeName"] == "ValueError"
    assert "secret-detail-42" in details["message"]  # for the operator, never the client
    assert "secret-detail-42" not in r.text
    assert "raising.py" in details["stack"]


def test_an_init_failure_reaches_application_insights_before_the_worker_exits(
    start_host: HostFactory, ingestion: FakeIngestion, tmp_path: Path
) -> None:
    host = start_host(SCRIPTS / "broken_init.py", env=_host_env(ingestion, tmp_path), wait=False)
    host.proc.wait(60)
    assert host.proc.returncode != 0
    found = ingestion.wait("Exception", timeout=5)
    assert found, f"nothing sent before exit:\n{host.log()}"
    details = found[0]["data"]["baseData"]["exceptions"][0]
    assert details["typeName"] == "RuntimeError"
    assert "model file is corrupt" in details["message"]


def test_a_bad_connection_string_is_one_log_line_and_the_host_serves(
    start_host: HostFactory, model_dir: Path
) -> None:
    host = start_host(
        model_dir=model_dir, env={"APPLICATIONINSIGHTS_CONNECTION_STRING": IKEY, **QUIET_SDK}
    )
    assert host.client.post("/score", json=SEED_PAYLOAD).status_code == 200
    lines = [
        line for line in host.log().splitlines() if "APPLICATIONINSIGHTS_CONNECTION_STRING" in line
    ]
    assert len(lines) == 1, host.log()
    assert "an instrumentation key alone" in lines[0]
    status = host.client.get("/status").json()
    assert status["telemetry"]["enabled"] is False
    assert "instrumentation key alone" in status["telemetry"]["error"]
