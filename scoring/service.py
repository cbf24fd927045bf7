"""The scoring core: one request in, one response out, whatever carries it.

The HTTP host (``scoring.app``) and the Azure Functions triggers (``functions/function_app.py``)
both call :meth:`ScoringService.score`. ``run()`` is synchronous user code, called one at a time
per worker by default (``SCORING_RUN_THREADS``, like azmlinfsrv's sync workers). Where it runs is
decided per call from its measured duration:

* **on the event loop** when recent calls took less than ``SCORING_INLINE_MAX_MS`` (default
  1 ms): a thread hand-off costs more than such a call. The calls that arrive in one loop
  iteration run back to back, in arrival order, which keeps the model hot in the CPU caches;
  the batch hands its remaining calls to the run thread as soon as one call is slow;
* **in the run thread** otherwise (and for the first calls, while the duration is learnt), so a
  slow ``run()`` never blocks the loop. One slow call sends the following ones to the thread
  until the average is back under the budget.

``SCORING_TIMEOUT_MS`` holds in both places: a timed-out call gets a 500, and pure-Python work is
interrupted (in the run thread by the loop's timer, on the loop by a watchdog thread).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import threading
import time
import traceback
from collections import deque
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


_FAILURES = (ScoringTimeout, _RunFailed, _RenderFailed, BadInput)  # each has its own response


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
    __slots__ = ("elapsed", "finished", "interrupted", "lock", "started", "thread_id")

    def __init__(self) -> None:
        self.started: float | None = None
        self.elapsed = 0.0
        self.finished = False
        self.interrupted = False
        self.thread_id = 0
        self.lock = threading.Lock()


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else ctypes.py_object()
    )


class _Dispatch:
    """Decides where the next run() goes from the durations of the previous ones."""

    LEARN_CALLS = 8  # first calls go to the run thread: their duration is not known yet
    ALPHA = 0.2  # weight of the newest duration in the moving average

    def __init__(self, inline_max_ms: int) -> None:
        self.budget = inline_max_ms / 1000.0
        self.learning = self.LEARN_CALLS
        self.average = 0.0
        self.last = 0.0
        self.inline_calls = 0
        self.thread_calls = 0

    def inline(self) -> bool:
        return (
            self.budget > 0
            and not self.learning
            and self.last < self.budget
            and self.average < self.budget
        )

    def note(self, seconds: float, inline: bool) -> None:
        first = not (self.inline_calls or self.thread_calls)
        self.average = seconds if first else self.average + self.ALPHA * (seconds - self.average)
        self.last = seconds
        self.learning = max(self.learning - 1, 0)
        if inline:
            self.inline_calls += 1
        else:
            self.thread_calls += 1

    def status(self) -> dict[str, Any]:
        return {
            "where": "event loop" if self.inline() else "run thread",
            "inline_max_ms": self.budget * 1000.0,
            "average_ms": round(self.average * 1000.0, 3),
            "inline_calls": self.inline_calls,
            "thread_calls": self.thread_calls,
        }


class _Watchdog:
    """Interrupts a run() on the event loop that outlives the scoring timeout.

    A daemon thread that wakes a few times per timeout; arming it is one attribute write, so a
    fast call pays nothing for it. Code stuck in C (a sleep, a native call) cannot be
    interrupted: the watchdog then logs that the worker is stuck, and liveness fails.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.poll = min(max(timeout / 4.0, 0.01), 0.25)
        self.current: _RunState | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def watch(self, state: _RunState | None) -> None:
        if self._thread is None and state is not None:
            self._thread = threading.Thread(target=self._loop, name="run-watchdog", daemon=True)
            self._thread.start()
        self.current = state

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        warned: _RunState | None = None
        while not self._stopped.wait(self.poll):
            state = self.current
            if state is None or state.started is None:
                continue
            overdue = time.monotonic() - state.started - self.timeout
            if overdue < 0:
                continue
            with state.lock:
                if state.finished:
                    continue
                if not state.interrupted:
                    state.interrupted = True
                    _async_raise(state.thread_id, _Interrupt)
                elif overdue > self.timeout and warned is not state:
                    warned = state
                    log.critical(
                        "run() on the event loop ignored the timeout interrupt for %.1fs "
                        "(stuck in native code?): this worker cannot answer until it returns",
                        overdue,
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
        self._gate = asyncio.Semaphore(settings.run_threads)  # run() calls at a time
        self._batch: deque[tuple[Callable[[], ScoreResponse], asyncio.Future[Any]]] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self._dispatch = _Dispatch(settings.inline_max_ms)
        self._watchdog = _Watchdog(settings.timeout_ms / 1000.0)
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
        self._watchdog.stop()
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
            "run": self._dispatch.status(),
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
        keyed = self.cache.enabled and not script.wants_headers
        try:
            payload, canonical = self._decode(req, method, script.kind, keyed)
        except BadInput as exc:
            return error_response(400, str(exc))
        except _Unsupported as exc:
            return error_response(415, str(exc))

        key = None
        if canonical is not None:
            key = cache_key(
                self.settings.model_name, self.settings.model_version, script.sha256, canonical
            )
            hit = await self.cache.get(key)
            if hit is not None:
                return ScoreResponse(200, hit[1], hit[0], cache="hit")

        headers = {_title_case(k): v for k, v in req.headers} if script.wants_headers else {}
        resp = await self._invoke(lambda: self._execute(req, payload, headers))
        if key is not None:
            if resp.status == 200 and not resp.run_failed:
                self.cache.put(key, resp.content_type, resp.body)
            resp.cache = "miss"
        return resp

    def _decode(
        self, req: ScoreRequest, method: str, kind: InputKind, keyed: bool
    ) -> tuple[Any, bytes | None]:
        """The run() input and, when ``keyed``, its canonical form for the cache key (None: don't
        cache)."""
        if kind is InputKind.RAW:
            return None, None
        if method == "GET":
            obj = _query_object(req.query_string)
            key = _canonical(obj) if keyed else None
            if kind is InputKind.SCHEMA:
                return obj, key and b"S" + key
            return json.dumps(obj), key and b"T" + key
        ctype = req.header("content-type")
        body = req.body
        if kind is InputKind.SCHEMA:
            if ctype and not _is_json_type(ctype):
                raise _Unsupported(f"Expects Content-Type to be application/json, got {ctype!r}")
            if not body or body.isspace():
                raise BadInput("POST body is empty. Expecting a JSON object.")
            obj = _loads(body)
            if not isinstance(obj, dict):
                raise BadInput("POST body should be a JSON object.")
            return obj, b"S" + _canonical(obj) if keyed else None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"Input cannot be decoded as UTF-8: {exc}") from None
        if _is_json_type(ctype) or (not ctype and text.lstrip()[:1] in ("{", "[")):
            obj = _loads(body)  # a malformed JSON body is a 400, not run()'s problem
            return text, b"T" + _canonical(obj) if keyed else None
        return text, b"R" + body if keyed else None

    async def _invoke(self, fn: Callable[[], ScoreResponse]) -> ScoreResponse:
        """Run fn() (decode, run(), render) on the event loop or in the run thread."""
        if self._dispatch.inline():
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[ScoreResponse | None] = loop.create_future()
            self._batch.append((fn, fut))
            if self._drainer is None:
                self._drainer = loop.create_task(self._drain())
            resp = await fut
            if resp is not None:
                return resp
            # an earlier call of its batch was slow: this one goes to the run thread
        async with self._gate:
            state = _RunState()
            try:
                return await self._run_in_thread(state, fn)
            except _FAILURES as exc:
                return self._failure(exc)
            finally:
                self._note(state, inline=False)

    async def _drain(self) -> None:
        """Run the calls queued in this loop iteration back to back, in arrival order.

        Running them one after another, rather than each between its request's parsing and
        its response's writing, keeps the model's code and data in the CPU caches: about 30%
        more requests/s with the sample model (``make bench``). Every ``SCORING_INLINE_MAX_MS``
        the loop gets a turn, so a long queue doesn't hold up ``/ready``.
        """
        batch = self._batch
        try:
            async with self._gate:  # after any run() still working in the run thread
                since = time.monotonic()
                while batch:
                    if time.monotonic() - since > self._dispatch.budget:
                        await asyncio.sleep(0)  # let /ready, /, cache hits in between
                        since = time.monotonic()
                    fn, fut = batch.popleft()
                    if fut.done():
                        continue
                    if not self._dispatch.inline():
                        fut.set_result(None)  # to the run thread
                        continue
                    state = _RunState()
                    try:
                        resp = self._run_inline(state, fn)
                    except _FAILURES as exc:
                        resp = self._failure(exc)
                    except Exception as exc:  # the request's handler turns it into a 500
                        fut.set_exception(exc)
                        continue
                    finally:
                        self._note(state, inline=True)
                    fut.set_result(resp)
        finally:
            self._drainer = None
            while batch:  # only when stopping: don't leave requests waiting
                _, fut = batch.popleft()
                if not fut.done():
                    fut.set_result(error_response(503, "The worker is stopping."))

    def _note(self, state: _RunState, *, inline: bool) -> None:
        if state.started is not None:  # a stuck call counts as the whole timeout
            seconds = state.elapsed if state.finished else self.settings.timeout_ms / 1000.0
            self._dispatch.note(seconds, inline)

    def _failure(self, exc: Exception) -> ScoreResponse:
        if isinstance(exc, ScoringTimeout):
            log.error("run() timed out after %d ms", self.settings.timeout_ms)
            return error_response(
                500, f"Scoring timeout after {self.settings.timeout_ms} ms", run_failed=True
            )
        if isinstance(exc, _RenderFailed):
            return error_response(500, str(exc), run_failed=True)
        if isinstance(exc, BadInput):
            return error_response(400, str(exc))
        return error_response(
            500,
            "An unexpected error occurred in scoring script. Check the logs for more info.",
            run_failed=True,
        )

    def _run_inline(self, state: _RunState, fn: Callable[[], ScoreResponse]) -> ScoreResponse:
        self._watchdog.watch(state)
        try:
            return self._call_timed(state, fn)
        except _RunFailed:
            if state.interrupted:
                raise ScoringTimeout from None
            raise
        finally:
            self._watchdog.watch(None)

    async def _run_in_thread(
        self, state: _RunState, fn: Callable[[], ScoreResponse]
    ) -> ScoreResponse:
        loop = asyncio.get_running_loop()
        executor = self._executor
        cfut = executor.submit(self._call_timed, state, fn)
        afut = asyncio.wrap_future(cfut, loop=loop)
        timeout = self.settings.timeout_ms / 1000.0
        handle: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal handle
            if afut.done():
                return
            if state.started is None:  # not started yet: wait for it
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
        finally:
            if handle is not None:
                handle.cancel()

    @staticmethod
    def _call_timed(state: _RunState, fn: Callable[[], ScoreResponse]) -> ScoreResponse:
        """Run fn() in the calling thread, interruptible by an async _Interrupt; time it."""
        state.thread_id = threading.get_ident()
        state.started = time.monotonic()
        try:
            try:
                return fn()
            finally:
                with state.lock:
                    state.elapsed = time.monotonic() - state.started
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
