"""Fixtures for the delivery tests: the real scoring host (reusing the scoring tests' launcher),
a stack-outputs file pointing at it, and a tiny scripted HTTP server for 429/503 sequences."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tests" / "scoring"))  # the scoring tests' host launcher

from _scoring_support import SAMPLE_SCORE, SEED_PAYLOAD, Host, _launch  # noqa: E402

from preview import engine  # noqa: E402

__all__ = ["SEED_PAYLOAD"]

# A bearer key the host accepts (SCORING_AUTH_KEYS) and one it does not.
GOOD_KEY = "k-delivery-primary-0123456789"
OTHER_KEY = "k-delivery-secondary-9876543210"


@pytest.fixture(scope="session")
def delivery_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scoring.sample_model.train import train

    root = tmp_path_factory.mktemp("delivery-models")
    train(root)
    return root


@pytest.fixture(scope="module")
def keyed_host(
    delivery_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Host]:
    """``python -m scoring`` serving the sample model, /score guarded by two bearer keys."""
    env = {"SCORING_AUTH_KEYS": f"{GOOD_KEY},{OTHER_KEY}"}
    host = _launch(SAMPLE_SCORE, delivery_model_dir, env, tmp_path_factory.mktemp("host"), True)
    yield host
    host.stop()


@pytest.fixture(scope="session")
def dev_outputs(dev: engine.Run) -> dict[str, Any]:
    """The real dev program's stack outputs (deploy mode), as `--show-secrets` would print."""
    return engine.to_json(dev.outputs, show_secrets=True)


@dataclass
class Scripted:
    """A loopback HTTP server answering POSTs from a script of (status, headers, body)."""

    script: list[tuple[int, dict[str, str], bytes]]
    delay: float = 0.0
    seen: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                outer.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if outer.delay:
                    threading.Event().wait(outer.delay)
                index = min(len(outer.seen), len(outer.script)) - 1
                status, headers, payload = outer.script[index]
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def start(*script: tuple[int, dict[str, str], bytes], delay: float = 0.0) -> Scripted:
        server = Scripted(list(script), delay)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
