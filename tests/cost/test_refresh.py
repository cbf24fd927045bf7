"""``--refresh`` against a local fake of the Retail Prices API: paged answers linked by
``NextPageLink`` (https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices:
"The API returns 1000 records per page... use the NextPageLink"), items shaped like the page's
sample answer (meterId, retailPrice, unitOfMeasure, armSkuName, armRegionName,
effectiveStartDate)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cost import catalog, refresh
from cost import estimate as est
from cost.model import Declared, Status
from cost.snapshot import load

TODAY = dt.date(2026, 3, 4)


def item(sku: str, price: float, meter: str, **extra: Any) -> dict[str, Any]:
    return {
        "currencyCode": "USD",
        "tierMinimumUnits": 0.0,
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": "westeurope",
        "location": "EU West",
        "effectiveStartDate": "2025-05-01T00:00:00Z",
        "meterId": meter,
        "meterName": sku.removeprefix("Standard_").replace("_", " "),
        "productName": "Virtual Machines Dsv5 Series",
        "skuName": sku.removeprefix("Standard_"),
        "serviceName": "Virtual Machines",
        "serviceFamily": "Compute",
        "unitOfMeasure": "1 Hour",
        "type": "Consumption",
        "isPrimaryMeterRegion": True,
        "armSkuName": sku,
        **extra,
    }


class FakeApi:
    """Answers by ``$filter``: a list of pages per filter; records every request."""

    def __init__(self) -> None:
        self.pages: dict[str, list[list[dict[str, Any]]]] = {}
        self.requests: list[dict[str, str]] = []
        self.url = ""

    def answer(self, query: dict[str, str]) -> dict[str, Any]:
        self.requests.append(query)
        pages = self.pages.get(query.get("$filter", ""), [[]])
        n = int(query.get("$skip", "0")) // 1000
        nxt = None
        if n + 1 < len(pages):
            nxt = f"{self.url}?" + urllib.parse.urlencode({**query, "$skip": str((n + 1) * 1000)})
        return {
            "BillingCurrency": "USD",
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": pages[n],
            "NextPageLink": nxt,
            "Count": len(pages[n]),
        }


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApi]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            body = json.dumps(fake.answer(query)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/api/retail/prices"
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield fake
    server.shutdown()


VM = "vm/Standard_D4s_v5"


def test_follows_next_page_links_and_picks_the_linux_pay_as_you_go_meter(api: FakeApi) -> None:
    filter_ = catalog.query(VM, "westeurope")
    api.pages[filter_] = [
        [item("Standard_D4s_v5", 0.9, "m-win", productName="Virtual Machines Dsv5 Series Windows")],
        [item("Standard_D4s_v5", 0.05, "m-spot", skuName="D4s v5 Spot")],
        [item("Standard_D4s_v5", 0.21, "m-linux")],
    ]
    api.requests.clear()
    entry = refresh.entry(VM, "westeurope", api.url, TODAY)
    assert [r.get("$skip") for r in api.requests] == [None, "1000", "2000"]
    assert api.requests[0]["$filter"] == (
        "serviceName eq 'Virtual Machines' and priceType eq 'Consumption' and "
        "armRegionName eq 'westeurope' and armSkuName eq 'Standard_D4s_v5'"
    )
    assert api.requests[0]["api-version"] == catalog.API_VERSION
    assert (entry["retailPrice"], entry["meterId"], entry["unitOfMeasure"]) == (
        0.21,
        "m-linux",
        "1 Hour",
    )
    assert (entry["seen"], entry["effectiveStartDate"], entry["query"]) == (
        "2026-03-04",
        "2025-05-01T00:00:00Z",
        filter_,
    )


def test_the_first_tier_of_a_tiered_meter_is_the_price(api: FakeApi) -> None:
    key = "key-vault/Operations"
    api.pages[catalog.query(key, "westeurope")] = [
        [
            {**item("x", 0.02, "kv-tier-2", tierMinimumUnits=1000.0), "unitOfMeasure": "10K"},
            {**item("x", 0.03, "kv-tier-1"), "unitOfMeasure": "10K"},
        ]
    ]
    entry = refresh.entry(key, "westeurope", api.url, TODAY)
    assert (entry["retailPrice"], entry["meterId"], entry["otherMeters"]) == (
        0.03,
        "kv-tier-1",
        ["kv-tier-2"],
    )


@pytest.mark.parametrize(
    ("key", "meter", "start", "price", "unit"),
    [
        (
            "log-analytics/Analytics Logs Data Ingestion",
            "Analytics Logs Data Ingestion",
            5.0,
            2.99,
            "1 GB",
        ),
        (
            "service-bus/Standard Messaging Operations",
            "Standard Messaging Operations",
            13.0,
            0.8,
            "1M",
        ),
    ],
)
def test_a_free_first_tier_is_skipped_for_the_first_paid_one(
    key: str, meter: str, start: float, price: float, unit: str
) -> None:
    """Log Analytics ingestion answers a 0-5 GB tier at 0 and the paid tier from 5; Standard
    Service Bus operations a 0-13M tier at 0, then 13M, 100M, 2,500M (Infracost's
    log_analytics_workspace.go and servicebus_namespace.go price from tiers 5 and 13)."""
    tiers = [(0.0, 0.0), (start, price), (start * 10, price / 2)]
    answer = [
        {
            **item("x", p, f"{meter}-{t:g}", tierMinimumUnits=t),
            "meterName": meter,
            "unitOfMeasure": unit,
        }
        for t, p in tiers
    ]
    entry = refresh.entry(key, "westeurope", "https://api", TODAY, lambda url: {"Items": answer})
    assert (entry["retailPrice"], entry["meterId"]) == (price, f"{meter}-{start:g}")


def test_a_key_nothing_answers_is_written_not_estimated(api: FakeApi) -> None:
    entry = refresh.entry("managed-redis/B0 Cache Instance", "westeurope", api.url, TODAY)
    assert "retailPrice" not in entry and "no item" in entry["notEstimated"]


def test_a_filter_that_never_ends_is_refused(api: FakeApi) -> None:
    key = "vm/Standard_E2s_v5"
    api.pages[catalog.query(key, "westeurope")] = [[] for _ in range(refresh.MAX_PAGES + 1)]
    with pytest.raises(RuntimeError, match="pages"):
        refresh.entry(key, "westeurope", api.url, TODAY)


def test_main_writes_a_snapshot_the_estimate_reads(
    api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refresh, "needed_keys", lambda stacks: {"westeurope": {VM, "iot-hub/S1"}})
    api.pages[catalog.query(VM, "westeurope")] = [[item("Standard_D4s_v5", 0.21, "m-linux")]]
    assert refresh.main(["dev"], api=api.url, directory=tmp_path, today=TODAY) == 0
    snapshot = load("westeurope", tmp_path)
    assert snapshot.built == "2026-03-04"
    pool = Declared(
        "urn:pulumi:dev::mlscore::azure-native:containerservice:AgentPool::p",
        "azure-native:containerservice:AgentPool",
        "p",
        "urn:pulumi:dev::mlscore::mlops:aks::aks",
        {
            "vmSize": "Standard_D4s_v5",
            "count": 2,
            "location": "westeurope",
            "osDiskType": "Ephemeral",
        },
    )
    lines = est.estimate("dev", [pool], snapshot=snapshot).lines
    assert [(x.status, round(x.monthly[1], 2)) for x in lines] == [
        (Status.PRICED, round(2 * 730 * 0.21, 2))
    ]
    assert (
        "notEstimated"
        in json.loads((tmp_path / "westeurope.json").read_text())["prices"]["iot-hub/S1"]
    )
