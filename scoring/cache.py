"""Redis prediction cache: read it, and use what it returns.

Key: SHA-256 of model name, model version, the entry script's SHA-256 and what ``run()``
receives (``scoring.service.run_input_key``): the exact text for a plain ``run(raw_data)``, the
canonical parsed object (JSON with sorted keys) for a schema-decorated one. Two requests share an
answer only when ``run()`` would see the same input. Value: the exact response body (and its
content type) of a successful ``run()``, so a hit returns byte-for-byte what the miss returned.

If Redis is down or slow (short timeouts), the host keeps serving without the cache: the first
failure is logged, the cache is skipped for ``REDIS_RETRY_MS`` and then probed again, and
``/status`` reports ``connected: false`` with the reason.

**Entra ID tokens** (Azure Managed Redis). A token expires (about an hour); the server drops a
connection whose token expired unless the client has sent ``AUTH`` with a new one before. The
cache uses redis-py's streaming credential mechanism
(https://redis.readthedocs.io/en/stable/examples/asyncio_examples.html and
https://redis.io/docs/latest/develop/clients/redis-py/amr/ - ``StreamingCredentialProvider``,
redis-py >= 5.3): the client registers a callback with the provider; on each new token it sends
``AUTH`` on every idle pooled connection. A busy connection is marked to reconnect when it is
released (it then authenticates with the new token): redis-py's own way, an ``AUTH`` sent after
the release, runs once the connection is already back in the pool, where the next command can
take it and the two reads collide (``readuntil() called while another coroutine is already
waiting``; seen in the rotation test), and its cluster nodes re-authenticate only idle ones.
:class:`EntraIdCredentialProvider` fetches tokens in a background task (the blocking
``get_token`` in a thread, never on a request), at 70 % of a token's lifetime (redis-entraid's
default ``expiration_refresh_ratio``), and every 30 s after that until a new token comes (the
credential may hand back its cached one until shortly before expiry; a failed fetch is retried
the same way while the current token is still valid). The token source and the clock are
injectable, so a test can rotate an hour's tokens in seconds. (redis-py's own ``TokenManager``
reads the wall clock and calls the identity provider on the event loop: not used.)

**Cluster mode** (``REDIS_CLUSTER=true``): Azure Managed Redis' default clustering policy is OSS,
where a non-cluster client gets ``MOVED`` for most keys; the cache then uses
``redis.asyncio.RedisCluster`` (https://redis.readthedocs.io/en/stable/clustering.html), which
follows the slot map, with the same credentials and re-authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import CacheSettings

if TYPE_CHECKING:  # redis (and the OpenTelemetry SDK it imports) loads with a cache only
    from .cache_auth import Clock, EntraIdCredentialProvider, TokenSource

CLUSTER_ENV = "REDIS_CLUSTER"

log = logging.getLogger("scoring.cache")

KEY_PREFIX = "scoring:v1:"


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


def _env_flag(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in {"1", "true", "yes", "on"}


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
    # REDIS_CLUSTER=true: the OSS cluster protocol (Azure Managed Redis' default policy)
    cluster: bool = field(default_factory=lambda: _env_flag(CLUSTER_ENV))
    # Entra ID: where tokens come from and the clock that schedules their refresh (tests inject)
    token_source: TokenSource | None = None
    clock: Clock | None = None
    _provider: EntraIdCredentialProvider | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def _make_client(self) -> Any:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        from .cache_auth import EntraIdCredentialProvider, _reauth_pool_class, azure_token_source

        s = self.settings
        kwargs: dict[str, Any] = {
            "host": s.host,
            "port": s.port,
            "ssl": s.ssl,
            "socket_timeout": s.timeout_ms / 1000.0,
            "socket_connect_timeout": s.connect_timeout_ms / 1000.0,
            "health_check_interval": 0,
            "retry": Retry(NoBackoff(), 0),
        }
        provider = None
        if s.use_entra_id:
            source = self.token_source or azure_token_source(s.client_id)
            after = self._after_cluster_reauth if self.cluster else None
            provider = EntraIdCredentialProvider(s.username or "", source, self.clock, after)
            provider.start()  # the first token is fetched now, in the background
            kwargs["credential_provider"] = provider
        elif s.password:
            kwargs["password"] = s.password
        self._provider = provider
        if self.cluster:
            return aioredis.RedisCluster(**kwargs)
        if provider is None:
            return aioredis.Redis(**kwargs)
        ssl = kwargs.pop("ssl")
        connection = aioredis.SSLConnection if ssl else aioredis.Connection
        pool = _reauth_pool_class()(connection_class=connection, **kwargs)
        # the provider given again: redis-py registers its callback (the pool's
        # re_auth_callback) only for a client constructed with one
        return aioredis.Redis(connection_pool=pool, credential_provider=provider)

    async def _after_cluster_reauth(self) -> None:
        from .cache_auth import _mark_busy_cluster_connections

        if self._client is not None:
            await _mark_busy_cluster_connections(self._client)

    def _client_or_none(self) -> Any:
        if not self.enabled:
            return None
        if time.monotonic() < self._retry_at:
            return None
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # redis.asyncio connections belong to one event loop (the Functions tests and
            # asyncio.run() callers may use several in one process).
            if self._provider is not None and self._provider._task is not None:
                self._provider._task.cancel()  # its loop is another one (or gone)
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
            "cluster": self.cluster,
            "ttl_seconds": self.settings.ttl_seconds,
            **(
                {
                    "token_refreshes": self._provider.refreshes,
                    "reauth_errors": self._provider.reauth_errors,
                }
                if self._provider is not None
                else {}
            ),
            "hits": self.stats.hits,
            "misses": self.stats.misses,
            "stores": self.stats.stores,
            "errors": self.stats.errors,
        }

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._provider is not None:
            await self._provider.stop()
            self._provider = None
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                await self._client.aclose()
            self._client = None
