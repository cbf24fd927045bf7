"""POST /score without the ASGI round: the host's direct path.

A keep-alive ``POST /score`` that :class:`scoring.guard.GuardedHttpTools` read whole, on a
connection with nothing else in flight, comes here instead of becoming an ASGI task: what
:meth:`scoring.app.ScoringApp._http` does for it, with the run thread's answer taken by a
callback rather than awaited. A task per request, the ASGI messages and uvicorn's proxy-headers
middleware cost a fast model about a tenth of its throughput (``python bench/host_micro.py``).
The answer is built by the same code as the ASGI path's (:mod:`scoring.replies`, the app's
``opening``, ``closing``, ``check_auth`` and ``answered``); ``tests/scoring/test_direct.py``
sends requests both ways and compares the answers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .observability.metrics import IN_FLIGHT
from .replies import decoded, response_headers, unexpected
from .service import ScoreRequest, ScoreResponse

if TYPE_CHECKING:
    from .config import Settings
    from .observability import Observability
    from .service import ScoringService


class App(Protocol):
    """What the direct path uses of the app that composes it (:class:`scoring.app.ScoringApp`:
    typed by this protocol, so the app imports this module and not the reverse)."""

    settings: Settings
    service: ScoringService | None
    obs: Observability
    closing: Callable[..., Any]
    opening: Callable[..., Any]
    answered: Callable[..., Any]
    check_auth: Callable[..., ScoreResponse | None]
    send_answer: Callable[..., Any]


log = logging.getLogger("scoring")


class DirectPath:
    """One per app: which requests may go direct, and serving them."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.max_body = app.settings.max_body_bytes
        prefix = app.settings.service_path_prefix
        self.urls = {b"/score", *([f"{prefix}/score".encode()] if prefix else [])}
        self._cells = app.obs.metrics.cells  # the in-flight gauge, updated inline
        self.requests = 0  # answered here (in /status)

    def accepts(self, url: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether :class:`scoring.guard.GuardedHttpTools` may hand this POST to :meth:`score`:
        /score, a body of a declared length within the limit, a service that needs no await
        before the run thread (:attr:`ScoringService.direct`)."""
        if url not in self.urls:
            return False
        service = self.app.service
        if service is None or not service.direct:
            return False
        length = None
        for name, value in headers:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                return False
        return length is not None and length.isdigit() and int(length) <= self.max_body

    def score(self, conn: Any, cycle: Any) -> None:
        """Serve a POST /score the protocol read whole; ``cycle`` is its
        :class:`scoring.cycle.ScoringCycle` (uvicorn's, never run as a task), which writes the
        answer."""
        t0 = time.perf_counter()
        self._cells[IN_FLIGHT] += 1.0
        self.requests += 1
        scope = cycle.scope
        headers, hmap = decoded(scope["headers"])
        out_headers, ids, resp = self.app.opening(hmap)
        reply = functools.partial(self._reply, conn, cycle, t0, hmap, out_headers, ids)
        body: bytes | None = None
        try:
            if resp is None:
                resp = self.app.check_auth(hmap)
            if resp is None:
                service = self.app.service
                assert service is not None  # accepts() saw it
                body = bytes(cycle.body)
                req = ScoreRequest(
                    method="POST",
                    body=body,
                    headers=headers,
                    scheme=scope["scheme"],
                    server=scope["server"],
                    client=scope["client"],
                )
                prepared = service.prepare(req)
                if isinstance(prepared, ScoreResponse):
                    resp = prepared
                else:
                    fut = service.submit(prepared)
                    fut.add_done_callback(functools.partial(self._done, reply, body))
                    return
        except Exception:
            resp = unexpected("POST", "/score")
        reply(body, resp)

    def _done(self, reply: Any, body: bytes, fut: asyncio.Future[ScoreResponse]) -> None:
        service = self.app.service
        assert service is not None
        try:
            resp = service.outcome(fut)
        except Exception:
            resp = unexpected("POST", "/score")
        reply(body, resp)

    def _reply(
        self,
        conn: Any,
        cycle: Any,
        t0: float,
        hmap: dict[str, str],
        out_headers: list[tuple[bytes, bytes]],
        ids: list[tuple[bytes, bytes]],
        body: bytes | None,
        resp: ScoreResponse,
    ) -> None:
        self.app.closing(out_headers, hmap, "/score", "POST")
        done = functools.partial(self._end, t0, hmap, ids, body, resp)
        if resp.stream is not None:  # one chunk per item: through the cycle's ASGI send
            task = asyncio.get_running_loop().create_task(
                self._stream(cycle, out_headers, resp, done)
            )
            conn.tasks.add(task)  # a graceful shutdown waits for it, as for uvicorn's own
            task.add_done_callback(conn.tasks.discard)
            return
        try:
            headers = response_headers(resp, out_headers, "/score", False)
            cycle.reply(resp.status, headers, resp.body, plain=not resp.headers)
        except Exception:
            log.error("cannot send the answer to POST /score:\n%s", traceback.format_exc())
            cycle.transport.close()
        finally:
            done()

    async def _stream(
        self, cycle: Any, out_headers: list[tuple[bytes, bytes]], resp: ScoreResponse, done: Any
    ) -> None:
        try:
            await self.app.send_answer(cycle.send, resp, out_headers, "/score", False)
        except Exception:
            log.error("cannot send the answer to POST /score:\n%s", traceback.format_exc())
            cycle.transport.close()
        finally:
            done()

    def _end(
        self,
        t0: float,
        hmap: dict[str, str],
        ids: list[tuple[bytes, bytes]],
        body: bytes | None,
        resp: ScoreResponse,
    ) -> None:
        self._cells[IN_FLIGHT] -= 1.0
        self.app.answered(t0, "/score", "POST", resp, hmap, ids, body)
