"""The access log: one line per scoring request, written in batches.

Through the ``logging`` module a line per request costs about a tenth of a fast model's
throughput (a LogRecord, a formatted timestamp, a locked write and a flush each). Here a line is
one f-string appended to a list; the event loop writes the list at most every 0.2 s, or when it
holds 256 lines, and at shutdown.

A line is azmlinfsrv's (its ``routes.py`` after-request log through its ``logging.json``
formatter): ``2026-12-01 21:28:02,123 I [<pid>] azmlinfsrv - POST /score 200 1.776ms 15``, UTC
time, so the log queries written for Azure ML's server match it; this host's own fields
(``cache=hit``) follow.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import TextIO


class AccessLog:
    def __init__(
        self, stream: TextIO | None = None, interval: float = 0.2, max_lines: int = 256
    ) -> None:
        self._stream = stream
        self._interval = interval
        self._max_lines = max_lines
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._prefix = ""
        self._pid = os.getpid()

    def line(self, text: str) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        millis = int((now - second) * 1000)
        self._lines.append(f"{self._prefix},{millis:03d} I [{self._pid}] azmlinfsrv - {text}\n")
        if len(self._lines) >= self._max_lines:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a synchronous caller): write at once
                self.flush()
            else:
                self._timer = loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        stream = self._stream or sys.stderr
        text = "".join(self._lines)
        self._lines.clear()
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # closed or broken stream: drop, as logging does
            pass
