"""Requests and responses of :class:`~scoring.service.ScoringService`, and their parsing.

:func:`decode` turns a request into run()'s input (and its canonical form for the cache key),
:func:`render` turns run()'s output into a response, as azmlinfsrv does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import GeneratorType
from typing import Any
from urllib.parse import parse_qsl

from .entry import BadInput, InputKind

log = logging.getLogger("scoring")

JSON = "application/json"


@dataclass
class ScoreRequest:
    method: str
    body: bytes = b""
    query_string: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)  # lower-case names
    path: str = "/score"
    scheme: str = "http"
    server: tuple[str, int] | None = None
    client: tuple[str, int] | None = None

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


@dataclass
class ScoreResponse:
    status: int
    body: bytes
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    run_failed: bool = False
    exec_ms: float | None = None
    cache: str | None = None
    stream: Iterator[Any] | None = None  # sent one chunk per item, after ``body``
    refused: str | None = None  # a 503 for the queue wait: "queue_full" or "queue_timeout"

    def json(self) -> Any:
        return json.loads(self.body)


def error_response(status: int, message: str, *, run_failed: bool = False) -> ScoreResponse:
    body = json.dumps({"message": message}).encode()
    return ScoreResponse(status, body, JSON, run_failed=run_failed)


class Unsupported(Exception):
    """The request's Content-Type is not one run() takes: a 415."""


class RenderFailed(Exception):
    """run()'s output cannot be serialised: a 500."""


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, pandas objects
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# json.dumps(obj, default=_json_default), without building an encoder per call (about 1 µs)
_encode = json.JSONEncoder(default=_json_default).encode


def _is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == JSON or mime.endswith("+json")


def _parse_json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _query_object(query_string: bytes) -> dict[str, Any]:
    """Query parameters as azmlinfsrv reads them: JSON-decoded values, repeats become lists."""
    try:
        pairs = parse_qsl(
            query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        raise BadInput("Query string is not valid UTF-8") from None
    out: dict[str, Any] = {}
    repeated: set[str] = set()
    for k, v in pairs:
        value = _parse_json_value(v)
        if k not in out:
            out[k] = value
        elif k in repeated:
            out[k].append(value)
        else:
            out[k] = [out[k], value]
            repeated.add(k)
    return out


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise BadInput("POST body could not be decoded as JSON: nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"POST body is not valid UTF-8: {exc}") from None
    except ValueError as exc:
        raise BadInput(f"POST body could not be decoded as JSON: {exc}") from None


def title_case(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def decode(
    req: ScoreRequest, method: str, kind: InputKind, keyed: bool
) -> tuple[Any, bytes | None]:
    """The run() input and, when ``keyed``, its canonical form for the cache key (None: don't
    cache)."""
    if kind is InputKind.RAW:
        return None, None
    if method == "GET":
        obj = _query_object(req.query_string)
        if kind is InputKind.SCHEMA:
            return obj, b"S" + _canonical(obj) if keyed else None
        text = json.dumps(obj)  # what run() gets: the key is that text, not a canonical form
        return text, b"R" + text.encode() if keyed else None
    ctype = req.header("content-type")
    body = req.body
    if kind is InputKind.SCHEMA:
        if not _is_json_type(ctype):  # none at all is a 415 too, as in azmlinfsrv
            raise Unsupported(f"Expects Content-Type to be application/json, got {ctype!r}")
        if not body or body.isspace():
            raise BadInput("POST body is empty. Expecting a JSON object.")
        obj = _loads(body)
        if not isinstance(obj, dict):
            raise BadInput("POST body should be a JSON object.")
        return obj, b"S" + _canonical(obj) if keyed else None
    try:  # an undecorated run() gets the text whatever it is, as in azmlinfsrv
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"Input cannot be decoded as UTF-8: {exc}") from None
    return text, b"R" + body if keyed else None


def _chunk(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    return _encode(item).encode()


def render(output: Any, elapsed: float) -> ScoreResponse:
    """run()'s output as a response. A ``None`` answers ``{}`` (azmlinfsrv); a streamed
    ``AMLResponse`` (a generator body) or a bare generator is sent one chunk per item."""
    if output is None:
        return ScoreResponse(200, b"{}", JSON, exec_ms=elapsed)
    if isinstance(output, GeneratorType):
        resp = ScoreResponse(200, b"", "text/plain; charset=utf-8", exec_ms=elapsed)
        resp.stream = map(_chunk, output)
        return resp
    if hasattr(output, "status_code") and hasattr(output, "get_data"):
        status = int(output.status_code)
        streamed = bool(getattr(output, "is_streamed", False))
        body = b"" if streamed else output.get_data()
        ctype = output.headers.get("Content-Type", "text/plain")
        extra = [
            (k.lower(), v)
            for k, v in output.headers.items()
            if k.lower() not in ("content-type", "content-length", "x-ms-run-function-failed")
        ]
        failed = status >= 500 or str(output.headers.get("x-ms-run-function-failed")) == "True"
        resp = ScoreResponse(status, body, ctype, extra, run_failed=failed, exec_ms=elapsed)
        if streamed:
            resp.stream = map(_chunk, output.iter_encoded())
        return resp
    try:
        body = _encode(output).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        log.error("run() returned a value that cannot be serialised as JSON: %s", exc)
        raise RenderFailed(f"run() returned a value that is not JSON serialisable: {exc}") from None
    return ScoreResponse(200, body, JSON, exec_ms=elapsed)
