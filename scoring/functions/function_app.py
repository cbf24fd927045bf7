"""Azure Functions app (Python v2 programming model): the same scoring core behind three triggers.

* HTTP ``GET|POST /api/score`` (auth level FUNCTION: ``?code=`` or ``x-functions-key``).
* Blob ``input/{blobname}.json`` in the storage account of connection ``TRIGGER_STORAGE``
  → ``output/{blobname}_out.json`` (or ``output/{blobname}_error.json`` with the reason).
* Service Bus queue ``%SERVICEBUS_QUEUE_NAME%`` on connection ``SERVICEBUS``
  → ``output/sb/{message_id}_out.json`` (or ``..._error.json``) in the same storage account.

A blob or message that cannot be scored leaves an error record where its result would have been
and completes normally (retrying would fail the same way). A failure to *write* the result
raises, so the platform retries the blob or redelivers the message.

Connections are identity-based in Azure (``TRIGGER_STORAGE__blobServiceUri``,
``TRIGGER_STORAGE__credential=managedidentity``, ``TRIGGER_STORAGE__clientId``;
``SERVICEBUS__fullyQualifiedNamespace``); a plain connection string in ``TRIGGER_STORAGE`` works
too (Azurite, local runs).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import azure.functions as func

from scoring.app import _request_ids
from scoring.config import Settings
from scoring.service import ScoreRequest, ScoreResponse, ScoringService

log = logging.getLogger("scoring.functions")

OUTPUT_CONTAINER_SETTING = "OUTPUT_CONTAINER"
STORAGE_CONNECTION = "TRIGGER_STORAGE"
_DEFAULT_ENTRY = Path(__file__).resolve().parent / "scoring" / "sample_model" / "score.py"

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

_service: ScoringService | None = None
_service_lock = threading.Lock()


def _get_service() -> ScoringService:
    """One scoring core per worker process: entry script imported and init() run once."""
    global _service
    with _service_lock:
        if _service is None:
            env = dict(os.environ)
            env.setdefault("AZUREML_ENTRY_SCRIPT", str(_DEFAULT_ENTRY))
            service = ScoringService(Settings.from_env(env))
            service.init_sync()
            _service = service
        return _service


async def score_body(
    body: bytes,
    *,
    method: str = "POST",
    query_string: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
) -> ScoreResponse:
    service = _service or await asyncio.to_thread(_get_service)
    limit = service.settings.max_body_bytes
    if len(body) > limit:
        message = f"Input exceeds {limit} bytes (SCORING_MAX_BODY_BYTES)."
        return ScoreResponse(413, json.dumps({"message": message}).encode())
    hdrs = headers if headers is not None else [("content-type", "application/json")]
    return await service.score(
        ScoreRequest(method=method, body=body, query_string=query_string, headers=hdrs)
    )


# -- storage ----------------------------------------------------------------------------------


def _blob_service(connection: str = STORAGE_CONNECTION) -> Any:
    """A BlobServiceClient for a Functions connection setting, the way the host resolves it."""
    from azure.storage.blob import BlobServiceClient

    # Few, quick retries: if storage stays down the invocation fails and the platform retries it.
    options = {
        "retry_total": int(os.environ.get("OUTPUT_RETRY_TOTAL", "3")),
        "connection_timeout": 10,
    }
    conn_str = os.environ.get(connection)
    if conn_str:
        return BlobServiceClient.from_connection_string(conn_str, **options)
    uri = os.environ.get(f"{connection}__blobServiceUri") or os.environ.get(
        f"{connection}__serviceUri"
    )
    account = os.environ.get(f"{connection}__accountName")
    if not uri and account:
        uri = f"https://{account}.blob.core.windows.net"
    if not uri:
        raise RuntimeError(
            f"storage connection {connection!r} is not configured: set {connection} (connection "
            f"string) or {connection}__blobServiceUri (identity-based)"
        )
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = os.environ.get(f"{connection}__clientId")
    credential_kind = (os.environ.get(f"{connection}__credential") or "").lower()
    if credential_kind == "managedidentity" or client_id:
        credential: Any = ManagedIdentityCredential(client_id=client_id)
    else:
        credential = DefaultAzureCredential()
    return BlobServiceClient(uri, credential=credential, **options)


def _write_blob(container: str, name: str, data: bytes) -> None:
    from azure.storage.blob import ContentSettings

    service = _blob_service()
    service.get_blob_client(container, name).upload_blob(
        data, overwrite=True, content_settings=ContentSettings(content_type="application/json")
    )


def _output_container() -> str:
    return os.environ.get(OUTPUT_CONTAINER_SETTING, "output")


def _error_record(source: str, resp: ScoreResponse) -> bytes:
    try:
        reason = json.loads(resp.body).get("message")
    except (ValueError, AttributeError):
        reason = resp.body.decode("utf-8", "replace")[:2000]
    return json.dumps(
        {
            "source": source,
            "status": resp.status,
            "error": reason,
            "run_function_failed": resp.run_failed,
            "time": dt.datetime.now(dt.UTC).isoformat(),
        },
        indent=2,
    ).encode()


async def _score_to_storage(source: str, body: bytes, result_stem: str) -> str:
    """Score ``body`` and write ``<stem>_out.json`` or ``<stem>_error.json``; return the name."""
    try:
        resp = await score_body(body)
    except Exception as exc:  # the core itself failed (e.g. init()): still leave a record
        log.exception("scoring %s failed", source)
        resp = ScoreResponse(
            500, json.dumps({"message": f"{type(exc).__name__}: {exc}"}).encode(), run_failed=True
        )
    if resp.status == 200:
        name, data = f"{result_stem}_out.json", resp.body
    else:
        name, data = f"{result_stem}_error.json", _error_record(source, resp)
        log.warning("%s could not be scored (%d); error record %s", source, resp.status, name)
    await asyncio.to_thread(_write_blob, _output_container(), name, data)
    return name


# -- triggers ---------------------------------------------------------------------------------


@app.route(
    route="score",
    methods=[func.HttpMethod.GET, func.HttpMethod.POST],
    auth_level=func.AuthLevel.FUNCTION,
)
async def score(req: func.HttpRequest) -> func.HttpResponse:
    hmap = {k.lower(): v for k, v in req.headers.items()}
    raw_query = urlsplit(req.url).query or urlencode(dict(req.params))
    resp = await score_body(
        req.get_body() or b"",
        method=req.method,
        query_string=raw_query.encode(),
        headers=list(hmap.items()),
    )
    headers = {k: v for k, v in resp.headers}
    ids = _request_ids(hmap)
    if not isinstance(ids, ScoreResponse):
        headers.update({k.decode(): v.decode() for k, v in ids})
    headers["x-ms-run-function-failed"] = str(resp.run_failed)
    if resp.cache:
        headers["x-scoring-cache"] = resp.cache
    return func.HttpResponse(
        body=resp.body,
        status_code=resp.status,
        headers=headers,
        mimetype=resp.content_type.split(";")[0],
    )


@app.blob_trigger(arg_name="blob", path="input/{blobname}.json", connection=STORAGE_CONNECTION)
async def score_blob(blob: func.InputStream) -> None:
    name = blob.name or ""
    stem = name.split("/", 1)[1] if "/" in name else name
    stem = stem[: -len(".json")] if stem.endswith(".json") else stem
    written = await _score_to_storage(name, blob.read(), stem)
    log.info("scored blob %s -> %s/%s", name, _output_container(), written)


_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def _message_stem(message_id: str | None) -> str:
    if message_id and _SAFE.match(message_id):
        return message_id
    return "msg-" + hashlib.sha256((message_id or "").encode()).hexdigest()[:32]


@app.service_bus_queue_trigger(
    arg_name="msg", queue_name="%SERVICEBUS_QUEUE_NAME%", connection="SERVICEBUS"
)
async def score_message(msg: func.ServiceBusMessage) -> None:
    stem = "sb/" + _message_stem(msg.message_id)
    written = await _score_to_storage(f"servicebus:{msg.message_id}", msg.get_body(), stem)
    log.info("scored message %s -> %s/%s", msg.message_id, _output_container(), written)
