"""Rebuild the price snapshot from the Azure Retail Prices API (``python -m cost --refresh``).

For every price key the stacks ask for, it sends the key's ``$filter`` (``catalog.py``) to
https://prices.azure.com/api/retail/prices, follows ``NextPageLink`` until it is null (the API
answers at most 1,000 items a page:
https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices), picks the
pay-as-you-go item of the key (lowest tier), and writes ``cost/prices/<region>.json`` with the
query, meter ID, effective date and retrieval date of every price. A key nothing answers is
written as ``notEstimated`` with the query, never as 0. Needs no credentials.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cost import catalog
from cost.snapshot import PRICES, path_for

Fetch = Callable[[str], Mapping[str, Any]]
MAX_PAGES = 50  # a key's filter answers a few items; 50 pages means a filter gone wrong


def http_get(url: str) -> Mapping[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read().decode("utf-8"))


def first_url(api: str, filter_: str) -> str:
    query = urllib.parse.urlencode({"api-version": catalog.API_VERSION, "$filter": filter_})
    return f"{api}?{query}"


def items(api: str, filter_: str, fetch: Fetch = http_get) -> Iterator[Mapping[str, Any]]:
    """Every item the API answers for ``filter_``, across pages."""
    url: str | None = first_url(api, filter_)
    for _ in range(MAX_PAGES):
        if not url:
            return
        page = fetch(url)
        yield from page.get("Items") or []
        url = page.get("NextPageLink")
    raise RuntimeError(f"more than {MAX_PAGES} pages for {filter_!r}: narrow the key's filter")


def entry(
    key: str, region: str, api: str, today: dt.date, fetch: Fetch = http_get
) -> dict[str, Any]:
    family, _ = catalog.family_of(key)
    filter_ = catalog.query(key, region)
    chosen = [i for i in items(api, filter_, fetch) if family.picks(i)]
    base = {"query": filter_, "seen": today.isoformat(), "source": api}
    if not chosen:
        return {**base, "notEstimated": "the Retail Prices API answered no item for this query"}
    # Tiered meters answer one item per tier: the first tier is the pay-as-you-go list price.
    item = min(chosen, key=lambda i: (float(i.get("tierMinimumUnits") or 0), str(i.get("meterId"))))
    meters = sorted({str(i.get("meterId")) for i in chosen})
    return {
        **base,
        "retailPrice": float(item["retailPrice"]),
        "unitOfMeasure": item["unitOfMeasure"],
        "meterId": item.get("meterId"),
        "meterName": item.get("meterName"),
        "productName": item.get("productName"),
        "skuName": item.get("skuName"),
        "effectiveStartDate": item.get("effectiveStartDate"),
        **(
            {"otherMeters": [m for m in meters if m != item.get("meterId")]}
            if len(meters) > 1
            else {}
        ),
    }


def build(
    keys: Iterable[str],
    region: str,
    *,
    api: str = catalog.API,
    today: dt.date,
    fetch: Fetch = http_get,
) -> dict[str, Any]:
    return {
        "region": region,
        "currency": "USD",
        "built": today.isoformat(),
        "method": f"python -m cost --refresh against {api}",
        "prices": {key: entry(key, region, api, today, fetch) for key in sorted(set(keys))},
    }


def needed_keys(stacks: Iterable[str]) -> dict[str, set[str]]:
    """Region -> the price keys the stacks' estimates ask for (the programs run under mocks)."""
    from cost import estimate as est
    from cost.snapshot import Snapshot
    from preview import engine

    found: dict[str, set[str]] = {}
    for stack in stacks:
        run = engine.run(stack, preview=True)
        if run.error is not None:
            raise RuntimeError(f"the {stack} program failed under mocks: {run.error}")
        declared = est.declared_from_run(run.resources)
        region = est.region_of(declared)
        empty = Snapshot(region, "", path_for(region), {})
        assumptions, _ = est.load_assumptions(stack)
        estimate = est.estimate(stack, declared, assumptions=assumptions, snapshot=empty)
        found.setdefault(region, set()).update(k for x in estimate.lines for k in x.price_keys)
    return found


def main(
    stacks: list[str] | None,
    *,
    api: str | None = None,
    directory: Path = PRICES,
    today: dt.date | None = None,
    fetch: Fetch = http_get,
) -> int:
    from preview import engine

    day = today or dt.datetime.now(dt.UTC).date()
    for region, keys in needed_keys(stacks or engine.stacks()).items():
        data = build(keys, region, api=api or catalog.API, today=day, fetch=fetch)
        path = path_for(region, directory)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        missing = sum("notEstimated" in e for e in data["prices"].values())
        print(f"{path}: {len(keys)} prices, {missing} not answered", file=sys.stderr)
    return 0
