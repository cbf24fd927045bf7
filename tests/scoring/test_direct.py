"""POST /score's direct path (GuardedHttpTools -> ScoringApp.direct) against the ASGI path.

A keep-alive ``POST /score`` goes direct; the same request with ``Connection: close`` takes
uvicorn's ASGI task. Both must answer alike, over HTTP against the running host. Then what
only the direct path has to get right: pipelining, a body past uvicorn's read buffer, a
graceful shutdown while a call is in flight.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from _scoring_support import SCRIPTS, Host, HostFactory, _launch

DIRECT = SCRIPTS / "d_direct.py"
SLEEP = SCRIPTS / "h_sleep.py"

VARYING = {"date", "x-request-id", "x-ms-request-id", "x-ms-run-fn-exec-ms", "connection"}


def _direct_requests(host: Host) -> int:
    return host.client.get("/status").json()["http"]["direct_requests"]


def _both_ways(host: Host, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, ...]:
    """The request sent direct and through the ASGI task; checks which way each went."""
    before = _direct_requests(host)
    direct = host.client.post("/score", content=body, headers=headers)
    assert _direct_requests(host) == before + 1
    asgi = host.client.post("/score", content=body, headers={**headers, "Connection": "close"})
    assert _direct_requests(host) == before + 1
    return direct, asgi


def _same(direct: httpx.Response, asgi: httpx.Response) -> None:
    assert direct.status_code == asgi.status_code
    assert direct.content == asgi.content
    fixed = {k: v for k, v in direct.headers.items() if k not in VARYING}
    assert fixed == {k: v for k, v in asgi.headers.items() if k not in VARYING}
    assert [k for k in direct.headers if k not in VARYING] == [
        k for k in asgi.headers if k not in VARYING
    ]


PLAIN_CASES = {
    "ok": (b'{"a": 1}', {}),
    "none": (b"none", {}),
    "raises": (b"raise", {}),
    "streams": (b"stream3", {}),
    "empty": (b"", {}),
    "traceid": (b"x", {"traceid": "trace-1"}),
    "client-ids": (b"x", {"x-request-id": "rid-1", "x-ms-client-request-id": "cid-1"}),
    "long-request-id": (b"x", {"x-ms-request-id": "r" * 101}),
    "cors": (b"x", {"Origin": "http://a.example"}),
}


@pytest.fixture(scope="module")
def plain_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    env = {"AML_CORS_ORIGINS": "http://a.example"}
    host = _launch(DIRECT, None, env, tmp_path_factory.mktemp("direct"), True)
    yield host
    host.stop()


@pytest.mark.parametrize("case", sorted(PLAIN_CASES))
def test_a_plain_script_answers_alike_both_ways(plain_host: Host, case: str) -> None:
    body, headers = PLAIN_CASES[case]
    direct, asgi = _both_ways(plain_host, body, headers)
    _same(direct, asgi)
    if case == "streams":
        assert direct.headers["transfer-encoding"] == "chunked"
        assert direct.content == b"chunk 0\nchunk 1\nchunk 2\n"


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b'{"data": [[1,2,3,4,5,6,7,8,9,10]]}', "application/json"),
        (b'{"data": [[1,2,3]]}', "application/json"),
        (b"{truncated", "application/json"),
        (b'{"data": [[1,2,3,4,5,6,7,8,9,10]]}', "text/plain"),
    ],
)
def test_a_schema_script_answers_alike_both_ways(
    sample_host: Host, body: bytes, content_type: str
) -> None:
    _same(*_both_ways(sample_host, body, {"Content-Type": content_type}))


def test_keys_are_checked_alike_both_ways(start_host: HostFactory) -> None:
    host = start_host(DIRECT, env={"SCORING_AUTH_KEYS": "k1"})
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer k1"}):
        before = host.client.get("/status", headers={"Authorization": "Bearer k1"})
        direct = host.client.post("/score", content=b"x", headers=headers)
        asgi = host.client.post("/score", content=b"x", headers={**headers, "Connection": "close"})
        _same(direct, asgi)
        after = host.client.get("/status", headers={"Authorization": "Bearer k1"})
        assert (
            after.json()["http"]["direct_requests"] == before.json()["http"]["direct_requests"] + 1
        )


def _responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """``count`` responses read off one connection (content-length or chunked bodies)."""
    buffer = b""

    def need(n: int) -> None:
        nonlocal buffer
        while len(buffer) < n:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed with {buffer!r}"
            buffer += chunk

    def line() -> bytes:
        nonlocal buffer
        while b"\r\n" not in buffer:
            need(len(buffer) + 1)
        text, _, buffer = buffer.partition(b"\r\n")
        return text

    def take(n: int) -> bytes:
        nonlocal buffer
        need(n)
        data, buffer = buffer[:n], buffer[n:]
        return data

    out: list[tuple[int, bytes]] = []
    while len(out) < count:
        status = int(line().split()[1])
        headers = {}
        while text := line():
            name, _, value = text.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while size := int(line(), 16):
                body += take(size)
                assert take(2) == b"\r\n"
            assert line() == b""
        else:
            body = take(int(headers[b"content-length"]))
        out.append((status, body))
    return out


def _post(body: bytes) -> bytes:
    return b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_pipelined_requests_are_answered_in_order(plain_host: Host) -> None:
    requests = [_post(b"first"), _post(b"stream2"), b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n"]
    requests += [_post(b"second" * 10), _post(b"none")]
    with socket.create_connection(("127.0.0.1", plain_host.port), timeout=10) as sock:
        sock.sendall(b"".join(requests))
        answers = _responses(sock, len(requests))
    assert [status for status, _ in answers] == [200] * 5
    assert b'"head": "first"' in answers[0][1]
    assert answers[1][1] == b"chunk 0\nchunk 1\n"
    assert b'"ready": true' in answers[2][1]
    assert b'"length": 60' in answers[3][1]
    assert answers[4][1] == b"{}"


def test_a_body_past_the_read_buffer_arrives_whole(plain_host: Host) -> None:
    body = b"y" * 300_000  # uvicorn pauses reading past 64 KiB until the app reads
    before = _direct_requests(plain_host)
    r = plain_host.client.post("/score", content=body)
    assert r.status_code == 200
    assert r.json()["length"] == 300_000
    assert _direct_requests(plain_host) == before + 1


def test_a_graceful_shutdown_answers_the_call_in_flight(start_host: HostFactory) -> None:
    host = start_host(SLEEP)
    with socket.create_connection(("127.0.0.1", host.port), timeout=15) as sock:
        sock.sendall(_post(b'{"sleep": 1.0}'))
        time.sleep(0.3)
        host.proc.send_signal(signal.SIGTERM)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    assert b"connection: close" in head.lower()
    assert body == b'{"slept": 1.0}'
    assert host.proc.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises it when done
