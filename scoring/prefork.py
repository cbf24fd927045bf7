"""Workers forked after ``init()``: one copy of the model for all of them (``gunicorn --preload``).

With ``WORKER_COUNT`` > 1 the main process binds the port, imports the entry script and runs
its ``init()`` once, then forks the workers: each one serves the socket with the model the main
process loaded, its pages shared copy-on-write. Cold start is one ``init()``, not one a worker,
and the workers' memory stays near one worker's (``tests/scoring/test_prefork.py``,
``bench/overload.py``). ``gc.freeze()`` before the fork keeps the collector from writing to
every object the model holds (which would copy its pages).

A script that cannot be forked safely opts out with ``SCORING_PRELOAD=false``: then each worker
is a spawned process that imports the script and runs ``init()`` itself. A GPU context cannot be
detected; threads can: when ``init()`` leaves threads running (a thread is not copied into a
fork), the host says so and starts again with ``SCORING_PRELOAD=false`` (``os.execv``, the same
process id), so the model is loaded once a worker and the threads live in each.

The main process supervises: a worker that exits is forked again from it (the model is still
there: a replaced worker starts in milliseconds); ``SIGTERM`` or ``SIGINT`` stop every worker
gracefully (uvicorn's shutdown in each), then the main process.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from .config import Settings

log = logging.getLogger("scoring")

RESTART_PAUSE_SECONDS = 1.0  # a worker that died younger than this is replaced after a pause
STOP_GRACE_SECONDS = 30.0


def listen(settings: Settings, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def preload(settings: Settings) -> tuple[Any, float] | None:
    """Import the entry script and run its init() here. None: the script left threads running
    (the caller starts again without preloading)."""
    from .entry import UserScript

    before = {t.ident for t in threading.enumerate()}
    t0 = time.perf_counter()
    script = UserScript(settings.entry_script)
    script.init()
    seconds = time.perf_counter() - t0
    started = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    if started:
        log.warning(
            "init() started %d thread(s) (%s), which a forked worker would not have: starting "
            "again with SCORING_PRELOAD=false (each worker runs init() itself; set it to skip "
            "this first init())",
            len(started),
            ", ".join(t.name for t in started[:5]),
        )
        return None
    log.info("init() completed in %.3fs in the main process %d", seconds, os.getpid())
    return script, seconds


def restart_without_preload() -> None:
    """Replace this process with the host without preloading (same pid, same arguments)."""
    logging.shutdown()
    os.environ["SCORING_PRELOAD"] = "false"
    os.execv(sys.executable, [sys.executable, "-m", "scoring", *sys.argv[1:]])


class Supervisor:
    """Forks the workers from the process holding the model, and replaces those that exit."""

    def __init__(self, settings: Settings, sock: socket.socket, serve: Any) -> None:
        self.settings = settings
        self.sock = sock
        self.serve = serve  # serve(sock) in a forked worker: uvicorn until it stops
        self.workers: dict[int, float] = {}  # pid: when forked
        self.stopping = False

    def run(self) -> int:
        gc.collect()
        gc.freeze()  # the collector no longer writes to what init() made: pages stay shared
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for _ in range(self.settings.worker_count):
                self._fork()
            self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _fork(self) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                gc.unfreeze()
                self.serve(self.sock)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        self.workers[pid] = time.monotonic()

    def _watch(self) -> None:
        deadline: float | None = None
        while self.workers:
            if self.stopping and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_SECONDS
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                if deadline is not None and time.monotonic() > deadline:
                    self._signal(signal.SIGKILL)
                time.sleep(0.1)
                continue
            forked = self.workers.pop(pid, None)
            if forked is None or self.stopping:
                continue
            log.error("worker %d exited (%s): forking a new one", pid, _exit_text(status))
            if time.monotonic() - forked < RESTART_PAUSE_SECONDS:
                time.sleep(RESTART_PAUSE_SECONDS)
            if not self.stopping:
                self._fork()

    def _stop(self, signum: int, _frame: Any) -> None:
        if not self.stopping:
            log.info("stopping %d worker(s) (%s)", len(self.workers), signal.Signals(signum).name)
        self.stopping = True
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
