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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from redis.auth.token import TokenInterface
from redis.credentials import StreamingCredentialProvider

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


REFRESH_RATIO = 0.7  # of a token's lifetime (redis-entraid's expiration_refresh_ratio default)
REFRESH_RETRY_SECONDS = 30.0  # until a new token comes (cached token, failed fetch)
CLUSTER_ENV = "REDIS_CLUSTER"


class Token(NamedTuple):
    """An access token: its value, when it expires (epoch seconds) and, if it names one, the
    Redis user it authenticates (the ``oid`` claim; otherwise ``REDIS_USERNAME``)."""

    value: str
    expires_on: float
    oid: str | None = None


TokenSource = Callable[[], Token]  # blocking: called in a worker thread


class Clock(Protocol):
    def now(self) -> float: ...  # epoch seconds, the scale of Token.expires_on

    def sleep(self, seconds: float) -> Awaitable[None]: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(seconds)


def azure_token_source(client_id: str | None) -> TokenSource:
    """Tokens for Azure Managed Redis from the pod's/app's managed identity (or, without a client
    id, DefaultAzureCredential: workload identity, environment, developer sign-in)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    credential = (
        ManagedIdentityCredential(client_id=client_id) if client_id else DefaultAzureCredential()
    )

    def fetch() -> Token:
        token = credential.get_token(ENTRA_SCOPE)
        return Token(token.token, float(token.expires_on))

    return fetch


class _AuthToken(TokenInterface):
    """What redis-py's re-authentication sends: ``AUTH <oid claim> <value>``."""

    def __init__(self, token: Token, username: str, received_at: float, clock: Clock) -> None:
        self._token, self._username = token, token.oid or username
        self._received_at, self._clock = received_at, clock

    def is_expired(self) -> bool:
        return self.ttl() <= 0

    def ttl(self) -> float:
        return self._token.expires_on - self._clock.now()

    def try_get(self, key: str) -> str:
        return self._username if key == "oid" else ""

    def get_value(self) -> str:
        return self._token.value

    def get_expires_at_ms(self) -> float:
        return self._token.expires_on * 1000.0

    def get_received_at_ms(self) -> float:
        return self._received_at * 1000.0


class EntraIdCredentialProvider(StreamingCredentialProvider):
    """Redis AUTH with Microsoft Entra ID tokens, refreshed in the background; each new token is
    streamed to the client, which re-authenticates its live connections (see the module doc).

    One provider per client (a client belongs to one event loop); :meth:`start` runs its
    refresher on that loop, :meth:`stop` ends it."""

    def __init__(
        self,
        username: str,
        source: TokenSource,
        clock: Clock | None = None,
        after_reauth: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.username = username
        self._source = source
        self._clock: Clock = clock or SystemClock()
        self._after_reauth = after_reauth
        self._current: _AuthToken | None = None
        self._first: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_next: Callable[[Any], Any] | None = None
        self.refreshes = 0
        self.reauth_errors = 0

    # -- redis-py's interface --------------------------------------------------------------------
    def on_next(self, callback: Callable[[Any], Any]) -> None:
        self._on_next = callback

    def on_error(self, callback: Callable[[Exception], Any]) -> None:
        pass  # redis-py's handler only raises; errors are logged and retried here

    def is_streaming(self) -> bool:
        return True

    def get_credentials(self) -> tuple[str, str]:
        """Synchronous clients: the current token (fetched here only before the first)."""
        if self._current is None:
            self._accept(self._source())
        assert self._current is not None
        return self._current.try_get("oid"), self._current.get_value()

    async def get_credentials_async(self) -> tuple[str, str]:
        """A new connection's AUTH: the current token, no fetch on the request path (only a
        connection opened before the first token arrived waits for it)."""
        if self._current is None:
            self.start()
            assert self._first is not None
            await asyncio.shield(self._first)
        assert self._current is not None
        return self._current.try_get("oid"), self._current.get_value()

    # -- the refresher ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._first = loop.create_future()
            self._task = loop.create_task(self._refresh_forever(), name="redis-entra-token")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    def _accept(self, token: Token) -> bool:
        if self._current is not None and token.value == self._current.get_value():
            return False
        self._current = _AuthToken(token, self.username, self._clock.now(), self._clock)
        return True

    async def _refresh_forever(self) -> None:
        next_at = self._clock.now()
        while True:
            delay = next_at - self._clock.now()
            if delay > 0:
                await self._clock.sleep(delay)
            try:
                token = await asyncio.to_thread(self._source)
            except Exception as exc:
                log.warning("Entra ID token for Redis not refreshed (%s); retrying", exc)
                if self._first is not None and not self._first.done():
                    self._first.set_exception(exc)  # the connections waiting for it fail
                    self._first.exception()  # (retrieved: nobody may be waiting)
                    self._first = asyncio.get_running_loop().create_future()
                next_at = self._clock.now() + REFRESH_RETRY_SECONDS
                continue
            if not self._accept(token):  # the credential's cached token: not new yet
                next_at = self._clock.now() + REFRESH_RETRY_SECONDS
                continue
            current = self._current
            assert current is not None
            if self._first is not None and not self._first.done():
                self._first.set_result(None)
            else:
                self.refreshes += 1
                await self._reauthenticate(current)
            lifetime = token.expires_on - current.get_received_at_ms() / 1000.0
            next_at = self._clock.now() + max(REFRESH_RATIO * lifetime, 0.0)

    async def _reauthenticate(self, token: _AuthToken) -> None:
        """redis-py's callback: AUTH on the idle connections, the busy ones on release."""
        if self._on_next is None:
            return
        try:
            await self._on_next(token)
            if self._after_reauth is not None:
                await self._after_reauth()
        except Exception as exc:  # a connection that failed AUTH reconnects with the new token
            self.reauth_errors += 1
            log.warning("Redis re-authentication with the new token failed: %s", exc)


def _reauth_pool_class() -> type:
    from redis.asyncio.connection import ConnectionPool

    class ReAuthConnectionPool(ConnectionPool):
        """redis-py's pool, re-authenticating without the release race (see the module doc)."""

        async def re_auth_callback(self, token: TokenInterface) -> None:
            async with self._lock:  # no connection leaves or joins the pool meanwhile
                for conn in list(self._available_connections):
                    if not conn.is_connected:
                        continue  # authenticates with the current token when it connects
                    try:
                        await conn.send_command(
                            "AUTH", token.try_get("oid"), token.get_value(), check_health=False
                        )
                        await conn.read_response()
                    except Exception:
                        await conn.disconnect()  # reconnects with the current token
                for conn in self._in_use_connections:
                    conn.mark_for_reconnect()

    return ReAuthConnectionPool


async def _mark_busy_cluster_connections(client: Any) -> None:
    """After redis-py's re-authentication of a cluster's idle connections: every connection
    still open reconnects with the new token, a busy one on release and an idle one when next
    taken (``ClusterNode.release`` / ``acquire_connection`` honour the mark). The rotation test
    on a 3-node cluster found connections that redis-py's cluster path had left on the first
    token; a reconnect per connection per token (about an hour) is cheap."""
    manager = client.nodes_manager  # the slot map's nodes and the startup ones (topology)
    nodes = {id(n): n for n in (*manager.nodes_cache.values(), *manager.startup_nodes.values())}
    for node in nodes.values():
        for conn in node._connections:
            if conn.is_connected:
                conn.mark_for_reconnect()


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
