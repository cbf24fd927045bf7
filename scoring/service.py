"""The scoring core: one request in, one response out, whatever carries it.

The HTTP host (``scoring.app``) and the Azure Functions triggers (``functions/function_app.py``)
both call :meth:`ScoringService.score`. ``run()`` is synchronous user code: it runs in a small
thread pool (``SCORING_RUN_THREADS``, default 1, i.e. one ``run()`` at a time per worker, like
azmlinfsrv's sync workers), so the event loop keeps answering ``/``, ``/ready`` and cache hits
while a slow ``run()`` works.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .cache import PredictionCache, cache_key
from .config import Settings
from .entry import BadInput, InputKind, UserScript

log = logging.getLogger("scoring")

JSON = "application/json"


@dataclass
class ScoreRequest:
    method: str
    body: bytes = b""
    query_string: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)  # lower-case names
    path: str = "/score"
    scheme: str = "http"
    server: tuple[str, int] | None = None
    client: tuple[str, int] | None = None

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


@dataclass
class ScoreResponse:
    status: int
    body: bytes
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    run_failed: bool = False
    exec_ms: float | None = None
    cache: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


def error_response(status: int, message: str, *, run_failed: bool = False) -> ScoreResponse:
    body = json.dumps({"message": message}).encode()
    return ScoreResponse(status, body, JSON, run_failed=run_failed)


class ScoringTimeout(Exception):
    pass


class _Interrupt(BaseException):
    """Raised inside a timed-out run() thread to stop pure-Python work early."""


class _RunFailed(Exception):
    pass


class _RenderFailed(Exception):
    pass


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, pandas objects
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == JSON or mime.endswith("+json")


def _parse_json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _query_object(query_string: bytes) -> dict[str, Any]:
    """Query parameters as azmlinfsrv reads them: JSON-decoded values, repeats become lists."""
    try:
        pairs = parse_qsl(
            query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        raise BadInput("Query string is not valid UTF-8") from None
    out: dict[str, Any] = {}
    repeated: set[str] = set()
    for k, v in pairs:
        value = _parse_json_value(v)
        if k not in out:
            out[k] = value
        elif k in repeated:
            out[k].append(value)
        else:
            out[k] = [out[k], value]
            repeated.add(k)
    return out


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _RunState:
    __slots__ = ("finished", "interrupted", "lock", "started", "thread_id")

    def __init__(self) -> None:
        self.started: float | None = None
        self.finished = False
        self.interrupted = False
        self.thread_id = 0
        self.lock = threading.Lock()


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else ctypes.py_object()
    )


def _title_case(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


class ScoringService:
    """Loads the entry script, runs init() once and scores requests."""

    def __init__(self, settings: Settings, script: UserScript | None = None) -> None:
        self.settings = settings
        self.script = script or UserScript(settings.entry_script)
        self.cache = PredictionCache(settings.cache)
        self.ready = False
        self.init_error: str | None = None
        self.init_seconds: float | None = None
        self._executor = self._new_executor()
        self._first_param = self.script.params[0].name

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.settings.run_threads, thread_name_prefix="run")

    # -- lifecycle ------------------------------------------------------------------------------

    def init_sync(self) -> None:
        """Call the script's init() in this thread (Functions and tests)."""
        t0 = time.perf_counter()
        try:
            self.script.init()
        except BaseException as exc:
            self.init_error = f"{type(exc).__name__}: {exc}"
            log.error("init() failed:\n%s", traceback.format_exc())
            raise
        self.init_seconds = time.perf_counter() - t0
        self.ready = True
        log.info("init() completed in %.3fs; ready for traffic", self.init_seconds)

    async def start(self) -> None:
        """Run init() in the run thread, without blocking the event loop."""
        loop = asyncio.get_running_loop()
        if self.cache.enabled:
            await self.cache.ping()  # bounded by the connect timeout; /status shows the result
        await loop.run_in_executor(self._executor, self.init_sync)

    async def close(self) -> None:
        await self.cache.aclose()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def status(self) -> dict[str, Any]:
        from . import __version__

        return {
            "model": {"name": self.settings.model_name, "version": self.settings.model_version},
            "entry_script": str(self.script.path),
            "input": self.script.kind.value,
            "ready": self.ready,
            "init_seconds": self.init_seconds,
            "init_error": self.init_error,
            "cache": self.cache.status(),
            "server": f"scoring/{__version__}",
        }

    # -- scoring --------------------------------------------------------------------------------

    async def score(self, req: ScoreRequest) -> ScoreResponse:
        if not self.ready:
            resp = error_response(503, "The model is not ready yet: init() has not completed.")
            resp.headers.append(("retry-after", "1"))
            return resp
        method = req.method.upper()
        if method == "OPTIONS":
            return ScoreResponse(200, b"", "text/plain")
        if method not in ("GET", "POST"):
            return error_response(405, "Method not allowed")
        script = self.script
        try:
            payload, canonical = self._decode(req, method, script.kind)
        except BadInput as exc:
            return error_response(400, str(exc))
        except _Unsupported as exc:
            return error_response(415, str(exc))

        key = None
        if canonical is not None and self.cache.enabled and not script.wants_headers:
            key = cache_key(
                self.settings.model_name, self.settings.model_version, script.sha256, canonical
            )
            hit = await self.cache.get(key)
            if hit is not None:
                return ScoreResponse(200, hit[1], hit[0], cache="hit")

        headers = {_title_case(k): v for k, v in req.headers} if script.wants_headers else {}
        try:
            resp = await self._invoke(lambda: self._execute(req, payload, headers))
        except ScoringTimeout:
            log.error("run() timed out after %d ms", self.settings.timeout_ms)
            return error_response(
                500, f"Scoring timeout after {self.settings.timeout_ms} ms", run_failed=True
            )
        if key is not None:
            if resp.status == 200 and not resp.run_failed:
                self.cache.put(key, resp.content_type, resp.body)
            resp.cache = "miss"
        return resp

    def _decode(self, req: ScoreRequest, method: str, kind: InputKind) -> tuple[Any, bytes | None]:
        """The run() input and the canonical form of it for the cache key (None: don't cache)."""
        if kind is InputKind.RAW:
            return None, None
        if method == "GET":
            obj = _query_object(req.query_string)
            if kind is InputKind.SCHEMA:
                return obj, b"S" + _canonical(obj)
            return json.dumps(obj), b"T" + _canonical(obj)
        ctype = req.header("content-type")
        body = req.body
        if kind is InputKind.SCHEMA:
            if ctype and not _is_json_type(ctype):
                raise _Unsupported(f"Expects Content-Type to be application/json, got {ctype!r}")
            if not body.strip():
                raise BadInput("POST body is empty. Expecting a JSON object.")
            obj = _loads(body)
            if not isinstance(obj, dict):
                raise BadInput("POST body should be a JSON object.")
            return obj, b"S" + _canonical(obj)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"Input cannot be decoded as UTF-8: {exc}") from None
        if _is_json_type(ctype) or (not ctype and text.lstrip()[:1] in ("{", "[")):
            obj = _loads(body)
            return text, b"T" + _canonical(obj)
        return text, b"R" + body

    async def _invoke(self, fn: Callable[[], ScoreResponse]) -> ScoreResponse:
        loop = asyncio.get_running_loop()
        state = _RunState()
        executor = self._executor
        cfut = executor.submit(self._in_thread, state, fn)
        afut = asyncio.wrap_future(cfut, loop=loop)
        timeout = self.settings.timeout_ms / 1000.0
        handle: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal handle
            if afut.done():
                return
            if state.started is None:  # still queued behind another run(): wait for it
                handle = loop.call_later(timeout, check)
                return
            remaining = state.started + timeout - time.monotonic()
            if remaining > 0:
                handle = loop.call_later(remaining, check)
                return
            with state.lock:
                if state.finished:
                    return
                state.interrupted = True
                _async_raise(state.thread_id, _Interrupt)
            # The stuck thread may not notice (C code, sleep); don't queue later runs behind it.
            if self._executor is executor:
                self._executor = self._new_executor()
                executor.shutdown(wait=False)
            afut.cancel()

        handle = loop.call_later(timeout, check)
        try:
            return await afut
        except asyncio.CancelledError:
            if state.interrupted:
                raise ScoringTimeout from None
            raise
        except _RunFailed:
            return error_response(
                500,
                "An unexpected error occurred in scoring script. Check the logs for more info.",
                run_failed=True,
            )
        except _RenderFailed as exc:
            return error_response(500, str(exc), run_failed=True)
        except BadInput as exc:
            return error_response(400, str(exc))
        finally:
            if handle is not None:
                handle.cancel()

    @staticmethod
    def _in_thread(state: _RunState, fn: Callable[[], ScoreResponse]) -> ScoreResponse:
        state.thread_id = threading.get_ident()
        state.started = time.monotonic()
        try:
            try:
                return fn()
            finally:
                with state.lock:
                    state.finished = True
                    if state.interrupted:
                        _async_raise(state.thread_id, None)
        except _Interrupt:
            raise _RunFailed("interrupted after timeout") from None

    def _execute(self, req: ScoreRequest, payload: Any, headers: dict[str, str]) -> ScoreResponse:
        script = self.script
        if script.kind is InputKind.RAW:
            from .api._werkzeug_types import AMLRequest

            kwargs = {
                self._first_param: AMLRequest.from_parts(
                    method=req.method,
                    path=req.path,
                    query_string=req.query_string,
                    headers=[(_title_case(k), v) for k, v in req.headers],
                    body=req.body,
                    scheme=req.scheme,
                    server=req.server,
                    client=req.client,
                )
            }
        elif script.kind is InputKind.SCHEMA:
            kwargs = script.arguments_from_object(payload)  # BadInput -> 400
        else:
            kwargs = {self._first_param: payload}
        t0 = time.perf_counter()
        try:
            output = script.call(kwargs, headers)
        except _Interrupt:
            raise
        except BaseException as exc:
            log.error("run() raised an exception:\n%s", traceback.format_exc())
            raise _RunFailed(type(exc).__name__) from exc
        elapsed = (time.perf_counter() - t0) * 1000.0
        return self._render(output, elapsed)

    @staticmethod
    def _render(output: Any, elapsed: float) -> ScoreResponse:
        if hasattr(output, "status_code") and hasattr(output, "get_data"):
            status = int(output.status_code)
            body = output.get_data()
            ctype = output.headers.get("Content-Type", "text/plain")
            extra = [
                (k.lower(), v)
                for k, v in output.headers.items()
                if k.lower() not in ("content-type", "content-length", "x-ms-run-function-failed")
            ]
            failed = status >= 500 or str(output.headers.get("x-ms-run-function-failed")) == "True"
            return ScoreResponse(status, body, ctype, extra, run_failed=failed, exec_ms=elapsed)
        try:
            body = json.dumps(output, default=_json_default).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            log.error("run() returned a value that cannot be serialised as JSON: %s", exc)
            raise _RenderFailed(
                f"run() returned a value that is not JSON serialisable: {exc}"
            ) from None
        return ScoreResponse(200, body, JSON, exec_ms=elapsed)


class _Unsupported(Exception):
    pass


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise BadInput("POST body could not be decoded as JSON: nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"POST body is not valid UTF-8: {exc}") from None
    except ValueError as exc:
        raise BadInput(f"POST body could not be decoded as JSON: {exc}") from None
