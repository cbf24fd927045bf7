"""The dated price snapshot in the repository (``cost/prices/<region>.json``).

Every entry is either a price (``retailPrice``, ``unitOfMeasure``, ``meterId``,
``effectiveStartDate``, the ``query`` that finds it, its ``source`` and the date it was ``seen``) or
``notEstimated`` with the reason (no published figure found): the estimate then lists the
resource as "not estimated", never as 0. ``python -m cost --refresh`` rebuilds the file from the
Retail Prices API (``refresh.py``); the estimate itself never goes to the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cost.model import Price

PRICES = Path(__file__).resolve().parent / "prices"


class SnapshotError(Exception):
    pass


@dataclass(frozen=True)
class Missing:
    key: str
    reason: str


@dataclass
class Snapshot:
    region: str
    built: str
    path: Path
    entries: dict[str, dict[str, Any]]

    def lookup(self, key: str) -> Price | Missing:
        entry = self.entries.get(key)
        if entry is None:
            return Missing(
                key, f"no price {key!r} in {self.path.name}: run python -m cost --refresh"
            )
        if "notEstimated" in entry:
            return Missing(key, str(entry["notEstimated"]))
        return Price(
            key=key,
            retail_price=float(entry["retailPrice"]),
            unit_of_measure=str(entry["unitOfMeasure"]),
            meter_id=str(entry.get("meterId") or ""),
            effective_start_date=str(entry.get("effectiveStartDate") or ""),
            query=str(entry.get("query") or ""),
            source=str(entry.get("source") or ""),
            seen=str(entry.get("seen") or ""),
            meter_name=str(entry.get("meterName") or ""),
        )


def path_for(region: str, directory: Path = PRICES) -> Path:
    return directory / f"{region}.json"


def load(region: str, directory: Path = PRICES) -> Snapshot:
    path = path_for(region, directory)
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in directory.glob("*.json"))) or "none"
        raise SnapshotError(
            f"no price snapshot for region {region!r} ({path}); snapshots here: {have}. "
            f"Run python -m cost --refresh --region {region} where prices.azure.com is reachable"
        )
    data = json.loads(path.read_text())
    if data.get("region") != region or data.get("currency") != "USD":
        raise SnapshotError(f"{path}: expected region {region!r} in USD")
    return Snapshot(
        region=region, built=str(data.get("built", "")), path=path, entries=data["prices"]
    )
