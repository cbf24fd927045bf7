"""The Istio gateway's address, awaited (components/providers/gateway_address.py): a loopback API
server that answers 404 while the add-on has not created the Service, then the Service without a
load balancer IP, then with one (the first run of a cluster, in order)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from components.providers import gateway_address as ga
from components.providers.waiting import Backoff, WaitTimeout
from tests.infra.providers.loopback import JsonServer

PATH = ga.service_path("aks-istio-ingress", "aks-istio-ingressgateway-external")
FAST = Backoff(first=0.01, cap=0.02)


@dataclass
class FakeServiceApi(JsonServer):
    missing: int = 0  # 404s before the add-on creates the Service
    pending: int = 0  # answers without an IP after that
    always: int | None = None
    seen: list[str] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        self.seen.append(path)
        if auth != "Bearer entra-token":
            return 401, {"kind": "Status", "code": 401}
        if self.always is not None:
            return self.always, {"kind": "Status", "code": self.always}
        n = len(self.seen)
        if path != PATH or n <= self.missing:
            return 404, {"kind": "Status", "code": 404, "reason": "NotFound"}
        ingress = [] if n <= self.missing + self.pending else [{"ip": "20.61.1.2"}]
        return 200, {"kind": "Service", "status": {"loadBalancer": {"ingress": ingress}}}


def props(url: str, timeout_s: float = 5) -> dict[str, Any]:
    return {
        "server": url,
        "ca_data": "",
        "server_id": "6dae42f8-4368-4678-94ff-3960e28e3630",
        "namespace": "aks-istio-ingress",
        "name": "aks-istio-ingressgateway-external",
        "timeout_s": timeout_s,
    }


def test_waits_through_a_missing_service_and_a_pending_ip() -> None:
    with FakeServiceApi(missing=2, pending=2) as api:
        ip = ga.wait_for_address(props(api.url), token=lambda: "entra-token", backoff=FAST)
    assert ip == "20.61.1.2" and len(api.seen) == 5 and set(api.seen) == {PATH}


def test_the_wait_is_bounded_and_says_what_it_saw_last() -> None:
    with FakeServiceApi(missing=10**6) as api, pytest.raises(WaitTimeout) as err:
        ga.wait_for_address(props(api.url, 0.2), token=lambda: "entra-token", backoff=FAST)
    text = str(err.value)
    assert "aks-istio-ingress/aks-istio-ingressgateway-external" in text and "404" in text
    assert "kubectl get svc -n aks-istio-ingress" in text


def test_an_answer_waiting_cannot_fix_fails_at_once() -> None:
    with FakeServiceApi(always=400) as api, pytest.raises(ga.GatewayAddressError):
        ga.wait_for_address(props(api.url), token=lambda: "entra-token", backoff=FAST)
    assert len(api.seen) == 1


def test_prod_endpoint_and_dns_target_come_from_the_awaited_address(prod) -> None:
    address = prod.one("pulumi-python:dynamic/aks:GatewayAddress")
    assert address.inputs["namespace"] == "aks-istio-ingress"
    access = prod.one("pulumi-python:dynamic:Resource", "deployer-api-access")
    assert access.urn in address.dependencies  # the deployer may read the API first
    assert prod.outputs["endpoints"]["aks"]["ingress_ip"] == address.outputs["ip"]
