"""Stop before a storage SKU change that Azure does only as a conversion.

``storageRedundancy`` sets every storage account's ``sku.name`` (Standard_LRS, _GRS, _RAGRS,
_ZRS, _GZRS, _RAGZRS). On an existing account, adding or removing geo-replication or read access
is a plain update, but adding or removing **zone** redundancy is not: "To add or remove
geo-replication or read access to the secondary region, you can simply change the replication
setting ... To add or remove zone-redundancy requires using either customer-initiated conversion,
support-requested conversion, or a manual migration", and "If you want to change both
zone-redundancy and either geo-replication or read-access, a two-step process is required ... the
zone-redundancy conversion must be performed separately"
(https://learn.microsoft.com/azure/storage/common/redundancy-migration). A PUT with such a SKU is
refused with ``StorageAccountTypeConversionNotAllowed`` (hashicorp/terraform-provider-azurerm#6526;
azurerm answers by replacing the account, which deletes its data: #12479, #32049). So LRS -> GZRS,
the dev-to-prod step, would fail the account's update half-way through a ``pulumi up``.

:class:`RedundancyCheck` reads the account's current SKU from Azure Resource Manager
(``GET .../storageAccounts/{name}``, api-version 2023-05-01,
https://learn.microsoft.com/rest/api/storagerp/storage-accounts/get-properties) as the deployer,
when ``pulumi up`` creates it or the wanted SKU changes; the account depends on it, so the refused
PUT is never sent. A zone change fails it with the conversion to start (``az storage account
migration start``, the customer-initiated conversion), after which the same ``pulumi up`` passes
(the check reads the converted SKU) and applies any geo or read-access part as an update. A
missing account (a first run) passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import requests
from pulumi import dynamic

from components.providers.feature_check import ARM, arm_token

API_VERSION = "2023-05-01"
HOW_TO = "https://learn.microsoft.com/azure/storage/common/redundancy-migration"
# The same replication with the other zone-ness: what a conversion turns each SKU into.
OTHER_ZONENESS = {
    "LRS": "ZRS",
    "ZRS": "LRS",
    "GRS": "GZRS",
    "GZRS": "GRS",
    "RAGRS": "RAGZRS",
    "RAGZRS": "RAGRS",
}


class ConversionNeeded(RuntimeError):
    """The SKU change adds or removes zone redundancy; the message says how to convert."""


def _redundancy(sku: str) -> str:
    return sku.removeprefix("Standard_").upper()


def zone_redundant(sku: str) -> bool:
    return "ZRS" in _redundancy(sku)


def conversion(props: Mapping[str, Any], current: str | None) -> str | None:
    """The conversion ``current`` needs before ``props['sku']`` can be set as an update: its SKU
    with the other zone-ness (geo and read access kept: the two-step process); None if none."""
    wanted = str(props["sku"])
    if current is None or zone_redundant(current) == zone_redundant(wanted):
        return None
    return "Standard_" + OTHER_ZONENESS[_redundancy(current)]


def account_url(base: str, props: Mapping[str, Any]) -> str:
    return (
        f"{base.rstrip('/')}/subscriptions/{props['subscription_id']}/resourceGroups/"
        f"{props['resource_group_name']}/providers/Microsoft.Storage/storageAccounts/"
        f"{props['account_name']}?api-version={API_VERSION}"
    )


def current_sku(props: Mapping[str, Any], token: Callable[[], str] | None = None) -> str | None:
    """The account's SKU in Azure; None when there is no such account yet."""
    url = account_url(str(props.get("arm") or ARM), props)
    response = requests.get(
        url, headers={"Authorization": f"Bearer {(token or arm_token)()}"}, timeout=30
    )
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise ConversionNeeded(
            f"{props['key']}: cannot read storage account {props['account_name']}'s SKU "
            f"({response.status_code} {response.text[:200].strip()})"
        )
    return str(((response.json() or {}).get("sku") or {}).get("name") or "")


def check(props: Mapping[str, Any], token: Callable[[], str] | None = None) -> str | None:
    """Raise :class:`ConversionNeeded` with the how-to; return the current SKU otherwise."""
    current = current_sku(props, token)
    step = conversion(props, current)
    if step is not None:
        name, group = props["account_name"], props["resource_group_name"]
        raise ConversionNeeded(
            f"{props['key']}: storage account {name} is {current}, and {props['sku']} "
            f"{'adds' if zone_redundant(str(props['sku'])) else 'removes'} zone redundancy, which "
            f"Azure does only as a conversion (an update is refused: "
            f"StorageAccountTypeConversionNotAllowed). Start it: az storage account migration "
            f"start --account-name {name} --resource-group {group} --sku {step} --no-wait; when "
            f"`az storage account show -n {name} -g {group} --query sku.name` says {step}, run "
            f"pulumi up again (it sets any geo or read-access change as an update). {HOW_TO}"
        )
    return current


WATCHED = ("subscription_id", "resource_group_name", "account_name", "sku")


class RedundancyCheckProvider(dynamic.ResourceProvider):
    """Inputs: subscription_id, resource_group_name, account_name, sku, key (arm: tests only)."""

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        check(props)
        key = f"{props['subscription_id']}/{props['resource_group_name']}/{props['account_name']}"
        return dynamic.CreateResult(id_=key, outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [k for k in WATCHED if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        check(news)
        return dynamic.UpdateResult(outs=news)

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        return dynamic.ReadResult(id_, props)  # a check, not a thing to drift

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class RedundancyCheck(dynamic.Resource, module="storage", name="RedundancyCheck"):
    """Created (or updated) only if the account can take ``sku`` as an update."""

    def __init__(
        self,
        name: str,
        *,
        subscription_id: pulumi.Input[str],
        resource_group_name: pulumi.Input[str],
        account_name: str,
        sku: str,
        key: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            RedundancyCheckProvider(),
            name,
            {
                "subscription_id": subscription_id,
                "resource_group_name": resource_group_name,
                "account_name": account_name,
                "sku": sku,
                "key": key,
            },
            opts,
        )
