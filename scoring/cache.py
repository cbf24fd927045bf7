"""Redis prediction cache: read it, and use what it returns.

Key: SHA-256 of model name, model version, the entry script's SHA-256 and what ``run()``
receives (``scoring.service.run_input_key``): the exact text for a plain ``run(raw_data)``, the
canonical parsed object (JSON with sorted keys) for a schema-decorated one. Two requests share an
answer only when ``run()`` would see the same input. Value: the exact response body (and its
content type) of a successful ``run()``, so a hit returns byte-for-byte what the miss returned.

If Redis is down or slow (short timeouts), the host keeps serving without the cache: the first
failure is logged, the cache is skipped for ``REDIS_RETRY_MS`` and then probed again, and
``/status`` reports ``connected: false`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .config import CacheSettings

log = logging.getLogger("scoring.cache")

KEY_PREFIX = "scoring:v1:"
ENTRA_SCOPE = "https://redis.azure.com/.default"


def cache_key(model_name: str, model_version: str, script_sha: str, canonical: bytes) -> str:
    h = hashlib.sha256()
    for part in (model_name.encode(), model_version.encode(), script_sha.encode()):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    h.update(canonical)
    return KEY_PREFIX + h.hexdigest()


def encode_value(content_type: str, body: bytes) -> bytes:
    return content_type.encode("latin-1") + b"\n" + body


def decode_value(raw: bytes) -> tuple[str, bytes] | None:
    ctype, sep, body = raw.partition(b"\n")
    if not sep:
        return None
    return ctype.decode("latin-1"), body


class EntraIdCredentialProvider:
    """Redis AUTH with a Microsoft Entra ID token (username = the identity's object id)."""

    def __init__(self, username: str, client_id: str | None) -> None:
        from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

        self.username = username
        self._credential = (
            ManagedIdentityCredential(client_id=client_id)
            if client_id
            else DefaultAzureCredential()
        )
        self._token: str | None = None
        self._expires_on = 0.0

    def get_credentials(self) -> tuple[str, str]:
        if self._token is None or self._expires_on - time.time() < 300:
            token = self._credential.get_token(ENTRA_SCOPE)
            self._token, self._expires_on = token.token, float(token.expires_on)
        return self.username, self._token

    async def get_credentials_async(self) -> tuple[str, str]:
        return await asyncio.to_thread(self.get_credentials)


def _credential_provider_class() -> type:
    from redis.credentials import CredentialProvider

    return type(
        "EntraIdRedisCredentialProvider", (EntraIdCredentialProvider, CredentialProvider), {}
    )


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    stores: int = 0


@dataclass
class PredictionCache:
    """Asynchronous Redis prediction cache with a circuit breaker."""

    settings: CacheSettings
    stats: CacheStats = field(default_factory=CacheStats)
    connected: bool = False
    disabled_reason: str | None = None
    _client: Any = None
    _client_loop: Any = None
    _retry_at: float = 0.0
    _pending: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def _make_client(self) -> Any:
        import redis.asyncio as aioredis

        s = self.settings
        kwargs: dict[str, Any] = {
            "host": s.host,
            "port": s.port,
            "ssl": s.ssl,
            "socket_timeout": s.timeout_ms / 1000.0,
            "socket_connect_timeout": s.connect_timeout_ms / 1000.0,
            "retry_on_timeout": False,
            "health_check_interval": 0,
        }
        if s.use_entra_id:
            kwargs["credential_provider"] = _credential_provider_class()(s.username, s.client_id)
        elif s.password:
            kwargs["password"] = s.password
        try:
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            kwargs["retry"] = Retry(NoBackoff(), 0)
        except ImportError:  # pragma: no cover - older redis-py
            pass
        return aioredis.Redis(**kwargs)

    def _client_or_none(self) -> Any:
        if not self.enabled:
            return None
        if time.monotonic() < self._retry_at:
            return None
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # redis.asyncio connections belong to one event loop (the Functions tests and
            # asyncio.run() callers may use several in one process).
            self._client = self._make_client()
            self._client_loop = loop
        return self._client

    def _ok(self) -> None:
        if not self.connected:
            log.info("prediction cache connected to %s:%s", self.settings.host, self.settings.port)
        self.connected = True
        self.disabled_reason = None

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.connected or self.disabled_reason is None:
            log.warning(
                "prediction cache unavailable (%s); serving without it, retrying in %.1fs",
                reason,
                self.settings.retry_seconds,
            )
        self.connected = False
        self.disabled_reason = reason
        self._retry_at = time.monotonic() + self.settings.retry_seconds

    async def get(self, key: str) -> tuple[str, bytes] | None:
        client = self._client_or_none()
        if client is None:
            return None
        try:
            raw = await client.get(key)
        except Exception as exc:
            self._failed(exc)
            return None
        self._ok()
        if raw is None:
            self.stats.misses += 1
            return None
        value = decode_value(raw)
        if value is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return value

    async def _set(self, client: Any, key: str, value: bytes) -> None:
        try:
            await client.set(key, value, ex=self.settings.ttl_seconds)
        except Exception as exc:
            self._failed(exc)
            return
        self.stats.stores += 1
        self._ok()

    def put(self, key: str, content_type: str, body: bytes) -> None:
        """Store in the background: the response does not wait for Redis."""
        client = self._client_or_none()
        if client is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._set(client, key, encode_value(content_type, body))
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def ping(self) -> None:
        client = self._client_or_none()
        if client is None:
            return
        try:
            await client.ping()
        except Exception as exc:
            self._failed(exc)
            return
        self._ok()

    def status(self) -> dict[str, Any]:
        if not self.enabled:
            return {
                "enabled": False,
                "connected": False,
                "disabled_reason": "REDIS_HOST is not set",
            }
        return {
            "enabled": True,
            "connected": self.connected,
            "disabled_reason": self.disabled_reason,
            "host": self.settings.host,
            "port": self.settings.port,
            "ssl": self.settings.ssl,
            "auth": "entra-id"
            if self.settings.use_entra_id
            else ("access-key" if self.settings.password else "none"),
            "ttl_seconds": self.settings.ttl_seconds,
            "hits": self.stats.hits,
            "misses": self.stats.misses,
            "stores": self.stats.stores,
            "errors": self.stats.errors,
        }

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                await self._client.aclose()
            self._client = None
