"""The host-keys wait (``components/providers/function_keys.py``) against a loopback server that
plays ARM's ``listkeys`` while the Functions host starts: 400 "from host runtime" first, then the
keys; and the bounded end of the wait with its message."""

from __future__ import annotations

from typing import Any

import pytest

from components.providers.function_keys import (
    API_VERSION,
    FunctionHostKeysProvider,
    FunctionKeysError,
    read_host_keys,
)
from components.providers.waiting import Backoff, WaitTimeout
from tests.infra.providers.loopback import JsonServer

SITE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/fn1"
FAST = Backoff(first=0.01, cap=0.05)
NOT_RUNNING = {
    "Code": "BadRequest",
    "Message": "Encountered an error (ServiceUnavailable) from host runtime.",
}


class FakeArm(JsonServer):
    """ARM's listkeys while the host starts: ``starting`` answers of ``status``, then the keys."""

    def __init__(self, starting: int, status: int = 400):
        self.starting, self.status, self.seen = starting, status, []

    def answer(self, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        self.seen.append((path, auth))
        if len(self.seen) <= self.starting:
            return self.status, NOT_RUNNING
        return 200, {"masterKey": "m", "functionKeys": {"default": "fk-1"}}


def props(arm: FakeArm, **extra: Any) -> dict[str, Any]:
    return {"site_id": SITE, "endpoint": arm.url, "timeout_s": 10.0, "after": [], **extra}


def test_keys_are_read_once_the_host_answers() -> None:
    with FakeArm(starting=3) as arm:
        assert read_host_keys(props(arm), token=lambda: "t", backoff=FAST) == "fk-1"
    assert len(arm.seen) == 4
    assert arm.seen[0] == (f"{SITE}/host/default/listkeys?api-version={API_VERSION}", "Bearer t")


def test_the_wait_is_bounded_and_says_what_it_waited_for_and_how_long() -> None:
    with FakeArm(starting=10_000) as arm, pytest.raises(WaitTimeout) as err:
        read_host_keys(props(arm, timeout_s=0.5), token=lambda: "t", backoff=FAST)
    message = str(err.value)
    assert f"the Functions host of {SITE} to answer listkeys" in message
    assert "(limit 0 s" in message or "(limit 1 s" in message
    assert "last answer: 400" in message and "from host runtime" in message


def test_a_refused_caller_fails_at_once() -> None:
    with FakeArm(starting=10_000, status=403) as arm:
        with pytest.raises(FunctionKeysError, match="refused"):
            read_host_keys(props(arm), token=lambda: "t", backoff=FAST)
        assert len(arm.seen) == 1


def test_the_provider_keeps_only_the_default_key(monkeypatch) -> None:
    import azure.identity

    class Credential:
        def get_token(self, scope: str) -> Any:
            assert scope == "https://management.azure.com/.default"
            return type("T", (), {"token": "arm"})()

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Credential)
    with FakeArm(starting=0) as arm:
        result = FunctionHostKeysProvider().create(props(arm))
    assert result.outs["default_key"] == "fk-1" and "masterKey" not in result.outs
    assert set(result.outs) == set(props(arm)) | {"default_key"}
