"""The Functions app with real ``azure.functions`` objects; Blob trigger end to end on Azurite."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest
from _scoring_support import REPO, SCRIPTS, SEED_PAYLOAD, Azurite

FUNCTION_APP = REPO / "scoring" / "functions" / "function_app.py"


def _load_app(mp: pytest.MonkeyPatch, azurite: Azurite, entry: Path, **env: str) -> ModuleType:
    mp.setenv("AZUREML_ENTRY_SCRIPT", str(entry))
    mp.setenv("TRIGGER_STORAGE", azurite.connection_string)
    mp.setenv("SERVICEBUS_QUEUE_NAME", "scoring-requests")
    for name in ("REDIS_HOST", "SCORING_AUTH_KEYS", "SCORING_TIMEOUT_MS"):
        mp.delenv(name, raising=False)
    for name, value in env.items():
        mp.setenv(name, value)
    service = azurite.service()
    for container in ("input", "output"):
        if not service.get_container_client(container).exists():
            service.create_container(container)
    spec = importlib.util.spec_from_file_location(f"function_app_{uuid.uuid4().hex}", FUNCTION_APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def function_app(model_dir: Path, azurite: Azurite) -> Iterator[ModuleType]:
    mp = pytest.MonkeyPatch()
    sample = REPO / "scoring" / "sample_model" / "score.py"
    module = _load_app(mp, azurite, sample, AZUREML_MODEL_DIR=str(model_dir))
    yield module
    sys.modules.pop(module.__name__, None)
    mp.undo()


def _functions(module: ModuleType) -> dict[str, Any]:
    # FunctionApp.get_functions() indexes (and validates) once, like the Functions host does.
    cached = getattr(module, "_indexed_for_tests", None)
    if cached is None:
        cached = {f.get_function_name(): f for f in module.app.get_functions()}
        module._indexed_for_tests = cached  # type: ignore[attr-defined]
    return cached


def _user(module: ModuleType, name: str) -> Any:
    return _functions(module)[name].get_user_function()


def _expected(model_dir: Path) -> list[float]:
    import joblib
    import numpy as np

    model = joblib.load(model_dir / "diabetes-ridge" / "1" / "model.joblib")
    return model.predict(np.array(SEED_PAYLOAD["data"], dtype=float)).tolist()


def test_bindings_match_the_infrastructure_contract(function_app: ModuleType) -> None:
    fns = _functions(function_app)
    assert set(fns) == {"score", "score_blob", "score_message"}
    http = fns["score"].get_bindings_dict()["bindings"]
    trigger = next(b for b in http if b["type"] == "httpTrigger")
    assert trigger["route"] == "score"
    assert str(trigger["authLevel"].value) == "function"
    assert {m.value for m in trigger["methods"]} == {"GET", "POST"}
    blob = fns["score_blob"].get_bindings_dict()["bindings"][0]
    assert blob["type"] == "blobTrigger"
    assert blob["path"] == "input/{blobname}.json"
    assert blob["connection"] == "TRIGGER_STORAGE"
    sb = fns["score_message"].get_bindings_dict()["bindings"][0]
    assert sb["type"] == "serviceBusTrigger"
    assert sb["queueName"] == "%SERVICEBUS_QUEUE_NAME%"
    assert sb["connection"] == "SERVICEBUS"
    host = json.loads((REPO / "scoring" / "functions" / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensions"]["http"]["routePrefix"] == "api"


def test_http_trigger_scores_the_seed_payload(function_app: ModuleType, model_dir: Path) -> None:
    req = func.HttpRequest(
        "POST",
        "https://app.azurewebsites.net/api/score",
        headers={"Content-Type": "application/json", "x-request-id": "fn-1"},
        body=json.dumps(SEED_PAYLOAD).encode(),
    )
    resp = asyncio.run(_user(function_app, "score")(req))
    assert resp.status_code == 200
    assert json.loads(resp.get_body()) == pytest.approx(_expected(model_dir))
    assert resp.headers["x-request-id"] == "fn-1"
    assert resp.headers["x-ms-run-function-failed"] == "False"
    assert resp.mimetype == "application/json"


def test_http_trigger_get_and_bad_input(function_app: ModuleType, model_dir: Path) -> None:
    get = func.HttpRequest(
        "GET", "https://app/api/score", params={"data": json.dumps(SEED_PAYLOAD["data"])}, body=b""
    )
    resp = asyncio.run(_user(function_app, "score")(get))
    assert resp.status_code == 200
    assert json.loads(resp.get_body()) == pytest.approx(_expected(model_dir))
    bad = func.HttpRequest(
        "POST",
        "https://app/api/score",
        headers={"Content-Type": "application/json"},
        body=b'{"data": [[1,',
    )
    resp = asyncio.run(_user(function_app, "score")(bad))
    assert resp.status_code == 400
    assert "JSON" in json.loads(resp.get_body())["message"]


def _run_blob(function_app: ModuleType, azurite: Azurite, name: str, data: bytes) -> dict[str, Any]:
    """Upload to Azurite, read it back as the Functions host would (with its properties), and
    fire the trigger. Returns the blob's properties as the host passes them."""
    service = azurite.service()
    blob = service.get_blob_client("input", name)
    blob.upload_blob(data, overwrite=True)
    download = blob.download_blob()
    downloaded = download.readall()
    props = {"ETag": download.properties.etag, "Length": len(downloaded)}
    stream = func.blob.InputStream(
        data=downloaded,
        name=f"input/{name}",
        uri=blob.url,
        length=len(downloaded),
        blob_properties=props,
    )
    asyncio.run(_user(function_app, "score_blob")(stream))
    return {**props, "url": blob.url}


def _outputs(azurite: Azurite, prefix: str) -> list[str]:
    container = azurite.service().get_container_client("output")
    return sorted(b.name for b in container.list_blobs(name_starts_with=prefix))


def _one(azurite: Azurite, prefix: str, suffix: str) -> str:
    names = [n for n in _outputs(azurite, prefix) if n.endswith(suffix)]
    assert len(names) == 1, names
    return names[0]


def _read(azurite: Azurite, container: str, name: str) -> Any:
    return json.loads(azurite.service().get_blob_client(container, name).download_blob().readall())


def test_blob_trigger_writes_the_prediction(
    function_app: ModuleType, azurite: Azurite, model_dir: Path
) -> None:
    stem = f"batch-{uuid.uuid4().hex[:8]}"
    _run_blob(function_app, azurite, f"{stem}.json", json.dumps(SEED_PAYLOAD).encode())
    out = _one(azurite, f"{stem}.", "_out.json")
    assert _read(azurite, "output", out) == pytest.approx(_expected(model_dir))
    assert _outputs(azurite, f"{stem}.") == [out]


def test_blob_in_a_folder_keeps_its_folder(function_app: ModuleType, azurite: Azurite) -> None:
    stem = f"daily/{uuid.uuid4().hex[:8]}"
    _run_blob(function_app, azurite, f"{stem}.json", json.dumps(SEED_PAYLOAD).encode())
    assert _one(azurite, f"{stem}.", "_out.json").startswith("daily/")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"data": [[1, 2', "could not be decoded as JSON"),
        (b'{"data": [[1, 2, 3]]}', "does not match the input schema"),
        (b"\xff\xfe\x00garbage", ""),
        (b"", "empty"),
    ],
    ids=["malformed", "wrong-shape", "binary", "empty"],
)
def test_unscorable_blob_leaves_an_error_record(
    function_app: ModuleType, azurite: Azurite, data: bytes, fragment: str
) -> None:
    stem = f"bad-{uuid.uuid4().hex[:8]}"
    props = _run_blob(function_app, azurite, f"{stem}.json", data)  # completes: no raise
    names = _outputs(azurite, f"{stem}.")
    assert len(names) == 1 and names[0].endswith("_error.json"), names
    record = _read(azurite, "output", names[0])
    assert record["source"] == f"input/{stem}.json"
    assert record["blob_url"] == props["url"]
    assert record["etag"] == props["ETag"].strip('"')
    assert record["status"] == 400 and record["will_retry"] is False
    assert fragment in record["error"]
    assert record["time"]


def _message(body: bytes, message_id: str) -> func.ServiceBusMessage:
    # the concrete type the Python worker builds for a Service Bus trigger
    from azure.functions.servicebus import ServiceBusMessage

    return ServiceBusMessage(
        body=body,
        message_id=message_id,
        application_properties={},
        user_properties={},
        content_type="application/json",
    )


def _score_message(function_app: ModuleType, body: bytes, message_id: str | None) -> None:
    asyncio.run(_user(function_app, "score_message")(_message(body, message_id or "")))


def test_service_bus_trigger_writes_result_and_error_records(
    function_app: ModuleType, azurite: Azurite, model_dir: Path
) -> None:
    ok_id = f"m-{uuid.uuid4().hex[:8]}"
    _score_message(function_app, json.dumps(SEED_PAYLOAD).encode(), ok_id)
    out = _one(azurite, f"sb/{ok_id}.", "_out.json")
    assert _read(azurite, "output", out) == pytest.approx(_expected(model_dir))

    bad_id = f"m-{uuid.uuid4().hex[:8]}"
    _score_message(function_app, b"not json", bad_id)  # a 400: completes, no raise
    record = _read(azurite, "output", _one(azurite, f"sb/{bad_id}.", "_error.json"))
    assert record["status"] == 400 and record["source"] == f"servicebus:{bad_id}"
    assert record["message_id"] == bad_id and record["body"] == "not json"

    odd_id = "../../etc/passwd"  # never used as a path
    _score_message(function_app, json.dumps(SEED_PAYLOAD).encode(), odd_id)
    names = _outputs(azurite, "sb/id-")
    assert names and all(".." not in n for n in names)


def test_service_bus_result_names_never_collide(
    function_app: ModuleType, azurite: Azurite, model_dir: Path
) -> None:
    shared = f"m-{uuid.uuid4().hex[:8]}"
    one = {"data": [SEED_PAYLOAD["data"][0]]}
    two = {"data": [SEED_PAYLOAD["data"][1]]}
    _score_message(function_app, json.dumps(one).encode(), shared)
    _score_message(function_app, json.dumps(two).encode(), shared)  # same id, other body
    outs = _outputs(azurite, f"sb/{shared}.")
    assert len(outs) == 2, outs
    expected = _expected(model_dir)
    got = sorted(_read(azurite, "output", n)[0] for n in outs)
    assert got == pytest.approx(sorted(expected))

    before = set(_outputs(azurite, "sb/body-"))
    marker = float(int(uuid.uuid4().hex[:6], 16))
    for row in (one, two):  # no message id at all: named by the body's hash
        payload = {"data": [[marker, *row["data"][0][1:]]]}
        _score_message(function_app, json.dumps(payload).encode(), None)
    assert len(set(_outputs(azurite, "sb/body-")) - before) == 2


def test_storage_write_failure_raises_so_the_platform_retries(
    function_app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _scoring_support import free_port

    dead = free_port()
    monkeypatch.setenv("OUTPUT_RETRY_TOTAL", "0")
    monkeypatch.setenv(
        "TRIGGER_STORAGE",
        (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={Azurite.KEY};BlobEndpoint=http://127.0.0.1:{dead}/devstoreaccount1;"
        ),
    )
    stream = func.blob.InputStream(data=json.dumps(SEED_PAYLOAD).encode(), name="input/x.json")
    from azure.core.exceptions import AzureError

    with pytest.raises(AzureError):
        asyncio.run(_user(function_app, "score_blob")(stream))


def test_identity_based_connection_settings(
    monkeypatch: pytest.MonkeyPatch, function_app: ModuleType
) -> None:
    monkeypatch.delenv("TRIGGER_STORAGE", raising=False)
    monkeypatch.setenv("TRIGGER_STORAGE__blobServiceUri", "https://acct.blob.core.windows.net")
    monkeypatch.setenv("TRIGGER_STORAGE__credential", "managedidentity")
    monkeypatch.setenv("TRIGGER_STORAGE__clientId", "00000000-0000-0000-0000-000000000001")
    client = function_app._blob_service()
    assert client.url.startswith("https://acct.blob.core.windows.net")
    assert type(client.credential).__name__ == "ManagedIdentityCredential"
    monkeypatch.delenv("TRIGGER_STORAGE__blobServiceUri")
    monkeypatch.delenv("TRIGGER_STORAGE__clientId")
    monkeypatch.delenv("TRIGGER_STORAGE__credential")
    with pytest.raises(RuntimeError, match="TRIGGER_STORAGE__blobServiceUri"):
        function_app._blob_service()


# -- failures that may pass: raise (the platform retries), and a later success replaces -------


@pytest.fixture
def flaky_app(
    azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, Path]]:
    fail_file = tmp_path / "fail"
    module = _load_app(monkeypatch, azurite, SCRIPTS / "h_flaky.py", H_FAIL_FILE=str(fail_file))
    yield module, fail_file
    sys.modules.pop(module.__name__, None)


@pytest.mark.parametrize("failing", ["init", "run"])
def test_a_transient_failure_raises_then_the_retry_replaces_its_error_record(
    flaky_app: tuple[ModuleType, Path], azurite: Azurite, failing: str
) -> None:
    module, fail_file = flaky_app
    fail_file.write_text(failing)
    msg_id = f"m-{uuid.uuid4().hex[:8]}"
    body = b'{"a": 1}'
    with pytest.raises(module.TransientScoringError, match=msg_id):
        _score_message(module, body, msg_id)  # abandoned: Service Bus redelivers it
    error = _one(azurite, f"sb/{msg_id}.", "_error.json")
    record = _read(azurite, "output", error)
    assert record["will_retry"] is True and record["status"] >= 500
    assert record["message_id"] == msg_id and record["body"] == '{"a": 1}'

    fail_file.unlink()
    _score_message(module, body, msg_id)  # the redelivery succeeds
    assert _outputs(azurite, f"sb/{msg_id}.") == [error.replace("_error.json", "_out.json")]
    assert _read(azurite, "output", error.replace("_error", "_out")) == {"echo": '{"a": 1}'}


def test_a_blob_whose_run_raises_is_retried_and_its_result_replaces_the_error(
    flaky_app: tuple[ModuleType, Path], azurite: Azurite
) -> None:
    module, fail_file = flaky_app
    fail_file.write_text("run")
    stem = f"retry-{uuid.uuid4().hex[:8]}"
    with pytest.raises(module.TransientScoringError, match=stem):
        _run_blob(module, azurite, f"{stem}.json", b'{"b": 2}')
    [error] = _outputs(azurite, f"{stem}.")
    assert error.endswith("_error.json")
    record = _read(azurite, "output", error)
    assert record["blob_url"].endswith(f"/input/{stem}.json") and record["etag"]
    fail_file.unlink()
    # the platform's retry: the same blob, same ETag, so the same result name
    blob = azurite.service().get_blob_client("input", f"{stem}.json")
    download = blob.download_blob()
    stream = func.blob.InputStream(
        data=download.readall(),
        name=f"input/{stem}.json",
        uri=blob.url,
        blob_properties={"ETag": download.properties.etag},
    )
    asyncio.run(_user(module, "score_blob")(stream))
    assert _outputs(azurite, f"{stem}.") == [error.replace("_error.json", "_out.json")]
    # written again: a new version, a new result beside the first
    _run_blob(module, azurite, f"{stem}.json", b'{"b": 3}')
    assert len([n for n in _outputs(azurite, f"{stem}.") if n.endswith("_out.json")]) == 2


def test_a_timed_out_run_raises_so_the_message_is_retried(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _load_app(monkeypatch, azurite, SCRIPTS / "h_sleep.py", SCORING_TIMEOUT_MS="200")
    try:
        msg_id = f"m-{uuid.uuid4().hex[:8]}"
        with pytest.raises(module.TransientScoringError, match="timeout"):
            _score_message(module, b'{"sleep": 2}', msg_id)
        record = _read(azurite, "output", _one(azurite, f"sb/{msg_id}.", "_error.json"))
        assert record["status"] == 500 and record["run_function_failed"] is True
    finally:
        sys.modules.pop(module.__name__, None)
