"""The snapshot and ``--refresh`` against real answers of the Retail Prices API for West Europe.

tests/cost/data/azure-pricing-radar-westeurope.json holds, unchanged, the items of the public
snapshots https://github.com/andy-diericks/azure-pricing-radar (MIT) took of the API on
2026-08-22 for "serviceName eq 'Virtual Machines' | 'Storage' and armRegionName eq 'westeurope'"
that concern the sizes and meters the stacks use: Linux, Windows, Spot and Low Priority meters
of each VM size, the P10 disk and its "Disk Mount" meter, blob storage. The repository's snapshot
must agree with them, and ``--refresh`` must pick the same meter out of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cost import catalog, refresh
from cost.snapshot import load

DATA = json.loads(
    (Path(__file__).parent / "data" / "azure-pricing-radar-westeurope.json").read_text()
)
SERVICE = {"vm-eu-west.json": "Virtual Machines", "storage-eu-west.json": "Storage"}


def api_items() -> list[dict[str, Any]]:
    """The recorded items with the fields the recording dropped put back from its keys and scope:
    meterId and type (in the key), serviceName and armRegionName (in the query), and armSkuName,
    which the API derives from the meter ("E4ds v4" -> "Standard_E4ds_v4" in the answer shown at
    https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices)."""
    items = []
    for file, recorded in DATA["items"].items():
        for key, item in recorded.items():
            _, meter_id, type_, _ = key.split("|")
            size = re.sub(r" (Low Priority|Spot)$", "", item["meterName"]).replace(" - Expired", "")
            items.append(
                {
                    **item,
                    "meterId": meter_id,
                    "type": type_,
                    "serviceName": SERVICE[file],
                    "armSkuName": "Standard_" + size.replace(" ", "_")
                    if file.startswith("vm")
                    else "",
                }
            )
    return items


def answer(filter_: str) -> list[dict[str, Any]]:
    """What the API answers: the items matching every ``field eq 'value'`` clause of the filter."""
    clauses = re.findall(r"(\w+) eq '([^']*)'", filter_)
    wanted = {k: v for k, v in clauses if k != "priceType"}
    return [i for i in api_items() if all(str(i.get(k, "")) == v for k, v in wanted.items())]


def fetch(url: str) -> dict[str, Any]:
    from urllib.parse import parse_qs, urlsplit

    filter_ = parse_qs(urlsplit(url).query)["$filter"][0]
    return {"Items": answer(filter_), "NextPageLink": None}


SOURCED = [
    k for k, e in load("westeurope").entries.items() if "azure-pricing-radar" in e.get("source", "")
]


def test_the_snapshot_cites_the_recorded_answers() -> None:
    assert len(SOURCED) == 9


@pytest.mark.parametrize("key", SOURCED)
def test_snapshot_entries_agree_with_the_recorded_answers(key: str) -> None:
    entry = load("westeurope").entries[key]
    recorded = {i["meterId"]: i for i in api_items()}[entry["meterId"]]
    assert (recorded["retailPrice"], recorded["unitOfMeasure"], recorded["meterName"]) == (
        entry["retailPrice"],
        entry["unitOfMeasure"],
        entry["meterName"],
    )


@pytest.mark.parametrize("key", SOURCED)
def test_refresh_picks_the_same_meter_from_the_real_answers(key: str) -> None:
    entry = refresh.entry(key, "westeurope", catalog.API, refresh.dt.date(2026, 8, 22), fetch)
    assert entry["meterId"] == load("westeurope").entries[key]["meterId"], entry
