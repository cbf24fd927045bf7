"""The queue wait limit of the run threads (v1's ``max_request_wait_time``).

A worker runs ``SCORING_RUN_THREADS`` calls at once (v1's ``maxConcurrentRequestsPerContainer``)
and queues the rest. A queued call may wait ``SCORING_MAX_QUEUE_WAIT_MS`` (default 500, as v1's
AKS web service) before it is answered 503 with ``Retry-After``; v1's replicas answered the same.

Two checks, both on the event loop:

* on arrival, a call whose wait and own run are foreseen over the limit (the calls ahead of
  it, times the average ``run()`` time, over the threads; plus its own) is refused at once:
  under overload the excess gets its 503 in a millisecond, not after waiting the whole limit,
  and the queue stays as long as the limit allows;
* a loop timer withdraws a call still queued at its deadline (the foresight was wrong: ``run()``
  slowed down) and answers it 503.

A call that finds a run thread free is never tracked: below the limit this costs one
comparison a request. ``/`` and ``/ready`` never queue (they do not run user code).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Protocol

from .settle import Call, settle, settle_on


class Job(Call, Protocol):
    """A call in the run threads' queue (:class:`scoring.dispatch.Job`)."""

    due: float  # when its queue wait runs out (monotonic; 0: no limit)


class RunThreads(Protocol):
    """What the limit reads of :class:`scoring.dispatch.RunThreads`."""

    pending: int  # calls admitted and not finished
    threads: int
    average: float  # seconds per run() call
    calls: int  # run() calls timed so far

    def oldest(self) -> Job | None: ...

    def withdraw(self, job: Any) -> bool: ...


FORESIGHT_AFTER_CALLS = 8  # run() calls timed before the average is trusted


class QueueFull(Exception):
    """A call refused for its queue wait: the 503.

    ``timed_out``: it waited the whole limit in the queue (else it was refused on arrival, its
    wait foreseen longer than the limit); ``retry_after``: seconds until the queue drains.
    """

    def __init__(self, timed_out: bool, retry_after: int) -> None:
        super().__init__("queue wait over the limit")
        self.timed_out = timed_out
        self.retry_after = retry_after


class Admission:
    """The queue wait limit of one :class:`scoring.dispatch.RunThreads`."""

    def __init__(self, runs: RunThreads, max_wait: float) -> None:
        self.runs = runs
        self.max_wait = max_wait
        self._timer: asyncio.TimerHandle | None = None
        self.refused = 0  # refused on arrival
        self.timed_out = 0  # withdrawn from the queue at their deadline

    def admit(self, job: Job, loop: asyncio.AbstractEventLoop) -> QueueFull | None:
        """Before ``job`` is counted as pending: None (admitted), or the refusal."""
        runs = self.runs
        ahead = runs.pending - runs.threads  # queued calls ahead of this one, if >= 0
        if ahead < 0:
            return None  # a run thread is free: it starts at once
        # its wait, and its own run(): what it would take is kept within the limit, so an
        # admitted call is answered within the limit plus one run() even on a busy loop
        foreseen = (ahead + 1) * runs.average / runs.threads + runs.average
        if runs.calls >= FORESIGHT_AFTER_CALLS and foreseen > self.max_wait:
            self.refused += 1
            return QueueFull(False, self.retry_after())
        job.due = time.monotonic() + self.max_wait
        if self._timer is None:
            self._timer = loop.call_later(self.max_wait, self._expire)
        return None

    def retry_after(self) -> int:
        """Whole seconds until the calls pending now are done (at least 1)."""
        runs = self.runs
        return max(1, math.ceil(runs.pending * runs.average / runs.threads))

    def _expire(self) -> None:
        """Withdraw the calls at the head of the queue whose wait ran out; re-arm for the next.

        It reads the run threads' queue itself (its head is the oldest call not started), so no
        finished call is kept alive for it."""
        self._timer = None
        now = time.monotonic()
        runs = self.runs
        while True:
            job = runs.oldest()
            if job is None:
                return
            if job.due > now or job.due == 0.0:
                break
            if runs.withdraw(job):
                self.timed_out += 1
                _refuse(job, QueueFull(True, self.retry_after()))
        delay = max(job.due - now, 0.001) if job.due else self.max_wait
        self._timer = asyncio.get_running_loop().call_later(delay, self._expire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def status(self) -> dict[str, Any]:
        return {
            "max_queue_wait_ms": round(self.max_wait * 1000.0),
            "refused": self.refused,
            "timed_out": self.timed_out,
        }


def _refuse(job: Job, exc: QueueFull) -> None:
    try:
        here = asyncio.get_running_loop()
    except RuntimeError:  # pragma: no cover - the timer runs on a loop
        here = None
    if job.loop is here:
        settle(job.fut, False, exc)
    else:
        settle_on(job, False, exc)
