"""The HTTP host: a small ASGI application (served by uvicorn) around the scoring core.

Routes: ``GET /`` liveness, ``GET /ready`` readiness, ``GET /status``, ``GET|POST /score``,
``GET /swagger.json?version=2|3``, ``GET /metrics`` (Prometheus, :mod:`scoring.observability`);
anything else is 404. With ``SERVICE_PATH_PREFIX`` the
routes answer under the prefix too. The entry script is imported and its ``init()`` run in the
background after the socket is listening: ``/ready`` turns 200 when ``init()`` has completed in
this worker, while ``GET /`` and ``/score`` wait for it, as azmlinfsrv's do (its worker accepts
nothing before ``init()`` has run), so a liveness probe written for it never lets traffic in
early. ``--health_port`` adds a second listener serving the same routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .accesslog import AccessLog
from .config import Settings, unresolved_message
from .direct import DirectPath
from .headers import CORS_PATHS, HEADER_LIMIT, Cors, request_ids
from .health import health_listener
from .observability import CONTENT_TYPE as METRICS_TYPE
from .observability import Observability
from .observability.metrics import IN_FLIGHT
from .replies import decoded, response_headers, unexpected
from .service import ScoreRequest, ScoreResponse, ScoringService, error_response
from .swagger import SwaggerError, build, user_documents

__all__ = ["HEADER_LIMIT", "ScoringApp", "create_app"]

log = logging.getLogger("scoring")
access_log = logging.getLogger("scoring.access")

_JSON = b"application/json"
_END = object()


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _json(status: int, obj: Any) -> ScoreResponse:
    return ScoreResponse(status, json.dumps(obj).encode())


class ScoringApp:
    """ASGI application; one instance per worker process."""

    def __init__(self, settings: Settings, service: ScoringService | None = None) -> None:
        self.settings = settings
        self.service = service
        self.boot_error: str | None = None
        self._keys = [k.encode() for k in settings.auth_keys]
        self._closed = unresolved_message(settings.unresolved_secrets)  # fail closed: 503
        self.access_log = (
            AccessLog() if settings.access_log and access_log.isEnabledFor(logging.INFO) else None
        )
        self._boot_task: asyncio.Task[None] | None = None
        self._booted: asyncio.Event | None = None
        self._prefix = settings.service_path_prefix
        self._cors = Cors(settings.cors_origins) if settings.cors_origins else None
        version = settings.server_version
        self._version = [(b"x-ms-server-version", version.encode("latin-1"))] if version else []
        self._swagger_files = user_documents(settings.app_root)
        self._streams: ThreadPoolExecutor | None = None  # iterates streamed run() outputs
        self._health: Any = None
        self.obs = Observability(settings)
        self._cells = self.obs.metrics.cells  # the in-flight gauge, updated inline
        self.direct_path = DirectPath(self)  # POST /score without the ASGI task (direct.py)

    # -- lifespan -------------------------------------------------------------------------------

    async def _boot(self) -> None:
        loop = asyncio.get_running_loop()
        # the sinks start while the entry script is imported, and before its init() runs
        sinks = loop.run_in_executor(None, self.obs.start)
        try:
            if self.service is None:
                self.service = await loop.run_in_executor(None, ScoringService, self.settings)
            await sinks
            await self.service.start()
            self.obs.init_finished(self.service.init_seconds or 0.0)
            log.info(
                "worker %d ready (model %s:%s)",
                os.getpid(),
                self.settings.model_name,
                self.settings.model_version,
            )
        except BaseException as exc:
            log.critical(
                "cannot start the entry script %s:\n%s",
                self.settings.entry_script,
                traceback.format_exc(),
            )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sinks, 30)
            self.obs.init_failed(exc)  # sent now: the worker exits next
            logging.shutdown()
            sys.stderr.flush()
            os._exit(3)
        if self._booted is not None:
            self._booted.set()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._booted = asyncio.Event()
                if self.settings.health_port not in (None, self.settings.port):
                    self._health = await health_listener(self, self.settings)
                self._boot_task = asyncio.get_running_loop().create_task(self._boot())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._health is not None:
                    await self._health.shutdown()
                if self.service is not None:
                    await self.service.close()
                if self.access_log is not None:
                    self.access_log.flush()
                await asyncio.get_running_loop().run_in_executor(None, self.obs.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _wait_for_init(self) -> None:
        """Requests to ``/`` and ``/score`` made while init() runs wait for it (azmlinfsrv)."""
        booted = self._booted
        if booted is not None and not booted.is_set():
            await booted.wait()

    # -- HTTP -----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        t0 = time.perf_counter()
        path = scope["path"]
        if self._prefix and path.startswith(self._prefix + "/"):
            path = path[len(self._prefix) :]
        scoring = path == "/score"
        if scoring:
            self._cells[IN_FLIGHT] += 1.0  # scoring_requests_in_flight (what KEDA scales on)
        try:
            await self._serve(scope, receive, send, path, t0)
        finally:
            if scoring:
                self._cells[IN_FLIGHT] -= 1.0

    async def _serve(
        self, scope: dict[str, Any], receive: Any, send: Any, path: str, t0: float
    ) -> None:
        headers, hmap = decoded(scope["headers"])
        method = scope["method"]
        close = False
        body: bytes | None = None
        out_headers, ids, refused = self.opening(hmap)
        try:
            if refused is not None:
                resp = refused
            else:
                resp, close, body = await self._route(scope, path, method, headers, hmap, receive)
        except _Disconnected:
            return
        except Exception:
            resp = unexpected(method, path)
        self.closing(out_headers, hmap, path, method)
        await self.send_answer(send, resp, out_headers, path, close)
        self.answered(t0, path, method, resp, hmap, ids, body)

    def opening(
        self, hmap: dict[str, str]
    ) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], ScoreResponse | None]:
        """The response's first headers (server version, request ids), the ids alone, and the
        431 when an id is too long."""
        ids, refused = request_ids(hmap)
        return [*self._version, *ids], ids, refused

    def closing(
        self, out_headers: list[tuple[bytes, bytes]], hmap: dict[str, str], path: str, method: str
    ) -> None:
        """The headers that follow the answer: the client's trace id, CORS."""
        if "traceid" in hmap:
            out_headers.append((b"traceid", hmap["traceid"].encode("latin-1")))
        if self._cors is not None and path in CORS_PATHS:
            out_headers.extend(self._cors.headers(method, hmap))

    def answered(
        self,
        t0: float,
        path: str,
        method: str,
        resp: ScoreResponse,
        hmap: dict[str, str],
        ids: list[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> None:
        """After the response went out: the access log line, metrics and telemetry."""
        seconds = time.perf_counter() - t0
        if self.access_log is not None and path in ("/score", "/swagger.json"):
            self.access_log.line(
                f"{method} {path} {resp.status} {seconds * 1000.0:.3f}ms "
                f"{len(resp.body)}{f' cache={resp.cache}' if resp.cache else ''}"
            )
        self.obs.answered(t0, seconds, path, method, resp, hmap, ids, body)

    async def _route(
        self,
        scope: dict[str, Any],
        path: str,
        method: str,
        headers: list[tuple[str, str]],
        hmap: dict[str, str],
        receive: Any,
    ) -> tuple[ScoreResponse, bool, bytes | None]:
        """The response, whether to close the connection, and the /score request's body."""
        if path == "/score":
            return await self._score(scope, headers, hmap, receive)
        resp = await self._other(path, method, scope, hmap)
        return resp, False, None

    async def _other(
        self, path: str, method: str, scope: dict[str, Any], hmap: dict[str, str]
    ) -> ScoreResponse:
        if path == "/":
            if method == "OPTIONS":
                resp = ScoreResponse(200, b"", "text/html; charset=utf-8")
                resp.headers.append(("allow", "GET, HEAD, OPTIONS"))
                return resp
            if method not in ("GET", "HEAD"):
                return error_response(405, "Method not allowed")
            await self._wait_for_init()
            return ScoreResponse(200, b"Healthy", "text/plain; charset=utf-8")
        if path == "/ready":
            service = self.service
            if self._closed is not None:
                return _json(503, {"ready": False, "message": self._closed})
            if service is not None and service.ready:
                return _json(200, {"ready": True})
            return _json(503, {"ready": False, "message": "init() has not completed"})
        if path == "/status":
            return await self._status()
        if path == "/metrics":  # no key: no payload data in it
            if method not in ("GET", "HEAD"):
                return error_response(405, "Method not allowed")
            return ScoreResponse(200, self.obs.render_metrics(), METRICS_TYPE)
        if path == "/swagger.json":
            denied = self.check_auth(hmap)
            if denied is not None:
                return denied
            return self._swagger(scope)
        return error_response(404, f"Not found: {path}")

    async def _score(
        self,
        scope: dict[str, Any],
        headers: list[tuple[str, str]],
        hmap: dict[str, str],
        receive: Any,
    ) -> tuple[ScoreResponse, bool, bytes | None]:
        denied = self.check_auth(hmap)
        if denied is not None:
            return denied, False, None
        try:
            body = await self._read_body(hmap, receive)
        except _TooLarge:
            return (
                error_response(
                    413,
                    f"Request body exceeds {self.settings.max_body_bytes} bytes "
                    "(SCORING_MAX_BODY_BYTES).",
                ),
                True,
                None,
            )
        await self._wait_for_init()
        service = self.service
        if service is None:
            resp = error_response(503, "The model is not ready: the entry script is loading.")
            resp.headers.append(("retry-after", "1"))
            return resp, False, None
        server = scope.get("server")
        req = ScoreRequest(
            method=scope["method"],
            body=body,
            query_string=scope.get("query_string", b""),
            headers=headers,
            path="/score",
            scheme=scope.get("scheme", "http"),
            server=tuple(server) if server else None,
            client=tuple(scope["client"]) if scope.get("client") else None,
        )
        return await service.score(req), False, body

    async def _status(self) -> ScoreResponse:
        service = self.service
        if service is None:
            return _json(
                200,
                {
                    "ready": False,
                    "model": {
                        "name": self.settings.model_name,
                        "version": self.settings.model_version,
                    },
                    "cache": {
                        "enabled": self.settings.cache.enabled,
                        "connected": False,
                        "disabled_reason": "the entry script is loading",
                    },
                    **self.obs.status(),
                },
            )
        if service.cache.enabled:
            await service.cache.ping()
        http = {"direct_requests": self.direct_path.requests}
        return _json(200, {**service.status(), "http": http, **self.obs.status()})

    def _swagger(self, scope: dict[str, Any]) -> ScoreResponse:
        service = self.service
        if service is None:
            return error_response(503, "The entry script is loading.")
        version = _query_param(scope.get("query_string", b""), "version") or "2"
        try:
            doc = build(
                service.script,
                version,
                title=self.settings.service_name,
                service_version=self.settings.service_version,
                auth=bool(self._keys),
                prefix=self._prefix,
                user=self._swagger_files,
            )
        except SwaggerError as exc:
            return error_response(404, str(exc))
        return _json(200, doc)

    def check_auth(self, hmap: dict[str, str]) -> ScoreResponse | None:
        if self._closed is not None:
            return error_response(503, self._closed)
        if not self._keys:
            return None
        value = hmap.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            resp = error_response(401, "Missing Authorization header: expected 'Bearer <key>'.")
        else:
            presented = token.strip().encode("utf-8", "replace")
            ok = False
            for key in self._keys:  # compare against every key: no early exit
                ok |= hmac.compare_digest(presented, key)
            if ok:
                return None
            resp = error_response(401, "Invalid key in the Authorization header.")
        resp.headers.append(("www-authenticate", 'Bearer realm="scoring"'))
        return resp

    async def _read_body(self, hmap: dict[str, str], receive: Any) -> bytes:
        limit = self.settings.max_body_bytes
        declared = hmap.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    raise _TooLarge
            except ValueError:
                pass
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def send_answer(
        self,
        send: Any,
        resp: ScoreResponse,
        extra: list[tuple[bytes, bytes]],
        path: str,
        close: bool,
    ) -> None:
        headers = response_headers(resp, extra, path, close)
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        if resp.stream is None:
            await send({"type": "http.response.body", "body": resp.body})
        else:
            await self._send_stream(send, resp)

    async def _send_stream(self, send: Any, resp: ScoreResponse) -> None:
        """One chunk per item of a streamed run() output (a generator: user code, iterated in
        a thread of its own so the loop keeps serving). A failure mid-way ends the body."""
        if self._streams is None:
            self._streams = ThreadPoolExecutor(1, thread_name_prefix="stream")
        loop = asyncio.get_running_loop()
        items = resp.stream
        assert items is not None
        try:
            while True:
                chunk = await loop.run_in_executor(self._streams, next, items, _END)
                if chunk is _END:
                    break
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Exception:
            log.error("run()'s streamed output failed:\n%s", traceback.format_exc())
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        await send({"type": "http.response.body", "body": b""})


def _query_param(query_string: bytes, name: str) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(query_string.decode("latin-1")).get(name)
    return values[0] if values else None


def _request_ids(hmap: dict[str, str]) -> list[tuple[bytes, bytes]] | ScoreResponse:
    """The id headers, or the 431 (the contract scoring.functions.function_app uses)."""
    ids, refused = request_ids(hmap)
    return refused if refused is not None else ids


def create_app() -> ScoringApp:
    """uvicorn factory: each worker process builds its app from the environment."""
    from .logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    insights = (os.environ.get("AML_APP_INSIGHTS_ENABLED") or "").lower() == "true"
    if insights and not settings.telemetry.enabled and not settings.telemetry.problem:
        log.warning(
            "AML_APP_INSIGHTS_KEY is an instrumentation key alone, which this host does not use: "
            "set APPLICATIONINSIGHTS_CONNECTION_STRING to the resource's connection string"
        )
    return ScoringApp(settings)
