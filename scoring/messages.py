"""Requests and responses of :class:`~scoring.service.ScoringService`, and their parsing.

:func:`decode` turns a request into run()'s input (and its canonical form for the cache key),
:func:`render` turns run()'s output into a response, as azmlinfsrv does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
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
        key = _canonical(obj) if keyed else None
        if kind is InputKind.SCHEMA:
            return obj, key and b"S" + key
        return json.dumps(obj), key and b"T" + key
    ctype = req.header("content-type")
    body = req.body
    if kind is InputKind.SCHEMA:
        if ctype and not _is_json_type(ctype):
            raise Unsupported(f"Expects Content-Type to be application/json, got {ctype!r}")
        if not body or body.isspace():
            raise BadInput("POST body is empty. Expecting a JSON object.")
        obj = _loads(body)
        if not isinstance(obj, dict):
            raise BadInput("POST body should be a JSON object.")
        return obj, b"S" + _canonical(obj) if keyed else None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"Input cannot be decoded as UTF-8: {exc}") from None
    if _is_json_type(ctype) or (not ctype and text.lstrip()[:1] in ("{", "[")):
        obj = _loads(body)  # a malformed JSON body is a 400, not run()'s problem
        return text, b"T" + _canonical(obj) if keyed else None
    return text, b"R" + body if keyed else None


def render(output: Any, elapsed: float) -> ScoreResponse:
    if hasattr(output, "status_code") and hasattr(output, "get_data"):
        status = int(output.status_code)
        body = output.get_data()
        ctype = output.headers.get("Content-Type", "text/plain")
        extra = [
            (k.lower(), v)
            for k, v in output.headers.items()
            if k.lower() not in ("content-type", "content-length", "x-ms-run-function-failed")
        ]
        failed = status >= 500 or str(output.headers.get("x-ms-run-function-failed")) == "True"
        return ScoreResponse(status, body, ctype, extra, run_failed=failed, exec_ms=elapsed)
    try:
        body = json.dumps(output, default=_json_default).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        log.error("run() returned a value that cannot be serialised as JSON: %s", exc)
        raise RenderFailed(f"run() returned a value that is not JSON serialisable: {exc}") from None
    return ScoreResponse(200, body, JSON, exec_ms=elapsed)
