"""Fakes for the observability tests: an Application Insights ingestion endpoint and a managed
identity token endpoint on loopback, both real HTTP servers in a thread.

:class:`FakeIngestion` answers ``POST /v2.1/track`` (the exporter's one call) as the service
does: ``{"itemsReceived", "itemsAccepted", "errors"}``, and keeps every envelope it received
with the request's headers. ``status`` makes it refuse (e.g. 503). With ``tls=True`` it serves
HTTPS with a self-signed certificate for 127.0.0.1 (``ca_file``), as Entra ID ingestion needs:
azure-core never sends a bearer token over plain HTTP.

:class:`FakeIdentity` is App Service's managed identity endpoint (``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER``, API version 2019-08-01), which ``ManagedIdentityCredential`` calls when
those two variables are set.
"""

from __future__ import annotations

import datetime
import gzip
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

IKEY = "3f1b2c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
QUIET_SDK = {  # the exporter's own telemetry about itself goes to Microsoft: not in tests
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
}


class _Server:
    url: str = ""
    tls_context: ssl.SSLContext | None = None

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, Any]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                status, answer = outer.handle(self, method)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self._answer("POST")

            def do_GET(self) -> None:
                self._answer("GET")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if self.tls_context is not None:
            self._server.socket = self.tls_context.wrap_socket(
                self._server.socket, server_side=True
            )
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


class FakeIngestion(_Server):
    def __init__(self, status: int = 200, tls_dir: Path | None = None) -> None:
        self.status = status
        self.items: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.ca_file: Path | None = None
        if tls_dir is not None:
            self.ca_file, key = self_signed(tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca_file, key)
            self.tls_context = context

    def connection_string(self) -> str:
        return f"InstrumentationKey={IKEY};IngestionEndpoint={self.url}/"

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, Any]:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if handler.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        if method != "POST" or urlsplit(handler.path).path.rstrip("/").split("/")[-2:] != [
            "v2.1",
            "track",
        ]:
            return 404, {"error": f"no {method} {handler.path}"}
        envelopes = json.loads(raw)
        with self.lock:
            self.headers.append(dict(handler.headers))
            if self.status == 200:
                self.items.extend(envelopes)
        if self.status != 200:
            return self.status, {"itemsReceived": len(envelopes), "itemsAccepted": 0, "errors": []}
        n = len(envelopes)
        return 200, {"itemsReceived": n, "itemsAccepted": n, "errors": []}

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The items of one type: Request, Exception, Message, Metric."""
        with self.lock:
            return [i for i in self.items if i["name"] == f"Microsoft.ApplicationInsights.{kind}"]

    def wait(self, kind: str, count: int = 1, timeout: float = 20.0, **match: Any) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = [i for i in self.of(kind) if _matches(i, match)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def _matches(item: dict[str, Any], match: dict[str, Any]) -> bool:
    base = item["data"]["baseData"]
    for key, value in match.items():
        if key == "operation_id":
            if item["tags"].get("ai.operation.id") != value:
                return False
        elif base.get(key, base.get("properties", {}).get(key)) != value:
            return False
    return True


class FakeIdentity(_Server):
    """App Service's managed identity endpoint: a token for any resource, and a record of what
    was asked (resource, client id, the secret header)."""

    SECRET = "fake-identity-header"
    TOKEN = "fake-entra-token-for-ingestion"

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def env(self) -> dict[str, str]:
        return {"IDENTITY_ENDPOINT": f"{self.url}/msi/token", "IDENTITY_HEADER": self.SECRET}

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, Any]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        self.asked.append({**query, "header": handler.headers.get("X-IDENTITY-HEADER")})
        if handler.headers.get("X-IDENTITY-HEADER") != self.SECRET:
            return 401, {"error": "bad identity header"}
        return 200, {
            "access_token": self.TOKEN,
            "expires_on": str(int(time.time()) + 3600),
            "resource": query.get("resource", ""),
            "token_type": "Bearer",
            "client_id": query.get("client_id", ""),
        }


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "ingestion.pem", directory / "ingestion.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
