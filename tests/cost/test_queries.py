"""The ``--refresh`` queries against real answers of the Retail Prices API for other meters than
tests/cost/test_upstream.py: tests/cost/data/finfocus-eastus-retail.json holds, unchanged, items
of the eastus answers recorded by https://github.com/rshade/finfocus-plugin-azure-public
(Apache-2.0, commit 0d26960) for the AKS tier and the Premium Functions meters. They are eastus
answers: they check how the API spells what the queries ask for, and no price of theirs is in the
West Europe snapshot."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cost import catalog, refresh
from cost.snapshot import load

DATA = json.loads((Path(__file__).parent / "data" / "finfocus-eastus-retail.json").read_text())
ITEMS = [i for items in DATA["items"].values() for i in items]


def fetch(url: str) -> dict[str, Any]:
    """What the API answers: the items matching every ``field eq 'value'`` clause of the filter."""
    filter_ = parse_qs(urlsplit(url).query)["$filter"][0]
    wanted = {k: v for k, v in re.findall(r"(\w+) eq '([^']*)'", filter_) if k != "priceType"}
    return {
        "Items": [i for i in ITEMS if all(str(i.get(k, "")) == v for k, v in wanted.items())],
        "NextPageLink": None,
    }


@pytest.mark.parametrize(
    ("key", "meter_id", "unit"),
    [
        # skuName 'Standard' also answers "Standard Long Term Support" ($0.60 an hour)
        ("aks-tier/Standard", "251a08e1-40d6-48e6-8368-4c3e5ee3bbff", "1 Hour"),
        (
            "functions-premium/Premium vCPU Duration",
            "df5a0f19-e5ba-4d46-95cd-0fb29c69e7cd",
            "1 Hour",
        ),
        (
            "functions-premium/Premium Memory Duration",
            "08bfd03b-1cc7-43b7-bb94-66082518eeaf",
            "1 GiB Hour",
        ),
    ],
)
def test_refresh_picks_the_meter_from_real_answers(key: str, meter_id: str, unit: str) -> None:
    entry = refresh.entry(key, "eastus", catalog.API, dt.date(2026, 1, 1), fetch)
    assert (entry["meterId"], entry["unitOfMeasure"]) == (meter_id, unit), entry
    assert "otherMeters" not in entry


def test_the_snapshot_names_the_aks_tier_meter_as_the_api_does() -> None:
    recorded = {i["meterId"]: i["meterName"] for i in ITEMS}
    assert (
        load("westeurope").entries["aks-tier/Standard"]["meterName"]
        == recorded["251a08e1-40d6-48e6-8368-4c3e5ee3bbff"]
    )


def test_private_dns_zones_are_asked_under_no_region() -> None:
    """The API lists "Private Zone" under armRegionName '' or 'Global', not under a region."""
    query = catalog.query("private-dns/Private Zone", "westeurope")
    assert "armRegionName" not in query and "meterName eq 'Private Zone'" in query


def test_every_snapshot_entry_records_the_query_refresh_sends() -> None:
    snapshot = load("westeurope")
    assert {k: e["query"] for k, e in snapshot.entries.items()} == {
        k: catalog.query(k, "westeurope") for k in snapshot.entries
    }
