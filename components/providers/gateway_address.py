"""Wait, boundedly, for the public IP of the Istio add-on's external ingress gateway Service.

The add-on creates ``aks-istio-ingress/aks-istio-ingressgateway-external`` itself, after the
cluster, and Azure's cloud provider gives it a load balancer IP some time later
(https://learn.microsoft.com/azure/aks/istio-deploy-ingress: ``kubectl get svc
aks-istio-ingressgateway-external -n aks-istio-ingress`` shows the ``EXTERNAL-IP`` once assigned).
Reading the Service once (``Service.get``) on a first ``pulumi up`` fails while it does not exist
yet, or yields an empty address, so the endpoint's URL and the DNS record's target would be
empty. :class:`GatewayAddress` polls ``GET /api/v1/namespaces/<ns>/services/<name>`` as the
deployer (an Entra token for the AKS server application, as kubelogin gets it) until
``status.loadBalancer.ingress`` has an IP, or fails after ``timeout_s`` naming what it saw last.

The address is the add-on's, not a static IP of ours: "Customizations to IP address on internal
and external gateways aren't supported yet" (same page). A refresh reads it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import requests
from pulumi import dynamic

from components.providers.kube_access import ca_file, entra_token
from components.providers.waiting import Backoff, wait_until

DEFAULT_TIMEOUT_S = 900.0  # the add-on's gateway and its load balancer, after a new cluster
RETRY_STATUSES = (401, 403, 404, 429, 500, 502, 503, 504)  # not there yet, or not allowed yet


class GatewayAddressError(RuntimeError):
    """An answer waiting cannot change."""


def service_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/services/{name}"


def first_ip(service: Mapping[str, Any]) -> str:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return next((str(i["ip"]) for i in ingress if i.get("ip")), "")


def address_check(
    props: Mapping[str, Any], token: Callable[[], str], verify: str | bool, found: list[str]
) -> Callable[[], tuple[bool, str]]:
    """One GET of the Service: (has an IP, what the answer said); the IP goes into ``found``."""
    url = str(props["server"]).rstrip("/") + service_path(props["namespace"], props["name"])

    def check() -> tuple[bool, str]:
        try:
            response = requests.get(
                url, headers={"Authorization": f"Bearer {token()}"}, verify=verify, timeout=30
            )
        except requests.RequestException as exc:
            return False, f"cannot reach {url}: {type(exc).__name__}: {exc}"
        if response.status_code in RETRY_STATUSES:
            return False, f"{response.status_code} {response.text[:200].strip()}"
        if response.status_code != 200:
            raise GatewayAddressError(f"{url} answered {response.status_code}: {response.text}")
        ip = first_ip(response.json() or {})
        if not ip:
            return False, "the Service exists, its load balancer has no IP yet"
        found.append(ip)
        return True, ip

    return check


def wait_for_address(
    props: Mapping[str, Any],
    *,
    token: Callable[[], str] | None = None,
    backoff: Backoff | None = None,
) -> str:
    """Block until the Service has a load balancer IP; that IP."""
    server_id = str(props.get("server_id") or "")
    get_token = token or (lambda: entra_token(server_id))
    found: list[str] = []
    with ca_file(str(props.get("ca_data") or "")) as verify:
        wait_until(
            f"an IP on Service {props['namespace']}/{props['name']} at {props['server']}",
            address_check(props, get_token, verify, found),
            timeout_s=float(props.get("timeout_s") or DEFAULT_TIMEOUT_S),
            backoff=backoff or Backoff(),
            hint=(
                "The Istio add-on creates its external gateway after the cluster; check `kubectl "
                "get svc -n aks-istio-ingress` and the cluster's load balancer, then run "
                "`pulumi up` again"
            ),
        )
    return found[-1]


WATCHED = ("server", "namespace", "name")


class GatewayAddressProvider(dynamic.ResourceProvider):
    """Inputs: server, ca_data, server_id, namespace, name, timeout_s. Output: ip."""

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        ip = wait_for_address(props)
        return dynamic.CreateResult(
            id_=f"{props['server']}#{props['name']}", outs={**props, "ip": ip}
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [k for k in WATCHED if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs={**news, "ip": wait_for_address(news)})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        try:  # a refresh: the current address, once (no wait); the last one if unreachable
            ip = wait_for_address({**props, "timeout_s": 1}, backoff=Backoff(first=0.1))
        except Exception:
            ip = props.get("ip", "")
        return dynamic.ReadResult(id_, {**props, "ip": ip})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None  # the Service is the add-on's


class GatewayAddress(dynamic.Resource, module="aks", name="GatewayAddress"):
    """``ip``: the load balancer IP of Service ``namespace/name``, once it has one."""

    ip: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        server: pulumi.Input[str],
        ca_data: pulumi.Input[str],
        server_id: pulumi.Input[str],
        namespace: str,
        service: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            GatewayAddressProvider(),
            name,
            {
                "server": server,
                "ca_data": ca_data,
                "server_id": server_id,
                "namespace": namespace,
                "name": service,
                "timeout_s": timeout_s,
                "ip": None,
            },
            opts,
        )
