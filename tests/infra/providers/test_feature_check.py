"""The subscription feature check (components/providers/feature_check.py) against a loopback ARM:
a feature never registered (404, where the invoke the program used to call failed the whole run
with the raw error), one registering, one registered, an answer that is not about the feature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from components.providers import feature_check as fc
from components.targets.aks.settings.nodes import ENCRYPTION_AT_HOST_FIX
from tests.infra.providers.loopback import JsonServer

PATH = (
    "/subscriptions/sub-1/providers/Microsoft.Features/providers/Microsoft.Compute/features/"
    "EncryptionAtHost?api-version=2021-07-01"
)


@dataclass
class FakeArm(JsonServer):
    status: int = 200
    state: str = "Registered"
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        self.seen.append((path, auth))
        if self.status != 200:
            return self.status, {"error": {"code": "FeatureNotFound", "message": "not found"}}
        return 200, {
            "name": "Microsoft.Compute/EncryptionAtHost",
            "properties": {"state": self.state},
        }


def props(url: str) -> dict[str, Any]:
    return {
        "arm": url,
        "subscription_id": "sub-1",
        "namespace": "Microsoft.Compute",
        "feature": "EncryptionAtHost",
        "needed_by": "mlscore:aksEncryptionAtHost is true",
        "fix": ENCRYPTION_AT_HOST_FIX,
    }


def test_a_registered_feature_passes_and_is_read_as_the_deployer() -> None:
    with FakeArm() as arm:
        assert fc.feature_state(props(arm.url), token=lambda: "arm-token") == "Registered"
    assert arm.seen == [(PATH, "Bearer arm-token")]


@pytest.mark.parametrize(
    ("status", "state", "said"),
    [
        (404, "", "never registered"),
        (200, "Registering", "is Registering"),
        (200, "NotRegistered", "is NotRegistered"),
    ],
)
def test_anything_but_registered_stops_with_the_command(status: int, state: str, said: str) -> None:
    with FakeArm(status=status, state=state) as arm, pytest.raises(fc.FeatureNotRegistered) as err:
        fc.feature_state(props(arm.url), token=lambda: "arm-token")
    text = str(err.value)
    assert said in text and "mlscore:aksEncryptionAtHost" in text
    assert "az feature register --namespace Microsoft.Compute --name EncryptionAtHost" in text


def test_an_answer_about_something_else_says_so() -> None:
    with FakeArm(status=403) as arm, pytest.raises(fc.FeatureNotRegistered, match="cannot read"):
        fc.feature_state(props(arm.url), token=lambda: "arm-token")
