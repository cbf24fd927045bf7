"""The REST plumbing of the dynamic providers in ``iot_edge.py``: shared access signatures,
a client with retries and readable errors, and the ``secrets`` placeholders of a manifest.

Kept apart from the providers so that ``iot_edge.py`` holds only what Pulumi pickles into the
stack state (the provider and resource classes); the providers call these helpers at run time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from typing import Any

import requests

IOTHUB_API_VERSION = "2021-04-12"
ARM_API_VERSION = "2023-07-01"
ARM_ENDPOINT = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
SAS_LIFETIME_SECONDS = 3600
RETRY_STATUSES = (429, 500, 502, 503, 504)


class IotHubError(RuntimeError):
    """A call to IoT Hub or ARM failed; the message says what to check."""


def sas_token(host_name: str, policy_name: str, key: str, *, now: float | None = None) -> str:
    """``SharedAccessSignature sr=..&sig=..&se=..&skn=..`` for the hub, valid for an hour."""
    resource = urllib.parse.quote(host_name.lower(), safe="")
    expiry = int((now if now is not None else time.time()) + SAS_LIFETIME_SECONDS)
    to_sign = f"{resource}\n{expiry}".encode()
    digest = hmac.new(base64.b64decode(key), to_sign, hashlib.sha256).digest()
    signature = urllib.parse.quote(base64.b64encode(digest).decode(), safe="")
    return f"SharedAccessSignature sr={resource}&sig={signature}&se={expiry}&skn={policy_name}"


class RestClient:
    """Requests with retries on 429/5xx and readable errors on 401/403/404."""

    def __init__(
        self,
        base_url: str,
        what: str,
        auth: Any,
        api_version: str,
        *,
        attempts: int = 6,
        backoff: float = 1.0,
        timeout: float = 60.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.what = what
        self.auth = auth  # () -> Authorization header value
        self.api_version = api_version
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
        passthrough: tuple[int, ...] = (),
        url: str | None = None,
    ) -> requests.Response:
        target = url or f"{self.base_url}{path}"
        params = None if url else {"api-version": self.api_version}
        for attempt in range(self.attempts):
            all_headers = {"Authorization": self.auth(), "Accept": "application/json"}
            if body is not None:
                all_headers["Content-Type"] = "application/json; charset=utf-8"
            all_headers |= headers or {}
            try:
                response = requests.request(
                    method,
                    target,
                    params=params,
                    data=None if body is None else json.dumps(body),
                    headers=all_headers,
                    timeout=self.timeout,
                )
            except requests.ConnectionError as exc:
                if attempt < self.attempts - 1:
                    time.sleep(self._delay(attempt, None))
                    continue
                raise IotHubError(f"{self.what}: cannot reach {self.base_url}: {exc}") from exc
            status = response.status_code
            if status in ok or status in passthrough:
                return response
            if status in RETRY_STATUSES and attempt < self.attempts - 1:
                time.sleep(self._delay(attempt, response.headers.get("Retry-After")))
                continue
            raise IotHubError(self._explain(method, path, response))
        raise IotHubError(f"{self.what}: {method} {path} kept failing")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), 60.0)
        return min(self.backoff * 2**attempt, 30.0)

    def _explain(self, method: str, path: str, response: requests.Response) -> str:
        status = response.status_code
        detail = _error_detail(response)
        head = f"{self.what}: {method} {path} answered {status}"
        if status == 401:
            return (
                f"{head} (unauthorized: {detail}). The credential was refused: check that the "
                "shared access policy exists on the hub with its current key (or that your Azure "
                "login is valid), and that the clock of this machine is right."
            )
        if status == 403:
            return (
                f"{head} (forbidden: {detail}). The credential lacks a permission: the policy "
                "needs RegistryRead, RegistryWrite and ServiceConnect (ARM: Contributor on the "
                "registry); local authentication must not be disabled on the hub."
            )
        if status == 404:
            return f"{head} (not found: {detail}). Check the hub host name and the device ID."
        if status in RETRY_STATUSES:
            return f"{head} after {self.attempts} attempts ({detail}); try again later."
        return f"{head}: {detail}"


def _error_detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason or ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return f"{error.get('code', '')} {error.get('message', '')}".strip()
        for key in ("Message", "message", "ExceptionMessage"):
            if key in body:
                return str(body[key])[:300]
    return json.dumps(body)[:300]


def hub_client(props: dict[str, Any], what: str) -> RestClient:
    host = props["host_name"]
    policy, key = props["policy_name"], props["policy_key"]
    return RestClient(
        props.get("endpoint") or f"https://{host}",
        what,
        lambda: sas_token(host, policy, key),
        IOTHUB_API_VERSION,
    )


def quote_id(device_id: str) -> str:
    return urllib.parse.quote(device_id, safe="")


def secret_ref(name: str) -> str:
    """A placeholder for a secret in ``modules_content``; the provider puts the value of
    ``secrets[name]`` in its place just before the call. The manifest stays readable in previews
    and in the state; only the ``secrets`` input is secret."""
    return "{{secret:" + name + "}}"


_SECRET_REF = re.compile(r"\{\{secret:([A-Za-z0-9_.-]+)\}\}")


def resolve_secrets(value: Any, secrets: dict[str, Any]) -> Any:
    """``value`` with every :func:`secret_ref` placeholder replaced by its secret (and whole
    numbers, which Pulumi hands over as doubles, as integers again)."""
    if isinstance(value, dict):
        return {k: resolve_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, secrets) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # Pulumi passes numbers as doubles; the manifest's are integers
    if isinstance(value, str):
        match = _SECRET_REF.fullmatch(value)
        if match:
            if match.group(1) not in secrets:
                raise IotHubError(
                    f"modules_content refers to secret {match.group(1)!r}, which the deployment's "
                    f"secrets input does not have (it has {sorted(secrets)})"
                )
            return secrets[match.group(1)]
    return value


def content_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def arm_token() -> str:
    """``Bearer <token>`` for ARM, from azure-identity (``DefaultAzureCredential``)."""
    from azure.identity import DefaultAzureCredential

    return "Bearer " + DefaultAzureCredential().get_token(ARM_SCOPE).token
