"""The scoring core: one request in, one response out, whatever carries it.

The HTTP host (``scoring.app``) and the Azure Functions triggers (``functions/function_app.py``)
both call :meth:`ScoringService.score`. ``init()`` and ``run()`` are synchronous user code and
run in the run threads (:mod:`scoring.dispatch`), never on the event loop: ``/`` and ``/ready``
answer during any ``run()``. ``SCORING_RUN_THREADS`` (default 1, like azmlinfsrv's sync workers)
sets how many run at a time (v1's ``maxConcurrentRequestsPerContainer``). The calls that queue up
while one runs go to the thread in one hand-off and come back in one, which keeps the throughput
of running them on the loop. A call whose queue wait passes ``SCORING_MAX_QUEUE_WAIT_MS``
(default 500, v1's ``max_request_wait_time``) gets a 503 with ``Retry-After``
(:mod:`scoring.admission`).

``SCORING_TIMEOUT_MS`` always holds: a call that overruns gets a 500 at the timeout, its thread is
abandoned and replaced (pure-Python work is also interrupted). More than
``SCORING_MAX_STUCK_RUNS`` (default 2) abandoned threads still stuck, in native code, recycle the
worker process: readiness turns 503 and the process stops, for uvicorn's supervisor or the
platform to start a fresh one. Only a new process gets such threads back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cache import PredictionCache, cache_key
from .config import Settings
from .dispatch import Interrupt, QueueFull, RunFailed, RunThreads, ScoringTimeout
from .entry import BadInput, InputKind, UserScript
from .messages import (
    JSON,
    RenderFailed,
    ScoreRequest,
    ScoreResponse,
    Unsupported,
    decode,
    error_response,
    render,
    title_case,
)

__all__ = [
    "FailedRun",
    "ScoreRequest",
    "ScoreResponse",
    "ScoringService",
    "ScoringTimeout",
    "error_response",
]

log = logging.getLogger("scoring")

# each has its own response
_FAILURES = (ScoringTimeout, RunFailed, RenderFailed, BadInput, QueueFull)
RECYCLE_GRACE_SECONDS = 10.0
_RAW_METHODS = ("GET", "POST", "OPTIONS", "HEAD")  # azmlinfsrv's /score route (HEAD via GET)


@dataclass
class FailedRun(ScoreResponse):
    """The 500 of a run() that raised, timed out or returned what cannot be rendered, with what
    the host's telemetry and metrics report about it (never sent to the client)."""

    error: BaseException | None = None
    run_seconds: float | None = None


def _failed_run(message: str, error: BaseException, seconds: float | None) -> FailedRun:
    body = json.dumps({"message": message}).encode()
    return FailedRun(500, body, JSON, run_failed=True, error=error, run_seconds=seconds)


@dataclass(frozen=True)
class Prepared:
    """A request ready for the run thread: ``call`` builds run()'s arguments, calls it and
    renders the answer; ``key`` is its cache key (None: not cached)."""

    call: Callable[[], ScoreResponse]
    key: str | None


def recycle_process(stuck: int) -> None:
    """Stop this worker process gracefully (SIGTERM), and for good after a grace period."""
    log.critical(
        "%d run() calls are stuck past SCORING_TIMEOUT_MS (native code?) and more than "
        "SCORING_MAX_STUCK_RUNS: recycling worker %d so that a fresh process replaces it",
        stuck,
        os.getpid(),
    )

    def backstop() -> None:
        time.sleep(RECYCLE_GRACE_SECONDS)
        logging.shutdown()
        os._exit(70)

    threading.Thread(target=backstop, name="recycle", daemon=True).start()
    os.kill(os.getpid(), signal.SIGTERM)


class ScoringService:
    """Loads the entry script, runs init() once and scores requests."""

    def __init__(
        self,
        settings: Settings,
        script: UserScript | None = None,
        on_stuck: Callable[[int], None] | None = None,
        preloaded: float | None = None,
    ) -> None:
        """``preloaded``: the script's init() already ran (in the process this worker was
        forked from, :mod:`scoring.prefork`), taking that many seconds."""
        self.settings = settings
        self.script = script or UserScript(settings.entry_script)
        self.cache = PredictionCache(settings.cache)
        self.ready = preloaded is not None
        self.recycling = False
        self.init_error: str | None = None
        self.init_seconds: float | None = preloaded
        self._recycle = on_stuck or recycle_process
        self._runs = RunThreads(
            settings.run_threads,
            settings.timeout_ms / 1000.0,
            settings.max_stuck_runs,
            self._stuck,
            max_wait=settings.max_queue_wait_ms / 1000.0,
        )
        self._first_param = self.script.params[0].name

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
        if self.cache.enabled:
            await self.cache.ping()  # bounded by the connect timeout; /status shows the result
        if not self.ready:  # else preloaded
            await self._runs.submit(self.init_sync, timed=False)

    async def close(self) -> None:
        await self.cache.aclose()
        self._runs.stop()

    def _stuck(self, stuck: int) -> None:
        if self.recycling:
            return
        self.recycling = True
        self.ready = False  # /ready 503 and /score 503 until the process is replaced
        self._recycle(stuck)

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
            "run": self._runs.status(),
            "server": f"scoring/{__version__}",
        }

    # -- scoring --------------------------------------------------------------------------------

    @property
    def direct(self) -> bool:
        """Whether a request can be scored by :meth:`submit` (no await before the run thread):
        ready, not ``@rawhttp`` (its request object wants the whole ASGI scope) and no cache
        (a lookup awaits Redis). The host's direct path (:mod:`scoring.direct`) asks this."""
        return self.ready and self.script.kind is not InputKind.RAW and not self.cache.enabled

    async def score(self, req: ScoreRequest) -> ScoreResponse:
        prepared = self.prepare(req)
        if isinstance(prepared, ScoreResponse):
            return prepared
        key = prepared.key
        if key is not None:
            hit = await self.cache.get(key)
            if hit is not None:
                return ScoreResponse(200, hit[1], hit[0], cache="hit")
        resp = await self._invoke(prepared.call)
        if key is not None:
            if resp.status == 200 and not resp.run_failed:
                self.cache.put(key, resp.content_type, resp.body)
            resp.cache = "miss"
        return resp

    def prepare(self, req: ScoreRequest) -> ScoreResponse | Prepared:
        """Everything before run(), on the loop: the answer already (503, 405, 400, 415), or the
        call for the run thread and its cache key."""
        if not self.ready:
            reason = (
                "This worker is being recycled: run() calls are stuck."
                if self.recycling
                else "The model is not ready yet: init() has not completed."
            )
            resp = error_response(503, reason)
            resp.headers.append(("retry-after", "1"))
            return resp
        method = req.method.upper()
        script = self.script
        if script.kind is InputKind.RAW:
            if method not in _RAW_METHODS:
                return error_response(405, "Method not allowed")
        elif method == "OPTIONS":
            return ScoreResponse(200, b"", "text/plain")
        elif method not in ("GET", "POST"):
            return error_response(405, "Method not allowed")
        keyed = self.cache.enabled and not script.wants_headers
        try:
            payload, canonical = decode(req, method, script.kind, keyed)
        except BadInput as exc:
            return error_response(400, str(exc))
        except Unsupported as exc:
            return error_response(415, str(exc))
        key = None
        if canonical is not None:
            key = cache_key(
                self.settings.model_name,
                self.settings.model_version,
                script.sha256,
                run_input_key(script.kind, payload, canonical),
            )
        headers = {title_case(k): v for k, v in req.headers} if script.wants_headers else {}
        return Prepared(lambda: self._execute(req, payload, headers), key)

    def submit(self, prepared: Prepared) -> asyncio.Future[ScoreResponse]:
        """Hand a prepared call (no cache key) to the run thread; :meth:`outcome` reads it."""
        return self._runs.submit(prepared.call)

    def outcome(self, fut: asyncio.Future[ScoreResponse]) -> ScoreResponse:
        try:
            return fut.result()
        except _FAILURES as exc:
            return self._failure(exc)

    async def _invoke(self, fn: Callable[[], ScoreResponse]) -> ScoreResponse:
        """Run fn() (schema conversion, run(), render) in a run thread."""
        try:
            return await self._runs.submit(fn)
        except _FAILURES as exc:
            return self._failure(exc)

    def _failure(self, exc: Exception) -> ScoreResponse:
        if isinstance(exc, QueueFull):
            return queue_full(exc, self.settings)
        if isinstance(exc, ScoringTimeout):
            ms = self.settings.timeout_ms
            log.error("run() timed out after %d ms", ms)
            error = exc if str(exc) else ScoringTimeout(f"run() exceeded SCORING_TIMEOUT_MS={ms}")
            return _failed_run(f"Scoring timeout after {ms} ms", error, ms / 1000.0)
        if isinstance(exc, RenderFailed):
            return _failed_run(str(exc), exc, None)
        if isinstance(exc, BadInput):
            return error_response(400, str(exc))
        return _failed_run(
            "An unexpected error occurred in scoring script. Check the logs for more info.",
            exc.__cause__ or exc,  # run()'s own exception
            getattr(exc, "run_seconds", None),
        )

    def _execute(self, req: ScoreRequest, payload: Any, headers: dict[str, str]) -> ScoreResponse:
        script = self.script
        if script.kind is InputKind.RAW:
            from .api._werkzeug_types import AMLRequest

            kwargs = {
                self._first_param: AMLRequest.from_parts(
                    method=req.method,
                    path=req.path,
                    query_string=req.query_string,
                    # The body is whole and de-chunked here: its framing header would make
                    # werkzeug read it as empty (its length is passed instead).
                    headers=[
                        (title_case(k), v) for k, v in req.headers if k != "transfer-encoding"
                    ],
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
        except Interrupt:
            raise
        except BaseException as exc:
            log.error("run() raised an exception:\n%s", traceback.format_exc())
            failed = RunFailed(type(exc).__name__)
            failed.run_seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
            raise failed from exc
        elapsed = (time.perf_counter() - t0) * 1000.0
        return render(output, elapsed)


def queue_full(exc: QueueFull, settings: Settings) -> ScoreResponse:
    """The 503 of a call refused for its queue wait, as v1's web service answered it."""
    resp = error_response(
        503,
        f"The service is busy: {settings.run_threads} run() call(s) at a time "
        f"(SCORING_RUN_THREADS) and a queue wait of {settings.max_queue_wait_ms} ms at most "
        "(SCORING_MAX_QUEUE_WAIT_MS). Retry later.",
    )
    resp.headers.append(("retry-after", str(exc.retry_after)))
    resp.refused = "queue_timeout" if exc.timed_out else "queue_full"
    return resp


def run_input_key(kind: InputKind, payload: Any, canonical: bytes) -> bytes:
    """What run() receives, as the cache key's input: the canonical parsed object for schema
    scripts (what the decorators convert), the exact text for plain scripts."""
    if kind is InputKind.SCHEMA:
        return canonical
    if isinstance(payload, str):
        return b"R" + payload.encode("utf-8", "surrogatepass")
    if isinstance(payload, bytes):
        return b"B" + payload
    return canonical
