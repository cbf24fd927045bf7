"""The Redis prediction cache against a real redis-server."""

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
    SEED_PAYLOAD,
    Host,
    HostFactory,
    RedisServer,
    free_port,
    wait_port,
)

from scoring.cache import (
    KEY_PREFIX,
    EntraIdCredentialProvider,
    PredictionCache,
    Token,
    cache_key,
    decode_value,
    encode_value,
)
from scoring.config import CacheSettings


def test_key_depends_on_model_identity_script_and_body() -> None:
    base = cache_key("m", "1", "sha", b'{"a":1}')
    assert base.startswith(KEY_PREFIX)
    assert base == cache_key("m", "1", "sha", b'{"a":1}')
    assert (
        len(
            {
                base,
                cache_key("m", "2", "sha", b'{"a":1}'),
                cache_key("n", "1", "sha", b'{"a":1}'),
                cache_key("m", "1", "other", b'{"a":1}'),
                cache_key("m", "1", "sha", b'{"a":2}'),
                cache_key("m1", "", "sha", b'{"a":1}'),  # length-prefixed: no ambiguity
            }
        )
        == 6
    )


def test_value_round_trip() -> None:
    assert decode_value(encode_value("application/json", b"[1,\n2]")) == (
        "application/json",
        b"[1,\n2]",
    )
    assert decode_value(b"garbage-without-newline") is None


def _post(host: Host, body: bytes) -> httpx.Response:
    return host.client.post("/score", content=body, headers={"Content-Type": "application/json"})


def test_miss_then_hit_returns_the_same_body(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    host = start_host(
        SCRIPTS / "counting.py", env=redis_server.env(MODEL_NAME="counting", MODEL_VERSION="7")
    )
    first = _post(host, b'{"b": 2, "a": 1}')
    assert first.status_code == 200
    assert first.headers["x-scoring-cache"] == "miss"
    assert first.json()["calls"] == 1
    time.sleep(0.1)  # the store happens after the response
    second = _post(host, b'{"b": 2, "a": 1}')  # the same text: what run() would see again
    assert second.status_code == 200
    assert second.headers["x-scoring-cache"] == "hit"
    assert second.content == first.content  # byte for byte, run() not called again
    other = host.client.post("/score", json={"a": 2})
    assert other.headers["x-scoring-cache"] == "miss"
    assert other.json()["calls"] == 2
    keys = redis_server.client().keys(KEY_PREFIX + "*")
    assert len(keys) == 2
    status = host.client.get("/status").json()["cache"]
    assert status["enabled"] is True and status["connected"] is True
    assert status["hits"] == 1 and status["misses"] == 2


def test_a_plain_script_is_keyed_by_the_exact_text_run_receives(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    # run(raw_data) gets the text: '{"a":1}' and '{"a": 1}' are two inputs to it
    host = start_host(SCRIPTS / "counting.py", env=redis_server.env())
    assert _post(host, b'{"a":1}').json()["calls"] == 1
    time.sleep(0.1)
    spaced = _post(host, b'{"a": 1}')
    assert spaced.headers["x-scoring-cache"] == "miss"
    assert spaced.json()["calls"] == 2
    time.sleep(0.1)
    assert _post(host, b'{"a":1}').headers["x-scoring-cache"] == "hit"


def test_a_schema_script_is_keyed_by_its_canonical_parsed_input(
    start_host: HostFactory, redis_server: RedisServer, model_dir: Path
) -> None:
    # the decorators hand run() the parsed object: key order and spacing don't reach it
    host = start_host(model_dir=model_dir, env=redis_server.env())
    first = _post(host, json.dumps(SEED_PAYLOAD).encode())
    assert first.headers["x-scoring-cache"] == "miss"
    time.sleep(0.1)
    spaced = _post(host, json.dumps(SEED_PAYLOAD, indent=3).encode())
    assert spaced.headers["x-scoring-cache"] == "hit"
    assert spaced.content == first.content


def test_ttl_is_applied_and_expiry_means_a_miss(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    host = start_host(SCRIPTS / "counting.py", env=redis_server.env(CACHE_TTL_SECONDS="1"))
    host.client.post("/score", json={"x": 1})
    time.sleep(0.1)
    r = redis_server.client()
    (key,) = r.keys(KEY_PREFIX + "*")
    assert 0 < r.ttl(key) <= 1
    assert host.client.post("/score", json={"x": 1}).headers["x-scoring-cache"] == "hit"
    time.sleep(1.3)
    again = host.client.post("/score", json={"x": 1})
    assert again.headers["x-scoring-cache"] == "miss"
    assert again.json()["calls"] == 2


def test_errors_are_not_cached(start_host: HostFactory, redis_server: RedisServer) -> None:
    host = start_host(SCRIPTS / "raising.py", env=redis_server.env())
    assert host.client.post("/score", json={"x": 1}).status_code == 500
    time.sleep(0.1)
    assert redis_server.client().keys(KEY_PREFIX + "*") == []


def test_password_auth(start_host: HostFactory, redis_server: RedisServer) -> None:
    redis_server.client().config_set("requirepass", "s3cret")
    host = start_host(SCRIPTS / "counting.py", env=redis_server.env(REDIS_PASSWORD="s3cret"))
    host.client.post("/score", json={"x": 1})
    time.sleep(0.1)
    assert host.client.post("/score", json={"x": 1}).headers["x-scoring-cache"] == "hit"

    wrong = start_host(SCRIPTS / "counting.py", env=redis_server.env(REDIS_PASSWORD="wrong"))
    r = wrong.client.post("/score", json={"x": 1})
    assert r.status_code == 200  # served without the cache
    cache = wrong.client.get("/status").json()["cache"]
    assert cache["connected"] is False
    assert cache["disabled_reason"]


def test_redis_killed_mid_run_host_keeps_serving(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    host = start_host(
        SCRIPTS / "counting.py", env=redis_server.env(REDIS_RETRY_MS="200", REDIS_TIMEOUT_MS="100")
    )
    host.client.post("/score", json={"x": 1})
    time.sleep(0.1)
    assert host.client.post("/score", json={"x": 1}).headers["x-scoring-cache"] == "hit"
    assert host.client.get("/status").json()["cache"]["connected"] is True

    redis_server.kill()
    t0 = time.monotonic()
    for i in range(20):
        r = host.client.post("/score", json={"x": i})
        assert r.status_code == 200
    assert time.monotonic() - t0 < 5  # no request waits long on the dead cache
    status = host.client.get("/status").json()["cache"]
    assert status["enabled"] is True
    assert status["connected"] is False
    assert status["disabled_reason"]
    assert "prediction cache unavailable" in host.log()

    redis_server.start()  # back on the same port: the host reconnects by itself
    deadline = time.monotonic() + 10
    while not host.client.get("/status").json()["cache"]["connected"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    host.client.post("/score", json={"y": 1})
    time.sleep(0.1)
    assert host.client.post("/score", json={"y": 1}).headers["x-scoring-cache"] == "hit"


def test_unreachable_redis_at_start_is_reported(start_host: HostFactory) -> None:
    from _scoring_support import free_port

    port = free_port()  # nothing listens there
    host = start_host(
        SCRIPTS / "counting.py",
        env={"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "REDIS_SSL": "false"},
    )
    assert host.client.post("/score", json={"x": 1}).status_code == 200
    cache = host.client.get("/status").json()["cache"]
    assert cache["enabled"] is True and cache["connected"] is False


@pytest.mark.parametrize("script", ["raw.py", "echo_string.py"])
def test_requests_that_depend_on_more_than_the_body_are_not_cached(
    start_host: HostFactory, redis_server: RedisServer, script: str
) -> None:
    host = start_host(SCRIPTS / script, env=redis_server.env())
    r = host.client.post("/score", content=b"abc", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert "x-scoring-cache" not in r.headers
    time.sleep(0.1)
    assert redis_server.client().keys(KEY_PREFIX + "*") == []


def test_hits_are_much_faster_than_a_20ms_model(
    start_host: HostFactory, redis_server: RedisServer
) -> None:
    host = start_host(SCRIPTS / "model20ms.py", env=redis_server.env())
    payload = {"data": [[1, 2, 3], [4, 5, 6]]}
    miss = host.client.post("/score", json=payload)
    assert miss.json() == [6, 15]
    time.sleep(0.1)
    t0 = time.perf_counter()
    for _ in range(50):
        hit = host.client.post("/score", json=payload)
        assert hit.headers["x-scoring-cache"] == "hit"
        assert hit.content == miss.content
    per_hit = (time.perf_counter() - t0) / 50
    assert per_hit < 0.02  # a hit never pays the model's 20 ms


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
            port = _port_with_free_bus()
            node_dir = self.workdir / f"node-{port}"
            node_dir.mkdir()
            self.procs.append(
                subprocess.Popen(
                    [
                        *(exe, "--port", str(port), "--bind", "127.0.0.1"),
                        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                        *("--save", "", "--appendonly", "no", "--dir", str(node_dir)),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self.nodes.append(RedisServer(port, node_dir))
        for node, proc in zip(self.nodes, self.procs, strict=True):
            wait_port(node.port, 10, proc)
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
