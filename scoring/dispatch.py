"""The run threads: where user code runs, handed work in batches, and how a stuck one is dropped.

User code (``init()``, ``run()``) never runs on the event loop, so ``/`` and ``/ready`` answer
during any ``run()``. Handing one call to a thread and back costs two wake-ups (a futex and a
self-pipe write), more than a fast model's whole ``run()``; so the hand-off is per *batch*:

* the loop puts each call on one queue; a run thread that is already busy takes the next call
  without being woken;
* a finished call is added to a list, and only the first one added since the loop last emptied
  the list wakes the loop (``call_soon_threadsafe``). The loop then answers every finished call
  in one turn.

Under load the calls that queue up while the loop is parsing go over in one hand-off, and back
in one. ``SCORING_TIMEOUT_MS`` is held by one loop timer, armed while calls are pending: a call
that overruns gets its 500 at the timeout; pure-Python work is interrupted (an async exception),
and the thread is *abandoned* and replaced by a fresh one, so the next calls never queue behind
code stuck in native code. An abandoned thread ends when its call returns. When more than
``SCORING_MAX_STUCK_RUNS`` abandoned threads are still stuck, ``on_stuck`` is called: the
service recycles the worker process (only a new process gets such threads back).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from .admission import Admission, QueueFull
from .settle import settle as _settle
from .settle import settle_on as _settle_on

__all__ = ["Interrupt", "QueueFull", "RunFailed", "RunThreads", "ScoringTimeout"]

log = logging.getLogger("scoring")

T = TypeVar("T")

# The loop waits for a batch of calls itself (see RunThreads._flush) while calls take less
# than FAST_CALL_SECONDS on average, for SYNC_WAIT_SECONDS at most: far below the 50 ms in which
# ``/`` and ``/ready`` must answer during any run().
FAST_CALL_SECONDS = 0.002
SYNC_WAIT_SECONDS = 0.005
MAX_DEFERRALS = 8
FAST_AFTER_CALLS = 8  # calls timed before the average counts


def _getcpu() -> Callable[[], int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):  # pragma: no cover - not glibc/musl
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = []
    return fn if hasattr(os, "sched_setaffinity") else None


_sched_getcpu = _getcpu()


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


class Job:
    __slots__ = ("due", "fn", "fut", "loop", "state", "timed")

    def __init__(self, fn: Callable[[], Any], fut: asyncio.Future[Any], timed: bool) -> None:
        self.fn = fn
        self.fut = fut
        self.loop = fut.get_loop()
        self.state = RunState()
        self.timed = timed
        self.due = 0.0  # when its queue wait runs out (monotonic; 0: no limit)


class _Worker:
    __slots__ = ("abandoned", "current", "thread")

    def __init__(self) -> None:
        self.abandoned = False
        self.current: Job | None = None
        self.thread: threading.Thread | None = None


class RunThreads:
    """``threads`` run threads sharing one queue, with batched hand-offs and a timeout."""

    def __init__(
        self,
        threads: int,
        timeout: float,
        max_stuck: int,
        on_stuck: Callable[[int], None] = lambda n: None,
        max_wait: float = 0.0,
    ) -> None:
        """``max_wait``: the queue wait limit in seconds (:mod:`scoring.admission`; 0: none)."""
        self.timeout = timeout
        self.max_stuck = max_stuck
        self.on_stuck = on_stuck
        self._jobs: deque[Job | None] = deque()
        # Wake-up tokens for idle run threads: a pipe, because os.write and os.read let go of
        # the GIL around the system call. Waking a thread from a lock release or a queue put
        # holds the GIL while the woken thread starts; it then blocks on the GIL at once.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        weakref.finalize(self, os.close, self._wake_r)
        self._threads = threads
        self._done: list[tuple[Job, bool, Any]] = []
        self._done_lock = threading.Lock()
        self._wake_pending = False
        self._workers: set[_Worker] = set()
        self._stuck: list[_Worker] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0  # submitted, not yet answered (loop side)
        self._batch: list[Job] = []  # submitted in this loop turn, not yet on the queue
        self._batch_loop: asyncio.AbstractEventLoop | None = None
        self._unfinished = 0  # on the queue or running, not abandoned (under _done_lock)
        self._waiting = False  # the loop is blocked in _flush waiting for _unfinished == 0
        self._sync = threading.Lock()  # held, except when a run thread ends the loop's wait
        self._sync.acquire()
        self._average = 0.0  # seconds per call, moving average (run thread side)
        self._deferred = 0
        self._cpu = -1  # the CPU the run threads are kept on (-1: the process's CPUs)
        self._cpus: set[int] = (
            os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        )
        self._started = 0
        self.calls = 0
        self.wakeups = 0
        self.timeouts = 0
        self.admission = Admission(self, max_wait) if max_wait > 0 else None
        for _ in range(threads):
            self._spawn()

    @property
    def threads(self) -> int:
        return self._threads

    @property
    def pending(self) -> int:
        """Calls submitted and not yet answered: running or queued."""
        return self._pending

    @property
    def average(self) -> float:
        """Seconds per call, moving average."""
        return self._average

    # -- loop side ------------------------------------------------------------------------------

    def submit(self, fn: Callable[[], T], *, timed: bool = True) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        job = Job(fn, fut, timed)
        if timed and self.admission is not None:
            refused = self.admission.admit(job, loop)
            if refused is not None:
                fut.set_exception(refused)
                return fut
        self._pending += 1
        if timed and (self._timer is None or self._timer_loop is not loop):
            self._arm(loop, self.timeout)
        if not self._batch:
            self._batch_loop = loop
            loop.call_soon(self._flush)
        elif self._batch_loop is not loop:  # another loop's turn: no batch to join
            with self._done_lock:
                self._unfinished += 1
            self._jobs.append(job)
            self._wake(1)
            return fut
        self._batch.append(job)
        return fut

    def _flush(self) -> None:
        """Queue this turn's calls; while calls are fast, wait for them here (a bounded wait).

        It runs when the loop has nothing else to do in this turn (deferred a few turns at
        most), so a batch holds every request that was read. While the loop waits, its thread
        holds no GIL: the run thread has the interpreter to itself and ends the wait once, when
        every call is done; the answers are settled here, with no self-pipe write and no extra
        turn. The wait never exceeds ``SYNC_WAIT_SECONDS``: calls still running then come back
        as slow calls do (one ``call_soon_threadsafe`` per batch), and ``/`` and ``/ready``
        answer during any run().
        """
        loop = self._batch_loop
        ready = getattr(loop, "_ready", None)  # callbacks due in this turn or the next
        if ready and self._deferred < MAX_DEFERRALS:
            self._deferred += 1
            loop.call_soon(self._flush)  # type: ignore[union-attr]
            return
        self._deferred = 0
        batch, self._batch = self._batch, []
        fast = self.calls >= FAST_AFTER_CALLS and self._average < FAST_CALL_SECONDS
        self._follow(fast)
        with self._done_lock:
            self._unfinished += len(batch)
            self._waiting = fast
        self._jobs.extend(batch)
        self._wake(len(batch))
        if not fast:
            return
        released = self._sync.acquire(timeout=SYNC_WAIT_SECONDS)
        with self._done_lock:
            if self._waiting:  # timed out: the calls left come back through _deliver
                self._waiting = False
            elif not released:  # released just after the timeout: take the lock back
                self._sync.acquire()
        self._deliver()

    def _follow(self, fast: bool) -> None:
        """While calls are fast, keep the run threads on the loop thread's CPU.

        The loop and the run threads take turns (the GIL lets one run at a time); on one CPU a
        hand-off is a plain switch when the waker blocks, while across CPUs each wake-up is an
        inter-processor interrupt (a VM exit on a virtual machine) and the woken thread spins
        up while the waker still holds the GIL. The loop thread itself is never pinned: the
        scheduler moves it as it likes, and the run threads follow at the next batch. Slow
        calls (which may use other cores without the GIL) get the process's CPUs back.
        """
        cpu = _sched_getcpu() if fast and _sched_getcpu is not None else -1
        if cpu == self._cpu:
            return
        self._cpu = cpu
        cpus = {cpu} if cpu >= 0 else self._cpus
        for worker in self._workers:
            native = worker.thread.native_id if worker.thread is not None else None
            if native:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(native, cpus)

    def _arm(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self._timer = loop.call_later(delay, self._check)
        self._timer_loop = loop

    def _check(self) -> None:
        """The loop timer: answer and abandon calls that overran; re-arm while work is left."""
        self._timer = None
        now = time.monotonic()
        next_due: float | None = None
        for worker in list(self._workers):
            job = worker.current
            if job is None or not job.timed or job.state.started is None:
                continue
            due = job.state.started + self.timeout
            if due <= now:
                self._expire(worker, job)
            elif next_due is None or due < next_due:
                next_due = due
        if next_due is not None:
            self._arm(asyncio.get_running_loop(), max(next_due - now, 0.001))
        elif self._pending > 0:
            self._arm(asyncio.get_running_loop(), self.timeout)

    def _expire(self, worker: _Worker, job: Job) -> None:
        state = job.state
        with state.lock:
            if state.finished:
                return
            state.interrupted = True
            async_raise(state.thread_id, Interrupt)  # stops pure-Python work, not C code
        self.timeouts += 1
        self._pending -= 1
        with self._done_lock:
            self._unfinished -= 1
        worker.abandoned = True
        self._workers.discard(worker)
        self._stuck.append(worker)
        self._spawn()  # the queued calls go on at once, not behind the stuck one
        _settle_on(job, False, ScoringTimeout())
        stuck = self.stuck()
        if stuck > self.max_stuck:
            self.on_stuck(stuck)

    def stuck(self) -> int:
        """Abandoned run threads whose call has still not returned."""
        self._stuck = [w for w in self._stuck if w.thread is not None and w.thread.is_alive()]
        return len(self._stuck)

    def _deliver(self) -> None:
        with self._done_lock:
            done, self._done = self._done, []
            self._wake_pending = False
        if not done:
            return
        self.wakeups += 1
        self._pending -= len(done)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - called from a loop's callback
            loop = None
        for job, ok, value in done:
            if job.loop is loop:
                _settle(job.fut, ok, value)
            else:
                _settle_on(job, ok, value)

    def oldest(self) -> Job | None:
        """The call at the head of the queue (not started), if any (loop side)."""
        try:
            return self._jobs[0]
        except IndexError:
            return None

    def withdraw(self, job: Job) -> bool:
        """Take a call off the queue before a run thread starts it (loop side)."""
        try:
            self._jobs.remove(job)
        except ValueError:  # a run thread took it
            return False
        with self._done_lock:
            self._unfinished -= 1
        self._pending -= 1
        return True

    def stop(self) -> None:
        if self.admission is not None:
            self.admission.stop()
        self._jobs.extend([None] * len(self._workers))
        self._wake(len(self._workers))
        if self._wake_w >= 0:  # the threads read the tokens left, then the end of the pipe
            os.close(self._wake_w)
            self._wake_w = -1
        if self._timer is not None:
            self._timer.cancel()

    def status(self) -> dict[str, Any]:
        return {
            "where": "run thread",
            "threads": len(self._workers),
            "thread_calls": self.calls,
            "hand_offs": self.wakeups,
            "timeouts": self.timeouts,
            "stuck_threads": self.stuck(),
            "max_stuck": self.max_stuck,
            "queue": self.admission.status() if self.admission is not None else None,
        }

    # -- thread side ----------------------------------------------------------------------------

    def _spawn(self) -> None:
        self._cpu = -1  # a new thread has the process's CPUs: the next batch places it
        worker = _Worker()
        self._started += 1
        worker.thread = threading.Thread(
            target=self._work, args=(worker,), name=f"run-{self._started}", daemon=True
        )
        self._workers.add(worker)
        worker.thread.start()

    def _wake(self, jobs: int) -> None:
        # a full pipe holds tokens enough; a closed one: stopped, nothing to wake
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0" * min(jobs, self._threads))

    def _next(self) -> Job | None:
        """The next job; blocks (without the GIL) until one is queued."""
        jobs = self._jobs
        while True:
            try:
                return jobs.popleft()
            except IndexError:
                if not os.read(self._wake_r, 1):
                    return None

    def _work(self, worker: _Worker) -> None:
        while not worker.abandoned:
            try:
                job = self._next()
                if job is None:
                    return
                if job.fut.done():  # cancelled: the client went away
                    self._post(job, True, None)  # still counted as answered
                    continue
                worker.current = job
                try:
                    value, ok = call_timed(job.state, job.fn), True
                except Interrupt:
                    raise
                except BaseException as exc:  # init() may raise SystemExit: still answered
                    value, ok = exc, False
                worker.current = None
                if job.state.interrupted:
                    continue  # the loop has answered it; this worker is abandoned
                self.calls += 1
                if job.timed:
                    self._average += (job.state.elapsed - self._average) * 0.125
                self._post(job, ok, value)
            except Interrupt:  # a late interrupt outside the call: already answered
                continue

    def _post(self, job: Job, ok: bool, value: Any) -> None:
        with self._done_lock:
            self._done.append((job, ok, value))
            self._unfinished -= 1
            if self._waiting:  # the loop waits in _flush: end its wait when all are done
                if self._unfinished <= 0:
                    self._waiting = False
                    self._sync.release()
                return
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            job.loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # that loop is closed: answer the others where they wait
            with self._done_lock:
                done, self._done = self._done, []
                self._wake_pending = False
            for other, other_ok, other_value in done:
                _settle_on(other, other_ok, other_value)
