"""Azure Functions app (Python v2 programming model): the same scoring core behind three triggers.

* HTTP ``GET|POST /api/score`` (auth level FUNCTION: ``?code=`` or ``x-functions-key``).
* Blob ``input/{blobname}.json`` in the storage account of connection ``TRIGGER_STORAGE``
  → ``output/{blobname}.<version>_out.json`` (or ``..._error.json`` with the reason); the
  version is the blob's version id or ETag, so a blob written again gets its own result.
* Service Bus queue ``%SERVICEBUS_QUEUE_NAME%`` on connection ``SERVICEBUS``
  → ``output/sb/<message id>.<body hash>_out.json`` (or ``..._error.json``) in the same storage
  account; a message without an id is named by its body's hash alone.

What happens to a blob or message that cannot be scored depends on whether trying again may help:

* a bad input (a 4xx: malformed, wrong shape, too large) writes its error record and completes:
  retrying would fail the same way;
* a failure that may pass (``init()`` failed, ``run()`` timed out or raised, the model is not
  ready, the result cannot be written) writes its error record when it can and *raises*: the
  platform retries the blob (then its poison queue) and redelivers the message (then, after the
  queue's max delivery count, dead-letters it).

Every error record names its input: the blob's URL and ETag, or the message id and body. A
success deletes the error record an earlier attempt left for the same input.

Connections are identity-based in Azure (``TRIGGER_STORAGE__blobServiceUri``,
``TRIGGER_STORAGE__credential=managedidentity``, ``TRIGGER_STORAGE__clientId``;
``SERVICEBUS__fullyQualifiedNamespace``); a plain connection string in ``TRIGGER_STORAGE`` works
too (Azurite, local runs).
"""

from __future__ import annotations

import asyncio
import contextlib
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


def _delete_blob(container: str, name: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with contextlib.suppress(ResourceNotFoundError):
        _blob_service().get_blob_client(container, name).delete_blob()


def _output_container() -> str:
    return os.environ.get(OUTPUT_CONTAINER_SETTING, "output")


class TransientScoringError(Exception):
    """Scoring failed in a way that may pass: raised so that the platform tries again."""


BODY_IN_RECORD = 16 * 1024  # bytes of a message body kept in its error record


def _reason(resp: ScoreResponse) -> str:
    try:
        return str(json.loads(resp.body).get("message"))
    except (ValueError, AttributeError):
        return resp.body.decode("utf-8", "replace")[:2000]


def _error_record(source: dict[str, Any], resp: ScoreResponse, retried: bool) -> bytes:
    return json.dumps(
        {
            **source,
            "status": resp.status,
            "error": _reason(resp),
            "run_function_failed": resp.run_failed,
            "will_retry": retried,
            "time": dt.datetime.now(dt.UTC).isoformat(),
        },
        indent=2,
    ).encode()


def _transient(status: int) -> bool:
    return status >= 500 or status in (408, 429)


async def _score_to_storage(source: dict[str, Any], body: bytes, result_stem: str) -> str:
    """Score ``body`` and write ``<stem>_out.json`` (deleting an earlier ``<stem>_error.json``)
    or ``<stem>_error.json``; return the name. Raise when trying again may help."""
    label = source["source"]
    try:
        resp = await score_body(body)
    except Exception as exc:  # the core itself failed (e.g. init()): may pass, so retry
        log.exception("scoring %s failed", label)
        resp = ScoreResponse(
            503, json.dumps({"message": f"{type(exc).__name__}: {exc}"}).encode(), run_failed=True
        )
    container = _output_container()
    if resp.status == 200:
        name = f"{result_stem}_out.json"
        await asyncio.to_thread(_write_blob, container, name, resp.body)
        await asyncio.to_thread(_delete_blob, container, f"{result_stem}_error.json")
        return name
    retry = _transient(resp.status)
    name = f"{result_stem}_error.json"
    await asyncio.to_thread(_write_blob, container, name, _error_record(source, resp, retry))
    if retry:
        log.error("%s failed (%d), will be retried; error record %s", label, resp.status, name)
        raise TransientScoringError(f"{label}: {resp.status} {_reason(resp)}")
    log.warning("%s could not be scored (%d); error record %s", label, resp.status, name)
    return name


def _digest(data: bytes, chars: int) -> str:
    return hashlib.sha256(data).hexdigest()[:chars]


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
    data = blob.read()
    props = {k.lower(): v for k, v in (getattr(blob, "blob_properties", None) or {}).items()}
    etag = str(props.get("etag") or "").strip('"') or None
    version = props.get("versionid") or etag
    # the blob's version (or, without one, its content) names the result: no overwrites
    tag = _digest(str(version).encode(), 16) if version else "c" + _digest(data, 15)
    source = {"source": name, "blob_url": blob.uri, "etag": etag, "version": version}
    written = await _score_to_storage(source, data, f"{stem}.{tag}")
    log.info("scored blob %s -> %s/%s", name, _output_container(), written)


_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def message_stem(message_id: str | None, body: bytes) -> str:
    """``<id>.<body hash>``: two messages never share a result unless id and body are the same
    (a redelivery); without an id, the body's hash alone."""
    if not message_id:
        return "body-" + _digest(body, 32)
    safe = message_id if _SAFE.match(message_id) else "id-" + _digest(message_id.encode(), 32)
    return f"{safe}.{_digest(body, 12)}"


@app.service_bus_queue_trigger(
    arg_name="msg", queue_name="%SERVICEBUS_QUEUE_NAME%", connection="SERVICEBUS"
)
async def score_message(msg: func.ServiceBusMessage) -> None:
    body = msg.get_body()
    stem = "sb/" + message_stem(msg.message_id, body)
    source = {
        "source": f"servicebus:{msg.message_id}",
        "message_id": msg.message_id,
        "delivery_count": msg.delivery_count,
        "body": body[:BODY_IN_RECORD].decode("utf-8", "replace"),
        "body_truncated": len(body) > BODY_IN_RECORD,
    }
    written = await _score_to_storage(source, body, stem)
    log.info("scored message %s -> %s/%s", msg.message_id, _output_container(), written)
