"""The host's own CPU per request, in process, without sockets or a load generator.

    python bench/host_micro.py [--entry bench/trivial.py] [--requests 40000] [--connections 8]

The real app and protocol (:class:`scoring.guard.GuardedHttpTools`, uvicorn's proxy-headers
middleware, the run thread) serve ``POST /score`` with the benchmark's payload over in-memory
transports: each of ``--connections`` clients sends its next request as soon as its response
is written, as ``wrk`` does. What is timed is the process's CPU (the loop and the run thread)
per request, so a change to the request path can be measured to a few percent on a noisy
machine, where ``make bench``'s side-by-side ratio needs minutes. Not a test: compare runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PAYLOAD = (REPO / "bench" / "post.lua").read_text().split("'")[1].encode()
REQUEST = (
    b"POST /score HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(PAYLOAD)).encode() + b"\r\n\r\n" + PAYLOAD
)


class MemoryTransport(asyncio.Transport):
    """What the protocol writes; a whole response sends the client's next request."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        extra = {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", self.client.port)}
        return extra.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.client.received(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Client:
    def __init__(self, port: int, run: Run) -> None:
        self.port = port
        self.run = run
        self.protocol: Any = None
        self.buffer = b""

    def received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        if len(body) < length:
            return
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"unexpected response: {self.buffer[:300]!r}")
        self.buffer = b""
        self.run.answered(self)

    def send(self) -> None:
        self.protocol.data_received(REQUEST)


class Run:
    def __init__(self, loop: asyncio.AbstractEventLoop, total: int) -> None:
        self.loop = loop
        self.total = total
        self.sent = 0
        self.answers = 0
        self.done = loop.create_future()

    def start(self, clients: list[Client]) -> None:
        for client in clients:
            self._next(client)

    def _next(self, client: Client) -> None:
        if self.sent < self.total:
            self.sent += 1
            self.loop.call_soon(client.send)

    def answered(self, client: Client) -> None:
        self.answers += 1
        if self.answers >= self.total and not self.done.done():
            self.done.set_result(None)
        self._next(client)


async def serve(args: argparse.Namespace) -> list[float]:
    from uvicorn.config import Config
    from uvicorn.lifespan.on import LifespanOn
    from uvicorn.server import ServerState

    from scoring.app import create_app
    from scoring.guard import GuardedHttpTools

    app = create_app()
    config = Config(
        app=app,
        loop="asyncio",
        http=GuardedHttpTools,
        lifespan="on",
        ws="none",
        access_log=False,
        log_config=None,
        server_header=False,
    )
    config.load()
    lifespan = LifespanOn(config)
    await lifespan.startup()
    while app.service is None or not app.service.ready:  # init() runs in the background
        await asyncio.sleep(0.05)
    state = ServerState()
    loop = asyncio.get_running_loop()
    per_request: list[float] = []
    try:
        for _ in range(args.rounds + 1):  # the first round warms up
            state.default_headers = [(b"date", b"Tue, 01 Dec 2026 00:00:00 GMT")]
            run = Run(loop, args.requests)
            clients = [Client(40000 + i, run) for i in range(args.connections)]
            for client in clients:
                client.protocol = GuardedHttpTools(config, state, lifespan.state, loop)
                client.protocol.connection_made(MemoryTransport(client))
            cpu = time.process_time()
            run.start(clients)
            await run.done
            per_request.append((time.process_time() - cpu) / args.requests * 1e6)
            for client in clients:
                client.protocol.connection_lost(None)
    finally:
        await lifespan.shutdown()
    return per_request[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entry", default=str(REPO / "bench" / "trivial.py"))
    parser.add_argument("--requests", type=int, default=40000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from scoring.config import apply_args, parse_args
    from scoring.sample_model.train import train

    models = Path(tempfile.mkdtemp(prefix="host-micro-")) / "models"
    train(models)
    apply_args(parse_args(["--entry_script", args.entry, "--model_dir", str(models)]), os.environ)  # type: ignore[arg-type]
    os.environ.setdefault("SCORING_LOG_LEVEL", "WARNING")
    figures = asyncio.run(serve(args))
    print(
        f"{Path(args.entry).name}: CPU per request {statistics.median(figures):.1f} us "
        f"(median of {len(figures)} rounds of {args.requests}; "
        f"min {min(figures):.1f}, max {max(figures):.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
