"""The local run's HTTP side (``python -m scoring.demo``): payload files of any bytes with a
content type, each POSTed to ``/score`` and every answer printed with its status and body,
whatever the status (text as text; bytes as their size, type and first bytes)."""

from __future__ import annotations

import json
import mimetypes
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class PayloadError(SystemExit):
    """A payload file that cannot be read: one line, exit 1."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}")


@dataclass(frozen=True)
class Payload:
    body: bytes
    content_type: str
    label: str = ""  # the file it came from


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (``body`` says why)
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def read_payload(path: Path, content_type: str | None = None) -> Payload:
    """A payload file as bytes; its type: ``content_type``, else what its name says, else JSON
    when it parses as JSON, else ``application/octet-stream``."""
    try:
        body = path.read_bytes()
    except OSError as e:
        raise PayloadError(f"--data {path}: {e.strerror or e}") from None
    return Payload(body, content_type or _content_type(path, body), path.name)


def _content_type(path: Path, body: bytes) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed:
        return guessed
    try:
        json.loads(body)
    except ValueError:  # UnicodeDecodeError is a ValueError
        return "application/octet-stream"
    return "application/json"


def post(base: str, payload: Payload) -> Answer:
    """POST the payload to /score: the answer whatever its status, or why there was none."""
    headers = {"Content-Type": payload.content_type}
    req = urllib.request.Request(base + "/score", data=payload.body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return Answer(r.status, r.reason, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, str(e.reason), dict(e.headers or {}), e.read())
    except (OSError, ValueError) as e:  # refused, reset, timed out
        return Answer(0, "", {}, f"no answer: {e}".encode())


def shown(answer: Answer, width: int = 2000) -> str:
    """The body as text when it is text, else its size, type and first bytes."""
    headers = {k.lower(): v for k, v in answer.headers.items()}
    try:
        text = answer.body.decode()
    except UnicodeDecodeError:
        text = None
    if text is None or not all(c.isprintable() or c in "\r\n\t" for c in text):
        more = " ..." if len(answer.body) > 32 else ""
        kind = headers.get("content-type", "no content type")
        return f"<{len(answer.body)} bytes, {kind}> {answer.body[:32].hex(' ')}{more}"
    return text if len(text) <= width else text[:width] + f" ... ({len(text)} characters)"


def score(base: str, payloads: list[Payload]) -> bool:
    """POST each payload twice (the second may come from the cache); print every answer.
    True when every answer was 2xx."""
    ok = True
    for payload in payloads:
        label = f" {payload.label}" if payload.label else ""
        for attempt in (1, 2):
            if attempt == 2:
                time.sleep(0.1)  # the cache store happens just after the first response
            answer = post(base, payload)
            ok &= answer.ok
            cache = {k.lower(): v for k, v in answer.headers.items()}.get("x-scoring-cache", "off")
            status = f"{answer.status} {answer.reason}".strip() if answer.status else "-"
            print(f"POST /score{label} #{attempt} -> {status} (cache: {cache}) {shown(answer)}")
    return ok
