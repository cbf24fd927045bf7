"""An answer as HTTP: the request's headers decoded, a response's header list, the 500 of a
host fault. Shared by the ASGI path (:mod:`scoring.app`) and the direct path
(:mod:`scoring.direct`), so both send the same bytes."""

from __future__ import annotations

import logging
import traceback

from .service import ScoreResponse, error_response

log = logging.getLogger("scoring")


def decoded(raw: list[tuple[bytes, bytes]]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The request headers as text (latin-1, as ASGI carries them), in order and by name."""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
    return headers, dict(headers)


def unexpected(method: str, path: str) -> ScoreResponse:
    """A host fault while serving a request: logged with its traceback, a 500 without it."""
    log.error("unhandled error serving %s %s:\n%s", method, path, traceback.format_exc())
    return error_response(500, "An unexpected internal error occurred.")


def response_headers(
    resp: ScoreResponse, extra: list[tuple[bytes, bytes]], path: str, close: bool
) -> list[tuple[bytes, bytes]]:
    """The response's headers: its type and length, ``extra`` (version, request ids, trace id,
    CORS), azmlinfsrv's ``x-ms-run-*`` pair, the cache verdict, run()'s own headers."""
    headers = [(b"content-type", resp.content_type.encode("latin-1"))]
    if resp.stream is None:
        headers.append((b"content-length", str(len(resp.body)).encode()))
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
    return headers
