"""The Entra -> ACR refresh token exchange, against a local server playing the registry."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from components.platform import acr_token


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: Any) -> Any:
        self.scopes += scopes
        return SimpleNamespace(token="entra-access-token", expires_on=0)


class FakeRegistry:
    """Answers POST /oauth2/exchange with the next status of ``script`` (200 = a token)."""

    def __init__(self, script: list[int]):
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                registry.requests.append(
                    {"path": self.path, "form": dict(urllib.parse.parse_qsl(body))}
                )
                status = registry.script.pop(0) if registry.script else 200
                payload = {"refresh_token": "acr-refresh"} if status == 200 else {"errors": []}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def registry() -> Iterator[Any]:
    made: list[FakeRegistry] = []

    def make(*script: int) -> FakeRegistry:
        made.append(FakeRegistry(list(script)))
        return made[-1]

    yield make
    for r in made:
        r.server.shutdown()


def test_exchange_posts_the_entra_token_and_returns_the_refresh_token(registry) -> None:
    fake, cred = registry(200), FakeCredential()
    token = acr_token.exchange_refresh_token(
        "myacr.azurecr.io", "tenant-1", cred, base_url=fake.url
    )
    assert token == "acr-refresh"
    assert cred.scopes == ["https://management.azure.com/.default"]
    (req,) = fake.requests
    assert req["path"] == "/oauth2/exchange"
    assert req["form"] == {
        "grant_type": "access_token",
        "service": "myacr.azurecr.io",
        "tenant": "tenant-1",
        "access_token": "entra-access-token",
    }


def test_exchange_retries_throttling_and_server_errors(registry, monkeypatch) -> None:
    monkeypatch.setattr(acr_token.time, "sleep", lambda _: None)
    fake = registry(429, 503, 200)
    token = acr_token.exchange_refresh_token(
        "r.azurecr.io", "t", FakeCredential(), base_url=fake.url
    )
    assert token == "acr-refresh" and len(fake.requests) == 3


def test_a_refused_token_explains_the_acrpush_role(registry) -> None:
    fake = registry(401)
    with pytest.raises(acr_token.AcrTokenError, match="needs the AcrPush role"):
        acr_token.exchange_refresh_token("r.azurecr.io", "t", FakeCredential(), base_url=fake.url)


def test_other_failures_name_the_registry_and_status(registry) -> None:
    fake = registry(400)
    with pytest.raises(acr_token.AcrTokenError, match=r"r\.azurecr\.io failed: 400"):
        acr_token.exchange_refresh_token("r.azurecr.io", "t", FakeCredential(), base_url=fake.url)
