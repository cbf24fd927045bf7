"""Model data collection: each scored input and output, as JSON lines in blob storage, in the
layout and format of Azure ML's data collector, so that Azure ML model monitoring reads them.

Layout (https://learn.microsoft.com/azure/machine-learning/how-to-collect-production-data,
"Store collected data in Blob Storage"):
``modelDataCollector/{endpoint}/{deployment}/{collection}/{yyyy}/{MM}/{dd}/{HH}/{instance}.jsonl``
with collections ``model_inputs`` and ``model_outputs``, one JSON object a line::

    {"specversion": "1.0", "id": "<uuid>", "source": "/endpoints/<ep>/deployments/<dep>",
     "type": "azureml.inference.model_inputs", "datacontenttype": "application/json",
     "time": "2024-03-05T18:16:25Z", "data": [{"0": 1, "1": 2}], "contentrange": "bytes 0-17/18",
     "correlationid": "<x-request-id>", "xrequestid": "<x-request-id>", "modelversion": "3",
     "agent": "scoring/1.0.0"}

An input and its output share ``correlationid`` (the request's ``x-request-id``). ``data`` is a
list of rows, as the collector writes a DataFrame: ``{"data": [[...], ...]}`` and lists of
lists become rows keyed by column position (``"0"``, ``"1"``...), lists of objects stay as
they are, a scalar prediction is ``{"0": value}``; JSON of another shape is kept whole, and
text that is no JSON is written as a string (``datacontenttype`` ``text/plain``). Binary
payloads are not collected (counted as ``not_collectable``).

The request path only appends a tuple to a list (after a sampling draw, ``sampling_rate``).
Every ``interval`` seconds a thread hands the list to the writer, which builds the lines and
writes them, one append-block per blob. In the host the writer is a child process of the
worker (``process=True``): building 9,000 JSON lines a second in a thread of the worker would
take a fifth of the GIL from the event loop (``make bench``); the thread only pickles the list
into a pipe. Append blobs,
because the layout puts every record of an hour in one ``{instance}.jsonl``, and an append
is one request with no read-modify-write (a block blob per batch would need a new name per
batch, or a re-commit of the block list). The list is bounded (10,000 records, 64 MiB of
payloads): when it is full, or when storage fails, records are dropped and counted
(``/status``, ``/metrics``); storage being down never slows or fails a request.

A local run (``python -m scoring.demo``) writes the same layout into a folder instead
(``DATA_COLLECTION_FOLDER``: ``<folder>/modelDataCollector/...``, each blob a file appended to),
so it never signs in to Azure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import pickle
import random
import socket
import threading
import time
import traceback
from typing import Any
from urllib.parse import urlsplit

from ..headers import new_request_id as new_id
from .folder_sink import Folder
from .metrics import (
    DC_COLLECTED,
    DC_DROPPED_FULL,
    DC_DROPPED_UPLOAD,
    DC_SKIPPED,
    DC_UPLOADED,
    Metrics,
)
from .settings import DataCollectionSettings

log = logging.getLogger("scoring.collector")

COLLECTIONS = ("model_inputs", "model_outputs")
MAX_BLOCK = 4 * 1024 * 1024  # bytes in one Append Block (the limit for every service version)
ROOT = "modelDataCollector"


class DataCollector:
    def __init__(
        self,
        settings: DataCollectionSettings,
        metrics: Metrics,
        *,
        model_version: str = "0",
        instance: str | None = None,
        interval: float = 1.0,
        max_buffer: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        process: bool = False,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.rate = settings.sampling_rate
        self.interval = interval
        self.max_buffer = max_buffer
        self.max_bytes = max_bytes
        self.model_version = model_version
        self.instance = instance or f"{_safe(socket.gethostname())}-{os.getpid()}"
        self.process = process
        self.buffer = _Buffer()
        self.started = False
        self.error: str | None = None
        self.last_error: str | None = None
        self.url: str | None = None
        self._writer: Writer | None = None
        self._child: Any = None
        self._pipe: Any = None
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one hand-over at a time (the thread, flush, close)
        self._sent = self._answered = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> bool:
        """Sign in and start the writer (a child process, or this process's thread)."""
        try:
            if self.process:
                self._spawn()
            else:
                self._writer = Writer(self.settings, self.model_version, self.instance)
                self.url = self._writer.url
        except Exception as exc:  # a bad URL or credential must not stop scoring
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model data collection is off: %s", self.error)
            return False
        self._thread = threading.Thread(target=self._loop, name="data-collector", daemon=True)
        self._thread.start()
        self.started = True
        return True

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe()
        args = (self.settings, self.model_version, self.instance, theirs)
        self._child = ctx.Process(target=_child, args=args, name="data-collector", daemon=True)
        self._child.start()
        theirs.close()
        self._pipe = mine
        if not mine.poll(60):
            raise TimeoutError("the data collection writer did not start within 60 s")
        answer = mine.recv()
        if "error" in answer:
            self._child.join(5)
            raise RuntimeError(answer["error"])
        self.url = answer["url"]

    def flush(self) -> None:
        """Write what is buffered now, and wait for it."""
        self._hand_over(wait=True)

    def close(self, timeout: float = 10.0) -> None:
        if not self.started:
            return
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self._hand_over(wait=True)
        finally:
            if self._pipe is not None:
                with contextlib.suppress(OSError):
                    self._pipe.send_bytes(b"")  # stop
                self._child.join(timeout)
                if self._child.is_alive():
                    self._child.kill()
                self._pipe.close()
        self.started = False

    def status(self) -> dict[str, Any]:
        c = self.metrics.cells
        return {
            "enabled": self.started,
            "error": self.error,
            "destination": self.destination(),
            "sampling_rate": self.rate,
            "buffered": len(self.buffer.records),
            "collected": int(c[DC_COLLECTED]),
            "uploaded": int(c[DC_UPLOADED]),
            "dropped": {
                "buffer_full": int(c[DC_DROPPED_FULL]),
                "upload_failed": int(c[DC_DROPPED_UPLOAD]),
                "not_collectable": int(c[DC_SKIPPED]),
            },
            "last_error": self.last_error,
        }

    def destination(self) -> str:
        return self.settings.blob_url or self.url or self.settings.container

    def blob_name(self, collection: str, when: float) -> str:
        return blob_name(self.settings, self.instance, collection, when)

    # -- the request path -----------------------------------------------------------------------

    def collect(self, body: bytes, output: bytes, request_id: str) -> None:
        """Queue a request's input and output; never blocks, never raises."""
        if self.rate < 1.0 and random.random() >= self.rate:
            return
        buffer = self.buffer
        size = buffer.size + len(body) + len(output)
        if len(buffer.records) >= self.max_buffer or size > self.max_bytes:
            self.metrics.add(DC_DROPPED_FULL)
            return
        buffer.records.append((time.time(), body, output, request_id))
        buffer.size = size
        self.metrics.add(DC_COLLECTED)

    # -- the hand-over thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval)
            if self._stop:
                return
            try:
                self._hand_over(wait=False)
            except Exception:  # never let the thread die
                log.warning("model data collection failed:\n%s", traceback.format_exc())

    def _hand_over(self, wait: bool) -> None:
        with self._lock:
            self._hand_over_locked(wait)

    def _hand_over_locked(self, wait: bool) -> None:
        taken, self.buffer = self.buffer, _Buffer()
        time.sleep(0)  # a collect() that read the old buffer just before finishes its append
        records = taken.records
        if self._writer is not None:
            if records:
                self._count(self._writer.write(records))
            return
        if self._pipe is None:
            return
        if records:
            self._pipe.send_bytes(pickle.dumps(records, pickle.HIGHEST_PROTOCOL))
            self._sent += 1
        # the writer's counts; flush() and close() wait for every batch's
        while self._pipe.poll(30 if wait and self._sent > self._answered else 0):
            self._count(self._pipe.recv())
            self._answered += 1

    def _count(self, stats: dict[str, Any]) -> None:
        metrics = self.metrics
        metrics.add(DC_UPLOADED, stats["uploaded"])
        metrics.add(DC_DROPPED_UPLOAD, stats["upload_failed"])
        metrics.add(DC_SKIPPED, stats["skipped"])
        if stats.get("last_error"):
            self.last_error = stats["last_error"]


def blob_name(settings: DataCollectionSettings, instance: str, collection: str, when: float) -> str:
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime(when))
    return f"{ROOT}/{settings.endpoint}/{settings.deployment}/{collection}/{hour}/{instance}.jsonl"


def _child(settings: DataCollectionSettings, model_version: str, instance: str, pipe: Any) -> None:
    """The writer process: batches of records in, their counts out, until an empty message or
    the worker's end of the pipe closes."""
    from ..logs import configure_logging

    with contextlib.suppress(OSError):
        os.nice(10)  # scoring first: under a full CPU the writer falls behind (drops, counted)
    configure_logging()
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        writer = Writer(settings, model_version, instance)
    except Exception as exc:
        pipe.send({"error": f"{type(exc).__name__}: {exc}"})
        return
    pipe.send({"url": writer.url})
    while True:
        try:
            message = pipe.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        counts = writer.write(pickle.loads(message))
        try:
            pipe.send(counts)
        except OSError:  # the worker is gone (it stopped while this batch was written)
            return


class Writer:
    """Records to JSON lines to append blobs; returns what it wrote, skipped and dropped."""

    def __init__(self, settings: DataCollectionSettings, model_version: str, instance: str) -> None:
        self.settings = settings
        self.instance = instance
        self.container = _client(settings)
        url = getattr(self.container, "url", None)
        self.url = url.split("?", 1)[0] if isinstance(url, str) else None
        self._last_warning = 0.0
        from .. import __version__

        source = f"/endpoints/{settings.endpoint}/deployments/{settings.deployment}"
        self._heads = tuple(
            f'"source":{_string(source)},"type":"azureml.inference.{c}",' for c in COLLECTIONS
        )
        model, agent = _string(model_version), _string(f"scoring/{__version__}")
        self._tail = f',"modelversion":{model},"agent":{agent}}}\n'
        self._second = -1
        self._stamp = ""

    def write(self, records: list[tuple[float, bytes, bytes, str]]) -> dict[str, Any]:
        stats: dict[str, Any] = {"uploaded": 0.0, "upload_failed": 0.0, "skipped": 0}
        blobs: dict[str, list[bytes]] = {}
        for when, body, output, request_id in records:
            lines = self.lines(when, body, output, request_id)
            if lines is None:
                stats["skipped"] += 1
                continue
            for collection, line in zip(COLLECTIONS, lines, strict=True):
                name = blob_name(self.settings, self.instance, collection, when)
                blobs.setdefault(name, []).append(line)
        for name, lines in blobs.items():
            for chunk, count in _chunks(lines):
                try:
                    self._append(name, chunk)
                except Exception as exc:
                    stats["upload_failed"] += count / 2  # a record: an input and an output
                    stats["last_error"] = self._failed(name, exc, count)
                else:
                    stats["uploaded"] += count / 2
        return stats

    def lines(
        self, when: float, body: bytes, output: bytes, request_id: str
    ) -> tuple[bytes, bytes] | None:
        """The two JSON lines of a record, assembled from pre-encoded parts (the same JSON as
        ``json.dumps`` of the event, at a third of its cost)."""
        second = int(when)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        tail = f',"correlationid":{(rid := _string(request_id))},"xrequestid":{rid}{self._tail}'
        out: list[bytes] = []
        for head, payload in zip(self._heads, (body, output), strict=True):
            converted = _data(payload)
            if converted is None:
                return None
            data, content_type, size = converted
            line = (
                f'{{"specversion":"1.0","id":"{new_id()}",{head}"datacontenttype":"{content_type}",'
                f'"time":"{self._stamp}","data":{data},'
                f'"contentrange":"bytes 0-{max(size - 1, 0)}/{size}"{tail}'
            ).encode()
            if len(line) > MAX_BLOCK:
                return None
            out.append(line)
        return out[0], out[1]

    def _append(self, name: str, data: bytes) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self.container.get_blob_client(name)
        try:
            blob.append_block(data)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "ContainerNotFound":
                self.container.create_container()  # Azurite; on Azure the program creates it
            self._create(blob)
            blob.append_block(data)

    def _create(self, blob: Any) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        # if-none-match *: never truncates a blob another worker created meanwhile
        with contextlib.suppress(ResourceExistsError, ResourceModifiedError):
            blob.create_append_blob(match_condition=MatchConditions.IfMissing)

    def _failed(self, name: str, exc: Exception, count: int) -> str:
        text = str(exc).splitlines()[0] if str(exc) else ""
        error = f"{type(exc).__name__}: {text}"
        now = time.monotonic()
        if now - self._last_warning > 60.0:  # one line a minute while storage is down
            self._last_warning = now
            log.warning("model data collection: %d lines for %s dropped: %s", count, name, error)
        return error


def _client(settings: DataCollectionSettings) -> Any:
    from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry

    s = settings
    if s.folder:
        return Folder(s.folder)
    # Short timeouts and retries (the SDK's default backs off 15 s, then 18 s...): a batch
    # that cannot be written soon is dropped and counted, and the writer moves on.
    retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=1)
    opts: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 20, "retry_policy": retry}
    if s.connection_string:
        service = BlobServiceClient.from_connection_string(s.connection_string, **opts)
        return service.get_container_client(s.container)
    assert s.blob_url
    if s.client_id:
        from azure.identity import ManagedIdentityCredential

        credential: Any = ManagedIdentityCredential(client_id=s.client_id)
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    account, container = _split_url(s.blob_url)
    return ContainerClient(account, container or s.container, credential=credential, **opts)


class _Buffer:
    """The records waiting for the writer thread, and their payloads' bytes. Swapped whole, so
    the event loop and the thread never update the same counter."""

    __slots__ = ("records", "size")

    def __init__(self) -> None:
        self.records: list[tuple[float, bytes, bytes, str]] = []
        self.size = 0


def _chunks(lines: list[bytes]) -> list[tuple[bytes, int]]:
    """Lines joined into appends of at most MAX_BLOCK bytes (each line fits one)."""
    out: list[tuple[bytes, int]] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) > MAX_BLOCK:
            out.append((b"".join(current), len(current)))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        out.append((b"".join(current), len(current)))
    return out


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_string = _encode  # a JSON string literal
_KEYS = [str(i) for i in range(256)]


def _data(payload: bytes) -> tuple[str, str, int] | None:
    """``data`` for a payload as JSON text (rows where it is tabular), its content type and the
    payload's size."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return _string(text), "text/plain", len(payload)
    return _encode(rows(value)), "application/json", len(payload)


def rows(value: Any) -> Any:
    """Azure ML's ``data``: a DataFrame's records."""
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if isinstance(value, list):
        if all(isinstance(v, list) for v in value):
            keys = _KEYS
            return [
                dict(zip(keys, v, strict=False)) if len(v) <= len(keys) else _indexed(v)
                for v in value
            ]
        if all(isinstance(v, dict) for v in value):
            return value
        if all(not isinstance(v, (dict, list)) for v in value):
            return [{"0": v} for v in value]
        return value
    if isinstance(value, dict):
        return [value]
    return [{"0": value}]


def _indexed(row: list[Any]) -> dict[str, Any]:
    return {str(i): x for i, x in enumerate(row)}


def _split_url(url: str) -> tuple[str, str | None]:
    """Account URL and container of a container (or account) URL. Azurite's URLs carry the
    account as their first path segment (``http://127.0.0.1:10000/devstoreaccount1/c``)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    host = parts.hostname or ""
    emulator = host in ("127.0.0.1", "localhost") or host.replace(".", "").isdigit()
    account = segments[:1] if emulator else []
    rest = segments[len(account) :]
    base = f"{parts.scheme}://{parts.netloc}" + "".join(f"/{a}" for a in account)
    return base, (rest[0] if rest else None)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "instance"
