"""Wait, boundedly, until the deployer's Azure RBAC role works in an AKS cluster's API.

With Azure RBAC for Kubernetes authorization, who may do what in the cluster is an Azure role
assignment, and "new role assignments can take up to five minutes to propagate and be updated by
the authorization server" (https://learn.microsoft.com/azure/aks/manage-azure-rbac, "Before you
begin"); Azure RBAC's own troubleshooting page says a role assignment can take up to 10 minutes
to take effect (https://learn.microsoft.com/azure/role-based-access-control/troubleshooting,
"Role assignment changes are not being detected"). Until then the
API server answers 403 and the first Kubernetes call of ``pulumi up`` fails.

:class:`KubeAccess` asks the API server what ``kubectl auth can-i`` asks: it POSTs a
``SelfSubjectAccessReview`` (``authorization.k8s.io/v1``, allowed for every authenticated user)
for each of ``reviews`` and retries with backoff until every one says ``allowed``, or fails after
``timeout_s`` with an error naming the cluster, the permission, the limit and the last answer.
It signs in as the deployer, as the kubeconfig's kubelogin plugin does: an Entra token for the
AKS server application (``--server-id`` of the kubeconfig) from ``DefaultAzureCredential``.
The Kubernetes provider depends on this resource; nothing else waits for it.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pulumi
import requests
from pulumi import dynamic

from components.providers.waiting import Backoff, wait_until

REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
DEFAULT_TIMEOUT_S = 900.0  # above the documented 5 (AKS) to 10 (Azure RBAC) minutes
RETRY_STATUSES = (401, 403, 429, 500, 502, 503, 504)  # the role, or the API, is not there yet


class KubeAccessError(RuntimeError):
    """An answer waiting cannot change (a malformed review, an unknown API)."""


def review_body(review: Mapping[str, Any]) -> dict[str, Any]:
    attributes = {k: review[k] for k in ("verb", "group", "resource", "namespace") if review.get(k)}
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


def describe(review: Mapping[str, Any]) -> str:
    group = f".{review['group']}" if review.get("group") else ""
    where = f" in namespace {review['namespace']}" if review.get("namespace") else ""
    return f"{review['verb']} {review['resource']}{group}{where}"


def entra_token(server_id: str) -> str:
    """An Entra access token for the AKS server application, as kubelogin gets it."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential().get_token(f"{server_id}/.default").token


def access_check(
    props: Mapping[str, Any], token: Callable[[], str], verify: str | bool
) -> Callable[[], tuple[bool, str]]:
    """One round of reviews: (all allowed, what the last answer said)."""
    server = str(props["server"]).rstrip("/")

    def check() -> tuple[bool, str]:
        for review in props["reviews"]:
            try:
                response = requests.post(
                    server + REVIEW_PATH,
                    json=review_body(review),
                    headers={"Authorization": f"Bearer {token()}"},
                    verify=verify,
                    timeout=30,
                )
            except requests.RequestException as exc:
                return False, f"cannot reach {server}: {type(exc).__name__}: {exc}"
            if response.status_code in RETRY_STATUSES:
                return False, f"{response.status_code} {response.text[:200].strip()}"
            if response.status_code not in (200, 201):
                raise KubeAccessError(
                    f"{server}{REVIEW_PATH} answered {response.status_code}: {response.text[:300]}"
                )
            status = (response.json() or {}).get("status") or {}
            if not status.get("allowed"):
                reason = status.get("reason") or status.get("evaluationError") or "no reason given"
                return False, f"'{describe(review)}' not allowed yet ({reason})"
        return True, "allowed"

    return check


@contextmanager
def ca_file(ca_data: str) -> Iterator[str | bool]:
    """The cluster CA (base64 PEM) as a file for ``requests``' ``verify``; True without one."""
    if not ca_data:
        yield True
        return
    handle, path = tempfile.mkstemp(suffix=".crt")
    with os.fdopen(handle, "wb") as f:
        f.write(base64.b64decode(ca_data))
    try:
        yield path
    finally:
        os.unlink(path)


def wait_for_access(
    props: Mapping[str, Any],
    *,
    token: Callable[[], str] | None = None,
    backoff: Backoff | None = None,
) -> int:
    """Block until every review of ``props`` is allowed; the number of rounds it took."""
    server_id = str(props.get("server_id") or "")
    get_token = token or (lambda: entra_token(server_id))
    with ca_file(str(props.get("ca_data") or "")) as verify:
        wanted = ", ".join(f"'{describe(r)}'" for r in props["reviews"])
        return wait_until(
            f"the deployer's Azure RBAC role to allow {wanted} on {props['server']}",
            access_check(props, get_token, verify),
            timeout_s=float(props.get("timeout_s") or DEFAULT_TIMEOUT_S),
            backoff=backoff or Backoff(),
            hint=(
                "Role assignments take up to 10 minutes to propagate; if it is longer, check "
                "that the deployer holds an AKS RBAC role on the cluster (az role assignment "
                "list --scope <cluster id>) and run `pulumi up` again"
            ),
        )


WATCHED = ("server", "server_id", "reviews", "role_assignment_id")


class KubeAccessProvider(dynamic.ResourceProvider):
    """Inputs: server, ca_data, server_id, reviews, role_assignment_id, timeout_s."""

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        wait_for_access(props)
        return dynamic.CreateResult(id_=f"{props['server']}#access", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [k for k in WATCHED if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        wait_for_access(news)  # a new grant or cluster: wait for it as on create
        return dynamic.UpdateResult(outs=news)

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        return dynamic.ReadResult(id_, props)  # nothing in Azure to drift: a wait, not a thing

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class KubeAccess(dynamic.Resource):
    """Done once the deployer may do each of ``reviews`` in the cluster at ``server``."""

    def __init__(
        self,
        name: str,
        *,
        server: pulumi.Input[str],
        ca_data: pulumi.Input[str],
        server_id: pulumi.Input[str],
        reviews: Sequence[Mapping[str, str]],
        role_assignment_id: pulumi.Input[str] = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            KubeAccessProvider(),
            name,
            {
                "server": server,
                "ca_data": ca_data,
                "server_id": server_id,
                "reviews": [dict(r) for r in reviews],
                "role_assignment_id": role_assignment_id,
                "timeout_s": timeout_s,
            },
            opts,
        )
