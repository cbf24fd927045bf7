"""The prediction cache's Entra ID tokens against a real redis-server: rotated while the cache
serves (one server, and a 3-node OSS cluster). Split from test_cache.py."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _scoring_support import (
    SCRIPTS,
    Host,
    HostFactory,
    RedisServer,
    free_port,
    wait_port,
)

from scoring.cache import KEY_PREFIX, PredictionCache
from scoring.cache_auth import EntraIdCredentialProvider, Token
from scoring.config import CacheSettings


def _post(host: Host, body: bytes) -> httpx.Response:
    return host.client.post("/score", content=body, headers={"Content-Type": "application/json"})


# --- Entra ID tokens rotating while the cache serves ---------------------------------------------
class FastClock:
    """The injected clock: a fixed epoch (not today's) running ``speed`` times faster than the
    wall, so an hour's token lives 3600 / speed seconds."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        return 1_900_000_000.0 + (time.monotonic() - self._t0) * self.speed

    def sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(seconds / self.speed)


class TokenAuthority:
    """Stands in for Entra ID and Azure Managed Redis' token check, on a real redis-server.

    Each token is an ACL user (the token's ``oid``) whose password is the token. When a token
    expires the user is deleted: its password is gone (a new connection with it is refused) and
    every connection still authenticated with it is disconnected (``ACL DELUSER``,
    https://redis.io/docs/latest/commands/acl-deluser/), which is what the Azure cache does to a
    connection whose token expired. (Azure's user name is the identity's one object id; here each
    token has its own, so that expiring one token drops exactly the connections still using it.)
    """

    def __init__(
        self, servers: list[RedisServer], clock: FastClock, lifetime: float = 3600.0
    ) -> None:
        self.admins = [server.client() for server in servers]  # ACLs are per node
        self.clock, self.lifetime = clock, lifetime
        self.issued: list[Token] = []
        self.expired: list[Token] = []
        self.dropped: dict[str, int] = {}  # connections still on a token when it expired
        self.fetch_threads: set[int] = set()
        self._lock = threading.Lock()

    def issue(self) -> Token:
        """The token source: a blocking call, like a credential's get_token()."""
        self.fetch_threads.add(threading.get_ident())
        with self._lock:
            n = len(self.issued) + 1
            token = Token(f"token-{n}-{secrets.token_hex(8)}", self.clock.now() + self.lifetime)
            token = token._replace(oid=f"oid-{n}")
            for admin in self.admins:
                admin.execute_command("ACL", "SETUSER", token.oid, "on", f">{token.value}")
                admin.execute_command("ACL", "SETUSER", token.oid, "~*", "+@all")
            self.issued.append(token)
            return token

    def expire_due(self) -> None:
        with self._lock:
            for token in self.issued:
                if token not in self.expired and token.expires_on <= self.clock.now():
                    on_it = [c for a in self.admins for c in a.client_list()]
                    self.dropped[token.oid] = sum(c["user"] == token.oid for c in on_it)
                    for admin in self.admins:
                        assert admin.execute_command("ACL", "DELUSER", token.oid) == 1
                    self.expired.append(token)


def _serve_through_rotations(
    servers: list[RedisServer], seconds: float, cluster: bool = False
) -> tuple[PredictionCache, TokenAuthority, dict[str, Any], Counter[int], list[str]]:
    """16 tasks read and fill the cache on one event loop for ``seconds`` while an hour's tokens
    are issued and expire every 1.8 s (the clock runs 2000x); returns what happened."""
    clock = FastClock(2000.0)
    authority = TokenAuthority(servers, clock)
    settings = CacheSettings(
        host="127.0.0.1",
        port=servers[0].port,
        ssl=False,
        use_entra_id=True,
        username="unused: each token names its user",
        timeout_ms=500,
    )
    cache = PredictionCache(settings, cluster=cluster, token_source=authority.issue, clock=clock)
    hits: Counter[int] = Counter()  # by the number of tokens issued so far

    async def main() -> tuple[dict[str, Any], list[str]]:
        await cache.ping()
        stop = time.monotonic() + seconds

        async def worker(i: int) -> None:
            while time.monotonic() < stop:
                key = f"{KEY_PREFIX}rotation-{i % 8}"
                if await cache.get(key) is None:
                    cache.put(key, "application/json", b"[1]")
                else:
                    hits[len(authority.issued)] += 1
                await asyncio.sleep(0.002)

        async def expire() -> None:
            while time.monotonic() < stop:
                await asyncio.to_thread(authority.expire_due)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(worker(i) for i in range(16)), expire())
        status = cache.status()
        users = [
            c["user"] for a in authority.admins for c in a.client_list() if c["user"] != "default"
        ]
        await cache.aclose()
        return status, users

    status, users = asyncio.run(main())
    return cache, authority, status, hits, users


def test_entra_tokens_rotate_under_load_with_no_failure(redis_server: RedisServer) -> None:
    import redis

    cache, authority, status, hits, users = _serve_through_rotations([redis_server], 6.0)
    # 6 s at 2000x is 3.3 hours: tokens refreshed at 70 % of their hour, each one expired
    assert len(authority.expired) >= 3, authority.expired
    assert status["token_refreshes"] >= 3 and status["reauth_errors"] == 0
    # no connection was still on a token when it expired: each was authenticated again
    assert set(authority.dropped.values()) == {0}, authority.dropped
    # no request failed, the breaker never opened, and the cache was hit under every token
    assert cache.stats.errors == 0, status
    assert status["connected"] is True and status["disabled_reason"] is None
    assert all(hits[n] > 0 for n in range(1, len(authority.issued))), hits
    # the live connections were authenticated again with a current token, not reopened
    current = {t.oid for t in authority.issued if t not in authority.expired}
    assert users and set(users) <= current, (users, current)
    # the fetches ran off the event loop, one per token (not one per connection)
    assert threading.main_thread().ident not in authority.fetch_threads
    assert len(authority.issued) == status["token_refreshes"] + 1
    # an expired token is refused
    old = authority.expired[0]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_server.port, username=old.oid, password=old.value).ping()


def test_without_reauthentication_the_expiry_bites(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same run, the re-authentication switched off: at each expiry the
    server drops the connections still on the old token, as it did to the host before. (A
    command caught on one fails and opens the breaker; an idle one is reopened by redis-py when
    next taken from the pool: how many requests fail depends on timing, so this counts the
    dropped connections.)"""

    async def no_reauth(self: EntraIdCredentialProvider, token: Any) -> None:
        return None

    monkeypatch.setattr(EntraIdCredentialProvider, "_reauthenticate", no_reauth)
    _, authority, status, _, _ = _serve_through_rotations([redis_server], 2.5)
    assert authority.expired
    assert sum(authority.dropped.values()) > 0, (authority.dropped, status)


# --- OSS cluster mode ----------------------------------------------------------------------------
class RedisCluster:
    """Three redis-server primaries on loopback ports, joined by ``redis-cli --cluster create``
    (https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/): the slot layout a
    cache with Azure Managed Redis' OSS clustering policy presents."""

    def __init__(self, workdir: Path) -> None:
        self.nodes: list[RedisServer] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workdir = workdir

    def start(self) -> None:
        exe, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if exe is None or cli is None:
            pytest.fail(
                "redis-server is not installed: apt-get install -y redis-server", pytrace=False
            )
        for _ in range(3):
            self._start_node(exe)
        subprocess.run(
            [
                *(cli, "--cluster", "create"),
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 15
        while not all(
            n.client().execute_command("CLUSTER", "INFO").decode().startswith("cluster_state:ok")
            for n in self.nodes
        ):
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.1)

    def _start_node(self, exe: str) -> None:
        """A node on a free port pair. Another worker's server can take the pair between the
        check and redis-server's bind (it then exits): that is retried on another pair."""
        for attempt in range(5):
            port = _port_with_free_bus()
            node_dir = self.workdir / f"node-{port}-{attempt}"
            node_dir.mkdir()
            proc = subprocess.Popen(
                [
                    *(exe, "--port", str(port), "--bind", "127.0.0.1"),
                    *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                    *("--save", "", "--appendonly", "no", "--dir", str(node_dir)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_port(port, 10, proc)
            except RuntimeError:  # exited before listening: the port pair was taken
                continue
            self.procs.append(proc)
            self.nodes.append(RedisServer(port, node_dir))
            return
        raise RuntimeError("no redis-server cluster node started in 5 attempts")

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(5)


def _port_with_free_bus() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    import socket

    for _ in range(50):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    cluster = RedisCluster(tmp_path)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_an_oss_cluster_needs_and_gets_the_cluster_client(
    start_host: HostFactory, redis_cluster: RedisCluster
) -> None:
    first = redis_cluster.nodes[0]
    bodies = [json.dumps({"i": i}).encode() for i in range(12)]  # keys across the slot map

    plain = start_host(SCRIPTS / "counting.py", env=first.env())
    for body in bodies:
        assert _post(plain, body).status_code == 200  # served, without the cache
    status = plain.client.get("/status").json()["cache"]
    assert status["connected"] is False and "MovedError" in status["disabled_reason"]
    for node in redis_cluster.nodes:  # what it stored on the node it reached: not the point here
        node.client().flushall()

    host = start_host(SCRIPTS / "counting.py", env=first.env(REDIS_CLUSTER="true"))
    for body in bodies:
        assert _post(host, body).headers["x-scoring-cache"] == "miss"
    time.sleep(0.2)
    for body in bodies:
        assert _post(host, body).headers["x-scoring-cache"] == "hit"
    status = host.client.get("/status").json()["cache"]
    assert status["cluster"] is True and status["errors"] == 0
    stored = [len(n.client().keys(KEY_PREFIX + "*")) for n in redis_cluster.nodes]
    assert sum(stored) == len(bodies) and all(stored), stored  # spread over the three nodes


def test_entra_tokens_rotate_on_a_cluster_with_no_failure(redis_cluster: RedisCluster) -> None:
    cache, authority, status, hits, users = _serve_through_rotations(
        redis_cluster.nodes, 6.0, cluster=True
    )
    assert len(authority.expired) >= 3, authority.expired
    # in cluster mode an idle connection is marked to reconnect rather than sent AUTH: one left
    # idle since the previous token may be dropped at expiry, and is reopened when next taken;
    # what matters is that no request failed
    assert cache.stats.errors == 0, (status, authority.dropped)
    assert status["connected"] is True and status["reauth_errors"] == 0
    assert all(hits[n] > 0 for n in range(1, len(authority.issued))), hits
    current = {t.oid for t in authority.issued if t not in authority.expired}
    assert users and set(users) <= current, (users, current)
