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
import logging
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .cache import PredictionCache, cache_key
from .config import Settings
from .dispatch import (
    Dispatch,
    Interrupt,
    RunFailed,
    RunState,
    ScoringTimeout,
    Watchdog,
    async_raise,
    call_timed,
)
from .entry import BadInput, InputKind, UserScript
from .messages import (
    RenderFailed,
    ScoreRequest,
    ScoreResponse,
    Unsupported,
    decode,
    error_response,
    render,
    title_case,
)

__all__ = ["ScoreRequest", "ScoreResponse", "ScoringService", "ScoringTimeout", "error_response"]

log = logging.getLogger("scoring")

_FAILURES = (ScoringTimeout, RunFailed, RenderFailed, BadInput)  # each has its own response


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
        self._dispatch = Dispatch(settings.inline_max_ms)
        self._watchdog = Watchdog(settings.timeout_ms / 1000.0)
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
            payload, canonical = decode(req, method, script.kind, keyed)
        except BadInput as exc:
            return error_response(400, str(exc))
        except Unsupported as exc:
            return error_response(415, str(exc))

        key = None
        if canonical is not None:
            key = cache_key(
                self.settings.model_name, self.settings.model_version, script.sha256, canonical
            )
            hit = await self.cache.get(key)
            if hit is not None:
                return ScoreResponse(200, hit[1], hit[0], cache="hit")

        headers = {title_case(k): v for k, v in req.headers} if script.wants_headers else {}
        resp = await self._invoke(lambda: self._execute(req, payload, headers))
        if key is not None:
            if resp.status == 200 and not resp.run_failed:
                self.cache.put(key, resp.content_type, resp.body)
            resp.cache = "miss"
        return resp

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
            state = RunState()
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
                    state = RunState()
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

    def _note(self, state: RunState, *, inline: bool) -> None:
        if state.started is not None:  # a stuck call counts as the whole timeout
            seconds = state.elapsed if state.finished else self.settings.timeout_ms / 1000.0
            self._dispatch.note(seconds, inline)

    def _failure(self, exc: Exception) -> ScoreResponse:
        if isinstance(exc, ScoringTimeout):
            log.error("run() timed out after %d ms", self.settings.timeout_ms)
            return error_response(
                500, f"Scoring timeout after {self.settings.timeout_ms} ms", run_failed=True
            )
        if isinstance(exc, RenderFailed):
            return error_response(500, str(exc), run_failed=True)
        if isinstance(exc, BadInput):
            return error_response(400, str(exc))
        return error_response(
            500,
            "An unexpected error occurred in scoring script. Check the logs for more info.",
            run_failed=True,
        )

    def _run_inline(self, state: RunState, fn: Callable[[], ScoreResponse]) -> ScoreResponse:
        self._watchdog.watch(state)
        try:
            return call_timed(state, fn)
        except RunFailed:
            if state.interrupted:
                raise ScoringTimeout from None
            raise
        finally:
            self._watchdog.watch(None)

    async def _run_in_thread(
        self, state: RunState, fn: Callable[[], ScoreResponse]
    ) -> ScoreResponse:
        loop = asyncio.get_running_loop()
        executor = self._executor
        cfut = executor.submit(call_timed, state, fn)
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
                async_raise(state.thread_id, Interrupt)
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

    def _execute(self, req: ScoreRequest, payload: Any, headers: dict[str, str]) -> ScoreResponse:
        script = self.script
        if script.kind is InputKind.RAW:
            from .api._werkzeug_types import AMLRequest

            kwargs = {
                self._first_param: AMLRequest.from_parts(
                    method=req.method,
                    path=req.path,
                    query_string=req.query_string,
                    headers=[(title_case(k), v) for k, v in req.headers],
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
            raise RunFailed(type(exc).__name__) from exc
        elapsed = (time.perf_counter() - t0) * 1000.0
        return render(output, elapsed)
