"""The HTTP host: a small ASGI application (served by uvicorn) around the scoring core.

Routes: ``GET /`` liveness, ``GET /ready`` readiness, ``GET /status``, ``GET|POST /score``,
``GET /swagger.json?version=2|3``; anything else is 404. The entry script is imported and its
``init()`` run in the background after the socket is listening, so liveness answers at once and
``/ready`` turns 200 when ``init()`` has completed in this worker.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import sys
import time
import traceback
from typing import Any

from . import __version__
from .accesslog import AccessLog
from .config import Settings
from .service import ScoreRequest, ScoreResponse, ScoringService, error_response
from .swagger import SwaggerError, build

log = logging.getLogger("scoring")
access_log = logging.getLogger("scoring.access")

HEADER_LIMIT = 100
SERVER_VERSION = f"scoring/{__version__}".encode()
_JSON = b"application/json"


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
        self.access_log = (
            AccessLog() if settings.access_log and access_log.isEnabledFor(logging.INFO) else None
        )
        self._boot_task: asyncio.Task[None] | None = None

    # -- lifespan -------------------------------------------------------------------------------

    async def _boot(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.service is None:
                self.service = await loop.run_in_executor(None, ScoringService, self.settings)
            await self.service.start()
            log.info(
                "worker %d ready (model %s:%s)",
                os.getpid(),
                self.settings.model_name,
                self.settings.model_version,
            )
        except BaseException:
            log.critical(
                "cannot start the entry script %s:\n%s",
                self.settings.entry_script,
                traceback.format_exc(),
            )
            logging.shutdown()
            sys.stderr.flush()
            os._exit(3)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._boot_task = asyncio.get_running_loop().create_task(self._boot())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.service is not None:
                    await self.service.close()
                if self.access_log is not None:
                    self.access_log.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- HTTP -----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        t0 = time.perf_counter()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        hmap = dict(headers)
        out_headers: list[tuple[bytes, bytes]] = [(b"x-ms-server-version", SERVER_VERSION)]
        path = scope["path"]
        method = scope["method"]
        close = False
        try:
            ids = _request_ids(hmap)
            if isinstance(ids, ScoreResponse):
                resp = ids
            else:
                out_headers.extend(ids)
                resp, close = await self._route(scope, path, method, headers, hmap, receive)
        except _Disconnected:
            return
        except Exception:
            log.error("unhandled error serving %s %s:\n%s", method, path, traceback.format_exc())
            resp = error_response(500, "An unexpected internal error occurred.")
        if "traceid" in hmap:
            out_headers.append((b"traceid", hmap["traceid"].encode("latin-1")))
        await self._send(send, resp, out_headers, path, close)
        if self.access_log is not None and path in ("/score", "/swagger.json"):
            self.access_log.line(
                f"{method} {path} {resp.status} {(time.perf_counter() - t0) * 1000.0:.3f}ms "
                f"{len(resp.body)}{f' cache={resp.cache}' if resp.cache else ''}"
            )

    async def _route(
        self,
        scope: dict[str, Any],
        path: str,
        method: str,
        headers: list[tuple[str, str]],
        hmap: dict[str, str],
        receive: Any,
    ) -> tuple[ScoreResponse, bool]:
        service = self.service
        if path == "/score":
            denied = self._check_auth(hmap)
            if denied is not None:
                return denied, False
            try:
                body = await self._read_body(hmap, receive)
            except _TooLarge:
                return error_response(
                    413,
                    f"Request body exceeds {self.settings.max_body_bytes} bytes "
                    "(SCORING_MAX_BODY_BYTES).",
                ), True
            if service is None:
                resp = error_response(503, "The model is not ready: the entry script is loading.")
                resp.headers.append(("retry-after", "1"))
                return resp, False
            server = scope.get("server")
            req = ScoreRequest(
                method=method,
                body=body,
                query_string=scope.get("query_string", b""),
                headers=headers,
                path=path,
                scheme=scope.get("scheme", "http"),
                server=tuple(server) if server else None,
                client=tuple(scope["client"]) if scope.get("client") else None,
            )
            return await service.score(req), False
        if path == "/":
            if method not in ("GET", "HEAD"):
                return error_response(405, "Method not allowed"), False
            return ScoreResponse(200, b"Healthy", "text/plain; charset=utf-8"), False
        if path == "/ready":
            ready = service is not None and service.ready
            if ready:
                return _json(200, {"ready": True}), False
            return _json(503, {"ready": False, "message": "init() has not completed"}), False
        if path == "/status":
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
                    },
                ), False
            if service.cache.enabled:
                await service.cache.ping()
            return _json(200, service.status()), False
        if path == "/swagger.json":
            denied = self._check_auth(hmap)
            if denied is not None:
                return denied, False
            if service is None:
                return error_response(503, "The entry script is loading."), False
            version = _query_param(scope.get("query_string", b""), "version") or "2"
            try:
                doc = build(
                    service.script,
                    version,
                    title=self.settings.service_name,
                    service_version=self.settings.service_version,
                    auth=bool(self._keys),
                )
            except SwaggerError as exc:
                return error_response(404, str(exc)), False
            return _json(200, doc), False
        return error_response(404, f"Not found: {path}"), False

    def _check_auth(self, hmap: dict[str, str]) -> ScoreResponse | None:
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

    @staticmethod
    async def _send(
        send: Any, resp: ScoreResponse, extra: list[tuple[bytes, bytes]], path: str, close: bool
    ) -> None:
        headers = [
            (b"content-type", resp.content_type.encode("latin-1")),
            (b"content-length", str(len(resp.body)).encode()),
        ]
        headers.extend(extra)
        if path in ("/score", "/swagger.json") or resp.status >= 400:
            headers.append((b"x-ms-run-function-failed", b"True" if resp.run_failed else b"False"))
        if resp.exec_ms is not None:
            headers.append((b"x-ms-run-fn-exec-ms", f"{resp.exec_ms:.3f}".encode()))
        if resp.cache is not None:
            headers.append((b"x-scoring-cache", resp.cache.encode()))
        for k, v in resp.headers:
            headers.append((k.encode("latin-1"), v.encode("latin-1", "replace")))
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await send({"type": "http.response.body", "body": resp.body})


def _query_param(query_string: bytes, name: str) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(query_string.decode("latin-1")).get(name)
    return values[0] if values else None


class _RandomIds:
    """Random (version 4) UUIDs cut from one ``os.urandom`` read per 256 ids: a read per request
    is a system call that costs as much as the rest of the request-id handling."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._reset)  # a forked worker must not repeat ids

    def _reset(self) -> None:
        self._pool, self._at = b"", 0

    def next(self) -> str:
        if self._at >= len(self._pool):
            self._pool, self._at = os.urandom(16 * 256), 0
        at = self._at
        self._at = at + 16
        h = self._pool[at : at + 16].hex()
        # RFC 4122 version 4: version nibble 4, variant bits 10
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


_new_request_id = _RandomIds().next


def _request_ids(hmap: dict[str, str]) -> list[tuple[bytes, bytes]] | ScoreResponse:
    """azmlinfsrv's request-id rules: echo or generate x-request-id, keep the client ids."""
    request_id = hmap.get("x-request-id") or _new_request_id()
    if len(request_id) > HEADER_LIMIT:
        return error_response(431, f"x-request-id must not exceed {HEADER_LIMIT} characters")
    legacy = hmap.get("x-ms-request-id", "")
    client = hmap.get("x-ms-client-request-id", "")
    if legacy:
        client = client or legacy
    else:
        legacy = client or request_id
    if len(legacy) > HEADER_LIMIT or len(client) > HEADER_LIMIT:
        return error_response(
            431,
            f"x-ms-request-id and x-ms-client-request-id must not exceed {HEADER_LIMIT} characters",
        )
    out = [
        (b"x-request-id", request_id.encode("latin-1")),
        (b"x-ms-request-id", legacy.encode("latin-1")),
    ]
    if client:
        out.append((b"x-ms-client-request-id", client.encode("latin-1")))
    return out


def create_app() -> ScoringApp:
    """uvicorn factory: each worker process builds its app from the environment."""
    from .server import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return ScoringApp(settings)
