"""Where run() goes and how a timed-out one is stopped (see :mod:`scoring.service`).

:class:`Dispatch` picks the event loop or the run thread from the durations of the previous
calls; :func:`call_timed` times a call and makes it interruptible by :func:`async_raise`, which
the loop's timer (run thread) or the :class:`Watchdog` (event loop) sends when it overruns.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("scoring")

T = TypeVar("T")


class ScoringTimeout(Exception):
    pass


class Interrupt(BaseException):
    """Raised inside a timed-out run() thread to stop pure-Python work early."""


class RunFailed(Exception):
    pass


class RunState:
    __slots__ = ("elapsed", "finished", "interrupted", "lock", "started", "thread_id")

    def __init__(self) -> None:
        self.started: float | None = None
        self.elapsed = 0.0
        self.finished = False
        self.interrupted = False
        self.thread_id = 0
        self.lock = threading.Lock()


def async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else ctypes.py_object()
    )


def call_timed(state: RunState, fn: Callable[[], T]) -> T:
    """Run fn() in the calling thread, interruptible by an async Interrupt; time it."""
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
                    async_raise(state.thread_id, None)
    except Interrupt:
        raise RunFailed("interrupted after timeout") from None


class Dispatch:
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


class Watchdog:
    """Interrupts a run() on the event loop that outlives the scoring timeout.

    A daemon thread that wakes a few times per timeout; arming it is one attribute write, so a
    fast call pays nothing for it. Code stuck in C (a sleep, a native call) cannot be
    interrupted: the watchdog then logs that the worker is stuck, and liveness fails.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.poll = min(max(timeout / 4.0, 0.01), 0.25)
        self.current: RunState | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def watch(self, state: RunState | None) -> None:
        if self._thread is None and state is not None:
            self._thread = threading.Thread(target=self._loop, name="run-watchdog", daemon=True)
            self._thread.start()
        self.current = state

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        warned: RunState | None = None
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
                    async_raise(state.thread_id, Interrupt)
                elif overdue > self.timeout and warned is not state:
                    warned = state
                    log.critical(
                        "run() on the event loop ignored the timeout interrupt for %.1fs "
                        "(stuck in native code?): this worker cannot answer until it returns",
                        overdue,
                    )
