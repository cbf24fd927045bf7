"""Entra ID tokens for the Redis prediction cache, refreshed ahead of expiry and sent again with
``AUTH`` on live connections (the mechanism ``scoring/cache.py``'s docstring describes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

from redis.auth.token import TokenInterface
from redis.credentials import StreamingCredentialProvider

log = logging.getLogger("scoring.cache")

ENTRA_SCOPE = "https://redis.azure.com/.default"

REFRESH_RATIO = 0.7  # of a token's lifetime (redis-entraid's expiration_refresh_ratio default)
REFRESH_RETRY_SECONDS = 30.0  # until a new token comes (cached token, failed fetch)


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
