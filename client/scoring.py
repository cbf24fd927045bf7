"""Score against any deployed target by name, with that target's authentication.

Timeouts on connect and read; retries on 429 and 503 (and on refused connections) with exponential
backoff that honours ``Retry-After``; every other failure becomes a :class:`ClientError` that says
what happened and what to do.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from client.errors import (
    AuthRefusedError,
    BadPayloadError,
    ClientError,
    HttpError,
    NotJsonError,
    RetriesExhaustedError,
)
from client.outputs import StackOutputs, Target

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4  # attempts after the first
    backoff: float = 0.5  # first wait; doubles each retry
    max_wait: float = 30.0  # cap on any single wait, Retry-After included

    def wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        honoured = parse_retry_after(retry_after)
        base = honoured if honoured is not None else self.backoff * (2**attempt)
        return max(0.0, min(base, self.max_wait))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _reason(resp: requests.Response) -> str:
    """The server's own explanation: ``message``/``error``/``detail`` of a JSON body, or text."""
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        return text[:500] or resp.reason or "no reason given"
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "reason"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"]
    return str(body)[:500]


class ScoringClient:
    def __init__(
        self,
        outputs: StackOutputs,
        *,
        timeout: tuple[float, float] = (5.0, 60.0),
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.outputs = outputs
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.sleep = sleep

    def target(self, name: str) -> Target:
        return self.outputs.target(name)

    def score(self, target: str, payload: Any, *, deployment: str | None = None) -> Any:
        """POST ``payload`` (JSON) to the target's scoring URI; the decoded JSON answer."""
        t = self.target(target)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers |= t.auth.headers()
        if deployment:  # Azure ML online endpoints: pin a deployment (blue/green)
            headers["azureml-model-deployment"] = deployment
        resp = self._post(t.scoring_uri, payload, headers)
        content_type = resp.headers.get("Content-Type", "")
        try:
            return resp.json()
        except ValueError:
            raise NotJsonError(t.scoring_uri, content_type, resp.text) from None

    def score_raw(
        self, target: str, body: bytes, content_type: str, *, deployment: str | None = None
    ) -> tuple[str, bytes]:
        """POST ``body`` as it is (``@rawhttp`` scripts: images, audio, text); the answer's
        content type and bytes."""
        t = self.target(target)
        headers = {"Content-Type": content_type} | t.auth.headers()
        if deployment:
            headers["azureml-model-deployment"] = deployment
        resp = self._post(t.scoring_uri, None, headers, data=body)
        return resp.headers.get("Content-Type", ""), resp.content

    def _post(
        self, url: str, payload: Any, headers: dict[str, str], data: bytes | None = None
    ) -> requests.Response:
        attempts = self.retry.retries + 1
        body: dict[str, Any] = {"data": data} if data is not None else {"json": payload}
        for attempt in range(attempts):
            try:
                resp = self.session.post(url, headers=headers, timeout=self.timeout, **body)
            except requests.exceptions.ConnectionError as exc:
                if attempt + 1 < attempts:
                    self.sleep(self.retry.wait(attempt, None))
                    continue
                raise ClientError(
                    f"cannot connect to {url} after {attempts} attempts: {exc}"
                ) from None
            except requests.exceptions.Timeout:
                raise ClientError(
                    f"{url} did not answer within {self.timeout[1]}s (read timeout); "
                    "raise --timeout or check the target's health URI"
                ) from None
            if resp.status_code in RETRY_STATUSES:
                if attempt + 1 < attempts:
                    self.sleep(self.retry.wait(attempt, resp.headers.get("Retry-After")))
                    continue
                raise RetriesExhaustedError(resp.status_code, _reason(resp), url, attempts)
            if resp.status_code in (401, 403):
                raise AuthRefusedError(resp.status_code, _reason(resp), url)
            if 400 <= resp.status_code < 500:
                raise BadPayloadError(resp.status_code, _reason(resp), url)
            if resp.status_code >= 300:
                raise HttpError(resp.status_code, _reason(resp), url)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover
