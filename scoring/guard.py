"""A layer in front of uvicorn's httptools parser against hostile clients.

uvicorn (0.54) with httptools keeps every byte of a request head until it ends: the URL is
concatenated as it arrives and llhttp buffers a header line of any length, so a never-ending URL
or header flood grows without bound. It has no timeout for a request being sent (its keep-alive
timer only runs between requests) and ``limit_concurrency`` answers 503 but keeps the connection.
So :class:`GuardedHttpTools` subclasses its protocol and, before the parser sees the bytes:

* counts the request head as gunicorn (azmlinfsrv's server) does: a request line over 4094
  bytes is a **414**, a header line over 8190 bytes or more than 100 headers a **431**, and a
  whole head over 64 KiB a 431, each with a JSON reason, then the connection is closed. A
  connection never holds more than one head (plus one read) in memory;
* closes a keep-alive connection idle for ``SCORING_KEEP_ALIVE_SECONDS`` (uvicorn's timer per
  response is replaced by the sweep below);
* drops a connection whose request head has not arrived ``SCORING_STALL_TIMEOUT_SECONDS`` (20)
  after it began (408) or whose body sends nothing for as long; one timer per process sweeps
  every connection once a second, so a request costs no timer;
* caps open connections at ``SCORING_MAX_CONNECTIONS`` (default: the open-files limit less two
  listen backlogs and 64 for the model, logs and Redis). asyncio accepts up to a backlog's worth
  of connections in one go, and a connection closed for room is freed a loop turn later, so the
  backlog is an eighth of the open-files limit (at most uvicorn's 2048): the cap plus two
  bursts stays under the limit, and accept does not fail with "Too many open files". At the
  cap a new connection closes the oldest idle or half-sent one, so a probe still gets in; when
  every one is busy the new one gets a 503. Both are logged, at most every 10 s with a count.

A common request (whole head in one read, shorter than 8190 bytes) costs three C-level scans.

A keep-alive ``POST /score`` with nothing else in flight on its connection skips uvicorn's ASGI
task: the protocol hands it, whole, to :mod:`scoring.direct` and the answer is written by
:meth:`scoring.cycle.ScoringCycle.reply` (:meth:`GuardedHttpTools._goes_direct` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .config import ConfigError
from .cycle import ScoringCycle

log = logging.getLogger("scoring")

MAX_REQUEST_LINE = 4094  # gunicorn's limit_request_line
MAX_FIELD = 8190  # gunicorn's limit_request_field_size
MAX_HEADERS = 100  # gunicorn's limit_request_fields
MAX_HEAD = 64 * 1024
DEFAULT_STALL_SECONDS = 20.0
FD_RESERVE = 64
MAX_BACKLOG = 2048  # uvicorn's default

IDLE, HEAD, BODY, BUSY = 0, 1, 2, 3


@dataclass(frozen=True)
class Limits:
    stall_seconds: float = DEFAULT_STALL_SECONDS
    max_connections: int = 1024
    backlog: int = MAX_BACKLOG
    max_request_line: int = MAX_REQUEST_LINE
    max_field: int = MAX_FIELD
    max_headers: int = MAX_HEADERS
    max_head: int = MAX_HEAD


def _open_files() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def raise_open_files_limit() -> None:
    """Lift the soft open-files limit to the hard one (what a connection cap can use)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def guard_limits(env: Mapping[str, str]) -> Limits:
    raw = (env.get("SCORING_STALL_TIMEOUT_SECONDS") or "").strip()
    try:
        stall = float(raw) if raw else DEFAULT_STALL_SECONDS
    except ValueError:
        raise ConfigError(f"SCORING_STALL_TIMEOUT_SECONDS={raw!r}: expected seconds") from None
    if not stall > 0:
        raise ConfigError(f"SCORING_STALL_TIMEOUT_SECONDS={raw!r}: must be > 0")
    files = _open_files()
    backlog = max(min(MAX_BACKLOG, files // 8), 16)
    default_cap = max(files - 2 * backlog - FD_RESERVE, 16)  # two bursts before a close lands
    raw = (env.get("SCORING_MAX_CONNECTIONS") or "").strip()
    try:
        cap = int(raw) if raw else default_cap
    except ValueError:
        raise ConfigError(f"SCORING_MAX_CONNECTIONS={raw!r}: expected an integer") from None
    if cap < 1:
        raise ConfigError(f"SCORING_MAX_CONNECTIONS={raw!r}: must be >= 1")
    return Limits(stall_seconds=stall, max_connections=cap, backlog=backlog)


class _RateLog:
    """A warning at most every ``every`` seconds, with how many it stands for."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def warn(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        self._count[kind] = self._count.get(kind, 0) + 1
        if now - self._last.get(kind, -self.every) >= self.every:
            count = self._count.pop(kind)
            self._last[kind] = now
            log.warning(message + " (%d in the last %.0fs)", *args, count, self.every)


_rate_log = _RateLog()
_limits: Limits | None = None


def limits() -> Limits:
    global _limits
    if _limits is None:
        _limits = guard_limits(os.environ)
    return _limits


def _raw_response(status: int, message: str) -> bytes:
    body = json.dumps({"message": message}).encode()
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
    )


# uvicorn's httptools protocol builds its cycles from this module-level name.
httptools_impl.RequestResponseCycle = ScoringCycle  # type: ignore[misc]


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with head limits, stall timeouts and a connection cap."""

    _phase = IDLE
    _since = 0.0
    _line = 0  # bytes of the head line not ended yet
    _lines = 0  # lines ended in this head (the first is the request line)
    _head = 0  # bytes of this head so far

    _direct: Any = None  # the app's direct path (scoring.direct.DirectPath), when it has one

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        app = self.app.app if isinstance(self.app, ProxyHeadersMiddleware) else self.app
        self._direct = getattr(app, "direct_path", None)
        self._phase, self._since = HEAD, self.loop.time()
        _Sweeper.ensure(self)
        if len(self.connections) > limits().max_connections:
            self._shed()

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase == BODY:
            self._since = self.loop.time()
        elif phase != HEAD or (self._lines == 0 and self._line == 0 and self._head == 0):
            if phase != HEAD:
                self._phase, self._since = HEAD, self.loop.time()
            refused = self._scan_fresh(data)
            if refused is not None:
                self._refuse(*refused)
                return
        else:
            refused = self._scan(data)
            if refused is not None:
                self._refuse(*refused)
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._phase, self._since = BODY, self.loop.time()
        self._line = self._lines = self._head = 0
        if self._direct is not None and self._goes_direct():
            self._direct_cycle()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle.direct and cycle.more_body:  # no reader to resume reading: the length is
            cycle.body += body  # within SCORING_MAX_BODY_BYTES (direct_accepts)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase = BUSY
        cycle = self.cycle
        if cycle.direct and cycle.more_body:
            cycle.more_body = False
            self._direct.score(self, cycle)
            return
        super().on_message_complete()

    # -- the direct path ------------------------------------------------------------------------

    def _goes_direct(self) -> bool:
        """A plain keep-alive ``POST /score`` on a connection with nothing in flight skips the
        ASGI task (scoring.direct); anything else (pipelined, ``Expect``, an upgrade, a
        slow reader, HTTP/1.0, chunked, a query) takes uvicorn's way. The proxy-headers
        middleware is skipped too: the client address it rewrites is only read for
        ``@rawhttp`` scripts, which never go direct."""
        parser = self.parser
        cycle = self.cycle
        return (
            parser.get_method() == b"POST"
            and (cycle is None or cycle.response_complete)
            and not self.expect_100_continue
            and parser.get_http_version() == "1.1"
            and parser.should_keep_alive()
            and not parser.should_upgrade()
            and not self.flow.write_paused
            and self.limit_concurrency is None
            and self._direct.accepts(self.url, self.headers)
        )

    def _direct_cycle(self) -> None:
        """The request's cycle, as uvicorn's on_headers_complete makes it, without its task."""
        scope = self.scope
        scope["method"] = "POST"
        scope["path"] = self.url.decode("ascii")
        scope["raw_path"] = self.url
        scope["query_string"] = b""
        cycle = ScoringCycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=True,
            on_response=self.on_response_complete,
        )
        cycle.direct = True
        self.cycle = cycle

    def on_response_complete(self) -> None:
        """uvicorn's, except the keep-alive timeout: the sweeper closes a connection idle for
        ``timeout_keep_alive`` (a timer armed and cancelled per request costs more than the
        rest of this)."""
        if self._phase == BUSY:
            self._phase, self._since = IDLE, self.loop.time()
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)

    # -- request head ---------------------------------------------------------------------------

    def _scan_fresh(self, data: bytes) -> tuple[int, str] | None:
        """A head that starts with this read; the common case takes three C-level scans."""
        end = data.find(b"\r\n\r\n")
        if 0 <= end < MAX_FIELD:  # every line is shorter than a header line may be
            if data.find(b"\n") > MAX_REQUEST_LINE + 1:
                return 414, f"Request line exceeds {MAX_REQUEST_LINE} bytes"
            if data.count(b"\n", 0, end) > MAX_HEADERS:
                return 431, f"More than {MAX_HEADERS} request headers"
            return None
        self._line = self._lines = self._head = 0
        return self._scan(data)

    def _scan(self, data: bytes) -> tuple[int, str] | None:
        """Count the head's lines in this read; stop at its end (the rest is body)."""
        pos, n = 0, len(data)
        while pos < n:
            nl = data.find(b"\n", pos)
            end = n if nl < 0 else nl
            length = self._line + end - pos  # this line so far, without its LF (CR included)
            self._head += end - pos + (nl >= 0)
            first = self._lines == 0
            if length > (MAX_REQUEST_LINE if first else MAX_FIELD) + 1:
                if first:
                    return 414, f"Request line exceeds {MAX_REQUEST_LINE} bytes"
                return 431, f"A request header line exceeds {MAX_FIELD} bytes"
            if self._head > MAX_HEAD:
                return 431, f"Request headers exceed {MAX_HEAD} bytes"
            if nl < 0:
                self._line = length
                return None
            self._line = 0
            pos = nl + 1
            if length <= 1:  # an empty line: before the request line, or the head's end
                if not first:
                    self._lines = self._head = 0
                    return None
                continue
            self._lines += 1
            if self._lines > MAX_HEADERS + 1:
                return 431, f"More than {MAX_HEADERS} request headers"
        return None

    def _refuse(self, status: int, message: str) -> None:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        _rate_log.warn(
            f"refused-{status}", "refused a request from %s: %d %s", client, status, message
        )
        self._phase = BUSY
        if not self.transport.is_closing():
            self.transport.write(_raw_response(status, message))
            self.transport.close()

    # -- stalls and the connection cap ----------------------------------------------------------

    def _in_flight(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def stalled(self, now: float, seconds: float) -> bool:
        if now - self._since <= seconds:
            return False
        return self._phase == BODY or (self._phase == HEAD and not self._in_flight())

    def idle_expired(self, now: float) -> bool:
        """Idle between requests for longer than the keep-alive timeout."""
        return self._phase == IDLE and now - self._since > self.timeout_keep_alive

    def drop_stalled(self, seconds: float) -> None:
        what = "head" if self._phase == HEAD else "body"
        _rate_log.warn(
            f"stall-{what}",
            "dropped a connection whose request %s stalled for %.0fs "
            "(SCORING_STALL_TIMEOUT_SECONDS)",
            what,
            seconds,
        )
        if self._phase == HEAD and not self.transport.is_closing():
            self.transport.write(_raw_response(408, f"Request head not received in {seconds:.0f}s"))
        self._phase = BUSY
        self.transport.close()

    def _shed(self) -> None:
        cap = limits().max_connections
        victim: GuardedHttpTools | None = None
        for conn in self.connections:
            if (
                conn is not self
                and isinstance(conn, GuardedHttpTools)
                and conn._phase in (IDLE, HEAD)
                and not conn._in_flight()
                and not conn.transport.is_closing()
                and (victim is None or conn._since < victim._since)
            ):
                victim = conn
        if victim is not None:
            _rate_log.warn(
                "cap-evict",
                "connection cap reached (SCORING_MAX_CONNECTIONS=%d): closed the oldest idle or "
                "half-sent connection for a new one",
                cap,
            )
            victim._phase = BUSY
            victim.transport.close()
            return
        _rate_log.warn(
            "cap-refuse",
            "connection cap reached (SCORING_MAX_CONNECTIONS=%d), every connection busy: "
            "refused a new one with 503",
            cap,
        )
        self._phase = BUSY
        self.transport.write(_raw_response(503, "Too many open connections; retry later"))
        self.transport.close()


class _Sweeper:
    """One timer per event loop: drops the stalled connections once a second."""

    _loops: dict[int, _Sweeper] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        self.loop = loop
        self.servers = [connections]  # each server's set (a health listener has its own)
        self.seconds = limits().stall_seconds
        self.period = min(1.0, self.seconds / 4)
        loop.call_later(self.period, self.sweep)

    @classmethod
    def ensure(cls, conn: GuardedHttpTools) -> None:
        key = id(conn.loop)
        sweeper = cls._loops.get(key)
        if sweeper is None or sweeper.loop is not conn.loop or sweeper.loop.is_closed():
            cls._loops[key] = cls(conn.loop, conn.connections)
        elif not any(c is conn.connections for c in sweeper.servers):
            sweeper.servers.append(conn.connections)

    def sweep(self) -> None:
        now = self.loop.time()
        for conn in [c for connections in self.servers for c in connections]:
            if not isinstance(conn, GuardedHttpTools):
                continue
            if conn.stalled(now, self.seconds):
                conn.drop_stalled(self.seconds)
            elif conn.idle_expired(now) and not conn.transport.is_closing():
                conn.transport.close()  # the keep-alive timeout, as uvicorn's timer would
        self.loop.call_later(self.period, self.sweep)
