"""The storage redundancy check (components/providers/redundancy_check.py) against a loopback ARM:
a zone change of an existing account is refused with the conversion to start (Azure refuses it as
an update: redundancy-migration), a geo or read-access change passes, a new account passes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from components.providers import redundancy_check as rc
from tests.infra.providers.loopback import JsonServer

PATH = (
    "/subscriptions/sub-1/resourceGroups/rg-prod/providers/Microsoft.Storage/storageAccounts/"
    "stmlprod?api-version=2023-05-01"
)


@dataclass
class FakeArm(JsonServer):
    sku: str | None = "Standard_LRS"  # None: no such account
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        self.seen.append((path, auth))
        if self.sku is None:
            return 404, {"error": {"code": "ResourceNotFound", "message": "not found"}}
        return 200, {"name": "stmlprod", "sku": {"name": self.sku, "tier": "Standard"}}


@pytest.fixture(scope="module")
def server() -> Any:
    with FakeArm() as arm:  # one server for the module (each stop waits for its poll)
        yield arm


@pytest.fixture
def arm(server: FakeArm) -> FakeArm:
    server.seen.clear()
    return server


def props(url: str, sku: str) -> dict[str, Any]:
    return {
        "arm": url,
        "subscription_id": "sub-1",
        "resource_group_name": "rg-prod",
        "account_name": "stmlprod",
        "sku": sku,
        "key": "mlscore:storageRedundancy",
    }


def test_adding_zone_redundancy_to_an_existing_account_is_refused_with_the_conversion(
    arm: FakeArm,
) -> None:
    # LRS -> GZRS (dev's to prod's): zone part by conversion to ZRS, then GZRS as an update
    arm.sku = "Standard_LRS"
    with pytest.raises(rc.ConversionNeeded) as e:
        rc.check(props(arm.url, "Standard_GZRS"), token=lambda: "tok")
    message = str(e.value)
    assert message.startswith("mlscore:storageRedundancy: storage account stmlprod is Standard_LRS")
    assert "adds zone redundancy" in message and "StorageAccountTypeConversionNotAllowed" in message
    assert (
        "az storage account migration start --account-name stmlprod --resource-group rg-prod "
        "--sku Standard_ZRS"
    ) in message
    assert rc.HOW_TO in message
    assert arm.seen == [(PATH, "Bearer tok")]  # read as the deployer


def test_removing_zone_redundancy_keeps_the_geo_part_in_the_conversion(arm: FakeArm) -> None:
    arm.sku = "Standard_RAGZRS"
    with pytest.raises(rc.ConversionNeeded, match=r"removes zone redundancy.*--sku Standard_RAGRS"):
        rc.check(props(arm.url, "Standard_LRS"), token=lambda: "tok")


@pytest.mark.parametrize(
    ("current", "wanted"),
    [("Standard_LRS", "Standard_GRS"), ("Standard_ZRS", "Standard_GZRS"),
     ("Standard_GZRS", "Standard_GZRS"), ("Standard_ZRS", "Standard_RAGZRS")],
)  # fmt: skip
def test_geo_and_read_access_changes_are_updates(arm: FakeArm, current: str, wanted: str) -> None:
    arm.sku = current
    assert rc.check(props(arm.url, wanted), token=lambda: "tok") == current


def test_a_converted_account_passes_and_a_new_one_too(arm: FakeArm) -> None:
    arm.sku = "Standard_ZRS"  # after `migration start --sku Standard_ZRS`
    assert rc.check(props(arm.url, "Standard_GZRS"), token=lambda: "tok") == "Standard_ZRS"
    arm.sku = None  # a first run: the account does not exist yet
    assert rc.check(props(arm.url, "Standard_GZRS"), token=lambda: "tok") is None


def test_the_provider_checks_on_create_and_on_a_sku_change_only() -> None:
    provider = rc.RedundancyCheckProvider()
    old = props("http://127.0.0.1:9", "Standard_LRS")
    assert not provider.diff("id", old, dict(old)).changes
    assert provider.diff("id", old, {**old, "sku": "Standard_GZRS"}).changes
