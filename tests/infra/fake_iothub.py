"""A loopback HTTP server that plays IoT Hub (and the one ARM action the edge target calls).

It answers the paths and api-versions ``components/providers/iot_edge.py`` uses, the way the
service does: SAS tokens are verified against the policy key (401 ``IotHubUnauthorizedAccess``
otherwise), an unknown api-version is a 400, a PUT of an existing device without ``If-Match`` is
a 409 ``DeviceAlreadyExists``, a stale ``If-Match`` a 412 ``PreconditionFailed``, a missing device
a 404 ``DeviceNotFound``. ``fail_next(method, path_part, status, n)`` queues throttling or outage
answers (429 with ``Retry-After``, 503) ahead of the real ones. Every request is recorded: method,
path, query, the shape of the Authorization header, the JSON body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

IOTHUB_API = "2021-04-12"
ARM_API = "2023-07-01"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    auth_shape: str  # "sas", "bearer", "none" or "other"
    auth: str
    headers: dict[str, str]
    body: Any


@dataclass
class Scripted:
    method: str
    path_part: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


def _auth_shape(value: str) -> str:
    if not value:
        return "none"
    if re.fullmatch(r"SharedAccessSignature sr=[^&]+&sig=[^&]+&se=\d+&skn=[^&]+", value):
        return "sas"
    if value.startswith("Bearer "):
        return "bearer"
    return "other"


def _error(code: str, message: str) -> dict[str, str]:
    return {
        "Message": f"ErrorCode:{code};{message}",
        "ExceptionMessage": f"Tracking ID:{uuid.uuid4().hex}-G:0-TimeStamp:{time.time():.0f}",
    }


class FakeIotHub:
    def __init__(self, host_name: str, policies: dict[str, str]):
        self.host_name = host_name
        self.policies = policies  # policy name -> base64 key
        self.devices: dict[str, dict[str, Any]] = {}
        self.edge_agent: dict[str, dict[str, Any]] = {}  # device -> $edgeAgent desired
        self.edge_hub: dict[str, dict[str, Any]] = {}
        self.applied: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[Recorded] = []
        self.script: list[Scripted] = []
        self.arm_token = "arm-access-token"
        self.token_passwords: dict[str, str] = {}
        self.generate_needs_polling = True
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeIotHub:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- test controls ---------------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        path_part: str,
        status: int,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        code = {429: "ThrottlingException", 503: "ServiceUnavailable", 500: "ServerError"}.get(
            status, "Error"
        )
        for _ in range(times):
            self.script.append(
                Scripted(method, path_part, status, headers or {}, _error(code, f"{status}"))
            )

    def of(self, method: str, path_part: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    # --- the service -----------------------------------------------------------------------------
    def _sas_ok(self, value: str) -> bool:
        fields = dict(p.split("=", 1) for p in value[len("SharedAccessSignature ") :].split("&"))
        key = self.policies.get(fields.get("skn", ""))
        if key is None or int(fields.get("se", "0")) < time.time():
            return False
        resource = fields.get("sr", "")
        if urllib.parse.unquote(resource) != self.host_name.lower():
            return False
        to_sign = f"{resource}\n{fields['se']}".encode()
        expected = base64.b64encode(
            hmac.new(base64.b64decode(key), to_sign, hashlib.sha256).digest()
        ).decode()
        return hmac.compare_digest(urllib.parse.unquote(fields.get("sig", "")), expected)

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: Any) -> tuple:
        parsed = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(parsed.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        auth = headers.get("authorization", "")
        with self._lock:
            self.requests.append(
                Recorded(method, path, query, _auth_shape(auth), auth, headers, body)
            )
            for i, s in enumerate(self.script):
                if s.method == method and s.path_part in path:
                    del self.script[i]
                    return s.status, s.headers, s.body
            if "/providers/Microsoft.ContainerRegistry/" in path or path.startswith("/operations/"):
                return self._arm(method, path, query, auth, body)
            return self._hub(method, path, query, auth, headers, body)

    def _hub(self, method, path, query, auth, headers, body) -> tuple:
        if _auth_shape(auth) != "sas" or not self._sas_ok(auth):
            return 401, {}, _error("IotHubUnauthorizedAccess", "Unauthorized")
        if query.get("api-version") != IOTHUB_API:
            return 400, {}, _error("InvalidProtocolVersion", "api-version not supported")
        m = re.fullmatch(r"/devices/([^/]+)", path)
        if m:
            return self._device(method, m.group(1), headers, body)
        m = re.fullmatch(r"/devices/([^/]+)/applyConfigurationContent", path)
        if m and method == "POST":
            device = self.devices.get(m.group(1))
            if device is None:
                return 404, {}, _error("DeviceNotFound", f"Device {m.group(1)} not registered")
            if not device["capabilities"]["iotEdge"]:
                return 400, {}, _error("ArgumentInvalid", "Device is not an edge device")
            content = (body or {}).get("modulesContent") or {}
            if "$edgeAgent" not in content or "$edgeHub" not in content:
                return 400, {}, _error("ArgumentInvalid", "$edgeAgent and $edgeHub are required")
            self.edge_agent[m.group(1)] = content["$edgeAgent"]["properties.desired"]
            self.edge_hub[m.group(1)] = content["$edgeHub"]["properties.desired"]
            self.applied.append((m.group(1), content))
            return 204, {}, None
        m = re.fullmatch(r"/twins/([^/]+)/modules/\$edgeAgent", path)
        if m and method == "GET":
            if m.group(1) not in self.devices:
                return 404, {}, _error("DeviceNotFound", f"Device {m.group(1)} not registered")
            desired = self.edge_agent.get(m.group(1), {})
            return 200, {}, {"deviceId": m.group(1), "moduleId": "$edgeAgent",
                             "properties": {"desired": desired, "reported": {}}}  # fmt: skip
        return 404, {}, _error("NotFound", f"no route {method} {path}")

    def _device(self, method, device_id, headers, body) -> tuple:
        current = self.devices.get(device_id)
        if method == "GET":
            if current is None:
                return 404, {}, _error("DeviceNotFound", f"Device {device_id} not registered")
            return 200, {}, current
        if method == "DELETE":
            if current is None:
                return 404, {}, _error("DeviceNotFound", f"Device {device_id} not registered")
            if_match = headers.get("if-match", "")
            if if_match not in ("*", f'"{current["etag"]}"'):
                return 412, {}, _error("PreconditionFailed", "etag mismatch")
            del self.devices[device_id]
            self.edge_agent.pop(device_id, None)
            return 204, {}, None
        if method == "PUT":
            if_match = headers.get("if-match")
            if current is not None and not if_match:
                return (
                    409,
                    {},
                    _error(
                        "DeviceAlreadyExists",
                        f"A device with ID '{device_id}' is already registered.",
                    ),
                )
            if current is not None and if_match not in ("*", f'"{current["etag"]}"'):
                return 412, {}, _error("PreconditionFailed", "Precondition failed: etag mismatch")
            if current is None and if_match not in (None, "*"):
                return 404, {}, _error("DeviceNotFound", f"Device {device_id} not registered")
            keys = ((body or {}).get("authentication") or {}).get("symmetricKey") or {}
            generation = current["generationId"] if current else uuid.uuid4().hex[:18]
            version = (current["version"] + 1) if current else 1
            device = {
                "deviceId": device_id,
                "generationId": generation,
                "etag": base64.b64encode(str(version).encode()).decode(),
                "version": version,
                "status": body.get("status", "enabled"),
                "capabilities": {"iotEdge": bool((body.get("capabilities") or {}).get("iotEdge"))},
                "authentication": {
                    "type": "sas",
                    "symmetricKey": {
                        "primaryKey": keys.get("primaryKey")
                        or base64.b64encode(uuid.uuid4().bytes * 2).decode(),
                        "secondaryKey": keys.get("secondaryKey")
                        or base64.b64encode(uuid.uuid4().bytes * 2).decode(),
                    },
                },
            }
            self.devices[device_id] = device
            return 200, {}, device
        return 405, {}, _error("MethodNotAllowed", method)

    def _arm(self, method, path, query, auth, body) -> tuple:
        if auth != f"Bearer {self.arm_token}":
            return 401, {}, {"error": {"code": "InvalidAuthenticationToken", "message": "bad"}}
        if path.startswith("/operations/") and method == "GET":
            op = path.rsplit("/", 1)[-1]
            token_id, name = op.split("~", 1)
            return 200, {}, self._generated(urllib.parse.unquote(token_id), name)
        if query.get("api-version") != ARM_API:
            return 400, {}, {"error": {"code": "InvalidApiVersionParameter", "message": "no"}}
        if path.endswith("/generateCredentials") and method == "POST":
            token_id = (body or {}).get("tokenId", "")
            name = (body or {}).get("name", "password1")
            if "/tokens/" not in token_id:
                return 404, {}, {"error": {"code": "ResourceNotFound", "message": "token"}}
            self.token_passwords[name] = uuid.uuid4().hex + uuid.uuid4().hex
            if self.generate_needs_polling:
                op = urllib.parse.quote(token_id, safe="") + "~" + name
                return 202, {"Location": f"{self.url}/operations/{op}", "Retry-After": "0"}, None
            return 200, {}, self._generated(token_id, name)
        return 404, {}, {"error": {"code": "NotFound", "message": path}}

    def _generated(self, token_id: str, name: str) -> dict[str, Any]:
        return {
            "username": token_id.rsplit("/", 1)[-1],
            "passwords": [{"name": name, "value": self.token_passwords[name]}],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, answer = fake.handle(self.command, self.path, headers, body)
                data = b"" if answer is None else json.dumps(answer).encode()
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                if data:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _serve

            def log_message(self, *_: Any) -> None:
                return

        return Handler
