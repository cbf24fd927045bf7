"""The smoke test after a deploy: every endpoint of the stack outputs scores a sample payload.

    python -m client smoke --stack dev
    python -m client smoke --outputs outputs.json --stack dev [--set key=value] [--data F]
    python -m client smoke --outputs outputs.json --local http://127.0.0.1:5001

Each target in ``endpoints`` gets the payload with its own auth (through :class:`ScoringClient`,
retries on 429/503 included). Its answer is compared with the answer of the local run of the same
build (``client/reference.py``: the stack's build context, its model, entry script and
dependencies, served on this machine; or ``--local URL``). The table's first line names the model
it compared with; per target it says the HTTP status, the latency, whether the answer matches,
and why not; the exit code is 1 when any target failed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import requests

from client.errors import ClientError, HttpError
from client.outputs import StackOutputs
from client.scoring import RetryPolicy, ScoringClient

SAMPLE_PAYLOAD = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}
REL_TOLERANCE = 1e-6  # the same build on another CPU: floating-point noise, nothing more


@dataclass(frozen=True)
class Raw:
    """A payload sent as it is (``@rawhttp`` scripts): its bytes and content type."""

    body: bytes
    content_type: str


def decoded(content_type: str, body: bytes) -> Any:
    """An answer as compared: JSON decoded when it says it is JSON, else its bytes."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


@dataclass(frozen=True)
class Row:
    target: str
    status: str  # the HTTP status, or "-" when there was none
    latency_ms: float | None
    match: bool
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "200" and self.match


def same_answer(a: Any, b: Any, rel: float = REL_TOLERANCE) -> bool:
    """JSON answers equal, numbers within ``rel`` (bools and strings exactly)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_answer(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_answer(x, y, rel) for x, y in zip(a, b, strict=True))
    return a == b


def served_model(base_url: str, timeout: float = 10.0) -> str:
    """What a running host says it serves (``/status``): ``name:version``, or "" if it won't say."""
    try:
        status = requests.get(f"{base_url.rstrip('/')}/status", timeout=timeout).json()
        return f"{status['model']['name']}:{status['model']['version']}"
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return ""


def schema_example(base_url: str, timeout: float = 10.0) -> Any | None:
    """The sample input of the entry script's ``inference-schema`` decorators (the swagger
    document's ``ServiceInput`` example), or None when the script declares none."""
    try:
        answer = requests.get(f"{base_url.rstrip('/')}/swagger.json", timeout=timeout)
        doc = answer.json() if answer.status_code == 200 else {}
    except (requests.RequestException, ValueError):
        return None
    example = (doc.get("definitions") or {}).get("ServiceInput", {}).get("example")
    return example or None


def reference_answer(base_url: str, payload: Any, timeout: float = 60.0) -> Any:
    """The local host's answer to ``payload`` (no auth: it runs without keys)."""
    url = f"{base_url.rstrip('/')}/score"
    try:
        if isinstance(payload, Raw):
            headers = {"Content-Type": payload.content_type}
            answer = requests.post(url, data=payload.body, headers=headers, timeout=timeout)
        else:
            answer = requests.post(url, json=payload, timeout=timeout)
    except requests.RequestException as exc:
        raise ClientError(f"the local reference at {base_url} did not answer: {exc}") from None
    if answer.status_code != 200:
        raise ClientError(
            f"the local reference at {base_url} answered {answer.status_code}: "
            f"{answer.text[:300]}; the payload does not suit this build"
        )
    return decoded(answer.headers.get("Content-Type", ""), answer.content)


def check_target(
    client: ScoringClient,
    name: str,
    payload: Any,
    expected: Any,
    clock: Callable[[], float] = time.perf_counter,
) -> Row:
    started = clock()
    try:
        if isinstance(payload, Raw):
            answer = decoded(*client.score_raw(name, payload.body, payload.content_type))
        else:
            answer = client.score(name, payload)
    except HttpError as exc:
        return Row(name, str(exc.status), _ms(clock() - started), False, _short(exc.describe()))
    except ClientError as exc:
        return Row(name, "-", _ms(clock() - started), False, _short(str(exc)))
    latency = _ms(clock() - started)
    if same_answer(answer, expected):
        return Row(name, "200", latency, True)
    return Row(name, "200", latency, False, _short(f"answered {answer!r}, local run {expected!r}"))


def run_smoke(
    outputs: StackOutputs,
    payload: Any,
    expected: Any,
    *,
    timeout: tuple[float, float] = (5.0, 60.0),
    retry: RetryPolicy | None = None,
) -> list[Row]:
    """One row per endpoint of the outputs, in name order."""
    client = ScoringClient(outputs, timeout=timeout, retry=retry or RetryPolicy(retries=3))
    names = sorted(outputs.endpoints)
    if not names:
        raise ClientError(f"{outputs.source} exports no endpoint: nothing to smoke-test")
    return [check_target(client, name, payload, expected) for name in names]


def table(rows: Iterable[Row], reference: str = "") -> str:
    """The result table; ``reference`` (first line) says what the answers were compared with."""
    rows = list(rows)
    head = ("target", "status", "latency", "match", "result")
    body = [
        (
            r.target,
            r.status,
            "-" if r.latency_ms is None else f"{r.latency_ms:.0f} ms",
            "yes" if r.match else "no",
            "ok" if r.ok else f"FAIL: {r.detail}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head) - 1)]

    def fmt(line: tuple[str, ...]) -> str:
        cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        return "  ".join([*cells, line[-1]]).rstrip()

    failed = sum(not r.ok for r in rows)
    summary = f"{len(rows) - failed}/{len(rows)} targets ok" + (
        f", {failed} failed" if failed else ""
    )
    lines = [fmt(head), *(fmt(line) for line in body), summary]
    return "\n".join([f"reference: {reference}", *lines] if reference else lines)


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
