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
from _scoring_support import REPO, SEED_PAYLOAD, Azurite

FUNCTION_APP = REPO / "scoring" / "functions" / "function_app.py"


@pytest.fixture(scope="module")
def function_app(model_dir: Path, azurite: Azurite) -> Iterator[ModuleType]:
    mp = pytest.MonkeyPatch()
    mp.setenv("AZUREML_ENTRY_SCRIPT", str(REPO / "scoring" / "sample_model" / "score.py"))
    mp.setenv("AZUREML_MODEL_DIR", str(model_dir))
    mp.setenv("TRIGGER_STORAGE", azurite.connection_string)
    mp.setenv("SERVICEBUS_QUEUE_NAME", "scoring-requests")
    for name in ("REDIS_HOST", "SCORING_AUTH_KEYS"):
        mp.delenv(name, raising=False)
    service = azurite.service()
    for container in ("input", "output"):
        if not service.get_container_client(container).exists():
            service.create_container(container)
    spec = importlib.util.spec_from_file_location("function_app_under_test", FUNCTION_APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
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


def _run_blob(function_app: ModuleType, azurite: Azurite, name: str, data: bytes) -> None:
    """Upload to Azurite, read it back as the Functions host would, and fire the trigger."""
    service = azurite.service()
    blob = service.get_blob_client("input", name)
    blob.upload_blob(data, overwrite=True)
    downloaded = blob.download_blob().readall()
    stream = func.blob.InputStream(
        data=downloaded, name=f"input/{name}", uri=blob.url, length=len(downloaded)
    )
    asyncio.run(_user(function_app, "score_blob")(stream))


def _read(azurite: Azurite, container: str, name: str) -> Any:
    return json.loads(azurite.service().get_blob_client(container, name).download_blob().readall())


def _exists(azurite: Azurite, container: str, name: str) -> bool:
    return bool(azurite.service().get_blob_client(container, name).exists())


def test_blob_trigger_writes_the_prediction(
    function_app: ModuleType, azurite: Azurite, model_dir: Path
) -> None:
    stem = f"batch-{uuid.uuid4().hex[:8]}"
    _run_blob(function_app, azurite, f"{stem}.json", json.dumps(SEED_PAYLOAD).encode())
    assert _read(azurite, "output", f"{stem}_out.json") == pytest.approx(_expected(model_dir))
    assert not _exists(azurite, "output", f"{stem}_error.json")


def test_blob_in_a_folder_keeps_its_folder(function_app: ModuleType, azurite: Azurite) -> None:
    stem = f"daily/{uuid.uuid4().hex[:8]}"
    _run_blob(function_app, azurite, f"{stem}.json", json.dumps(SEED_PAYLOAD).encode())
    assert _exists(azurite, "output", f"{stem}_out.json")


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
    _run_blob(function_app, azurite, f"{stem}.json", data)
    assert not _exists(azurite, "output", f"{stem}_out.json")
    record = _read(azurite, "output", f"{stem}_error.json")
    assert record["source"] == f"input/{stem}.json"
    assert record["status"] == 400
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


def test_service_bus_trigger_writes_result_and_error_records(
    function_app: ModuleType, azurite: Azurite, model_dir: Path
) -> None:
    ok_id = f"m-{uuid.uuid4().hex[:8]}"
    asyncio.run(
        _user(function_app, "score_message")(_message(json.dumps(SEED_PAYLOAD).encode(), ok_id))
    )
    assert _read(azurite, "output", f"sb/{ok_id}_out.json") == pytest.approx(_expected(model_dir))

    bad_id = f"m-{uuid.uuid4().hex[:8]}"
    asyncio.run(_user(function_app, "score_message")(_message(b"not json", bad_id)))
    record = _read(azurite, "output", f"sb/{bad_id}_error.json")
    assert record["status"] == 400 and record["source"] == f"servicebus:{bad_id}"

    odd_id = "../../etc/passwd"  # never used as a path
    asyncio.run(
        _user(function_app, "score_message")(_message(json.dumps(SEED_PAYLOAD).encode(), odd_id))
    )
    names = [
        b.name
        for b in azurite.service()
        .get_container_client("output")
        .list_blobs(name_starts_with="sb/msg-")
    ]
    assert names and all(".." not in n for n in names)


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
