"""A loopback HTTP server that plays the authorization API of an AKS cluster's API server.

It answers ``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` the way an AKS
API server with Azure RBAC does while a new role assignment propagates: a request without the
expected bearer token is a 401; the first ``forbidden`` requests get a 403 (the webhook does not
know the caller yet), the next ``denied`` get ``status.allowed: false`` and every later one
``allowed: true``. ``always`` pins one answer (e.g. 403 for ever, 400). Requests are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.infra.providers.loopback import JsonServer

REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@dataclass
class FakeKubeApi(JsonServer):
    token: str = "entra-token"
    forbidden: int = 0
    denied: int = 0
    always: int | None = None
    seen: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        self.seen.append({"path": path, "auth": auth, "body": body})
        return self._answer(path, auth, body)

    def _answer(self, path: str, auth: str | None, body: dict[str, Any]) -> tuple[int, Any]:
        if path != REVIEW_PATH:
            return 404, _status(404, "NotFound", f"the server could not find {path}")
        if auth != f"Bearer {self.token}":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        if self.always is not None:
            return self.always, _status(self.always, "Forbidden", "pinned answer")
        n = len(self.seen)
        attrs = body["spec"]["resourceAttributes"]
        if n <= self.forbidden:
            return 403, _status(
                403,
                "Forbidden",
                f'User "deployer" cannot create resource "{attrs["resource"]}" (Azure RBAC)',
            )
        allowed = n > self.forbidden + self.denied
        status: dict[str, Any] = {"allowed": allowed}
        if not allowed:
            status["reason"] = "no role assignment found yet"
        return 201, {**body, "status": status}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
