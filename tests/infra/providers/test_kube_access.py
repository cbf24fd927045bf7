"""The AKS readiness wait (``components/providers/kube_access.py``) against a loopback server that
plays the API server while the deployer's Azure RBAC role propagates: 403, then
``allowed: false``, then ``allowed: true``; and the bounded end of the wait with its message."""

from __future__ import annotations

import time
from typing import Any

import pytest

from components.providers.kube_access import (
    KubeAccessError,
    KubeAccessProvider,
    wait_for_access,
)
from components.providers.waiting import Backoff, WaitTimeout
from components.targets.aks.cluster import FIRST_CALLS
from tests.infra.providers.fake_kube_api import REVIEW_PATH, FakeKubeApi

FAST = Backoff(first=0.01, cap=0.05)
GRANT = "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/r"


def props(api: FakeKubeApi, **extra: Any) -> dict[str, Any]:
    return {
        "server": api.url,
        "ca_data": "",
        "server_id": "6dae42f8-4368-4678-94ff-3960e28e3630",
        "reviews": [dict(r) for r in FIRST_CALLS],
        "role_assignment_id": GRANT,
        "timeout_s": 10.0,
        **extra,
    }


def test_waits_through_403_and_denied_until_the_role_works() -> None:
    with FakeKubeApi(forbidden=3, denied=2) as api:
        rounds = wait_for_access(props(api), token=lambda: api.token, backoff=FAST)
    # 3 x 403, 2 x allowed:false, then both reviews allowed in one round
    assert rounds == 6
    assert len(api.seen) == 7
    assert {r["path"] for r in api.seen} == {REVIEW_PATH}
    last = [r["body"]["spec"]["resourceAttributes"] for r in api.seen[-2:]]
    assert last == [
        {"verb": "create", "resource": "namespaces"},
        {"verb": "create", "group": "apps", "resource": "deployments"},
    ]
    assert all(r["body"]["kind"] == "SelfSubjectAccessReview" for r in api.seen)


def test_the_wait_is_bounded_and_says_what_it_waited_for_and_how_long() -> None:
    with FakeKubeApi(always=403) as api:
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as err:
            wait_for_access(props(api, timeout_s=1.0), token=lambda: api.token, backoff=FAST)
        assert time.monotonic() - started < 5
    message = str(err.value)
    assert "the deployer's Azure RBAC role to allow 'create namespaces'" in message
    assert "'create deployments.apps'" in message and api.url in message
    assert "(limit 1 s" in message
    assert "last answer: 403" in message
    assert "up to 10 minutes" in message


def test_a_denied_review_is_named_in_the_timeout() -> None:
    with FakeKubeApi(denied=10_000) as api, pytest.raises(WaitTimeout) as err:
        wait_for_access(props(api, timeout_s=0.5), token=lambda: api.token, backoff=FAST)
    assert "'create namespaces' not allowed yet (no role assignment found yet)" in str(err.value)


def test_an_unreachable_api_server_is_retried_then_reported() -> None:
    with FakeKubeApi() as api:
        url = api.url  # closed on exit: nothing listens there any more
    with pytest.raises(WaitTimeout, match=r"cannot reach http://127\.0\.0\.1:\d+"):
        wait_for_access(
            {**props(api), "server": url, "timeout_s": 0.5}, token=lambda: "t", backoff=FAST
        )


def test_an_answer_waiting_cannot_fix_fails_at_once() -> None:
    with FakeKubeApi(always=400) as api:
        with pytest.raises(KubeAccessError, match="answered 400"):
            wait_for_access(props(api), token=lambda: api.token, backoff=FAST)
        assert len(api.seen) == 1


def test_the_provider_signs_in_for_the_aks_server_application(monkeypatch) -> None:
    import azure.identity

    scopes: list[str] = []

    class Credential:
        def get_token(self, scope: str) -> Any:
            scopes.append(scope)
            return type("T", (), {"token": "entra-token"})()

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Credential)
    with FakeKubeApi(token="entra-token", forbidden=1) as api:
        p = props(api)
        result = KubeAccessProvider().create(p)
    assert result.outs == p and result.id == f"{api.url}#access"
    assert set(scopes) == {"6dae42f8-4368-4678-94ff-3960e28e3630/.default"}


def test_a_new_grant_waits_again_and_a_new_limit_does_not() -> None:
    provider = KubeAccessProvider()
    old = {"server": "s", "server_id": "x", "reviews": [], "role_assignment_id": "a"}
    assert provider.diff("id", old, {**old, "role_assignment_id": "b"}).changes is True
    assert provider.diff("id", old, {**old, "timeout_s": 5.0}).changes is False
