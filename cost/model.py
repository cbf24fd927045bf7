"""The estimate's data: a declared resource, a price from the snapshot, a priced line.

A line is priced (a unit price x a quantity per month, with a minimum and a maximum where the
resource autoscales), usage-priced (the quantity comes from the stack's assumptions file), free
(with the reason it costs nothing by itself), or not estimated (with the reason): never a silent 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

HOURS_PER_MONTH = (
    730.0  # Azure's pricing calculator month (https://azure.microsoft.com/pricing/calculator/)
)
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


class Status(StrEnum):
    PRICED = "priced"
    USAGE = "usage"  # priced from the stack's assumptions file
    FREE = "free"
    NOT_ESTIMATED = "not estimated"


@dataclass(frozen=True)
class Declared:
    """One resource as declared: from the mock engine's run or from a policy pack's view."""

    urn: str
    type: str
    name: str
    parent: str
    inputs: Mapping[str, Any]
    dependencies: Sequence[str] = ()

    @property
    def component(self) -> str:
        """The parent component's name (the last part of its URN), or the stack."""
        return self.parent.rsplit("::", 1)[-1] if "::" in self.parent else "(stack)"


@dataclass(frozen=True)
class Price:
    """One retail price of the snapshot (USD), with where it came from."""

    key: str
    retail_price: float
    unit_of_measure: str
    meter_id: str
    effective_start_date: str
    query: str
    source: str
    seen: str
    meter_name: str = ""

    @property
    def per(self) -> tuple[float, str]:
        return parse_unit(self.unit_of_measure)


_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)?\s*([KM])?\s*(.*?)\s*$", re.I)
_DIMENSIONS = {
    "hour": "hour",
    "hours": "hour",
    "/hour": "hour",
    "/month": "month",
    "month": "month",
    "/day": "day",
    "day": "day",
    "days": "day",
    "gb/month": "gb-month",
    "gib/month": "gb-month",
    "gb": "gb",
    "gib": "gb",
    "": "unit",
    "second": "second",
    "seconds": "second",
    "gib second": "gib-second",
    "gb second": "gib-second",
    "gib seconds": "gib-second",
    "gib hour": "gib-hour",
    "gb hour": "gib-hour",
    "gib hours": "gib-hour",
}
# Time dimensions in hours: a quantity in hours meets a price per second, day or month.
_HOURS = {"second": 1 / 3600, "hour": 1.0, "day": 24.0, "month": HOURS_PER_MONTH}


def convert(amount: float, from_dim: str, to_dim: str) -> float:
    """``amount`` of ``from_dim`` in ``to_dim`` (hours <-> seconds, GiB-hours <-> GiB-seconds)."""
    if from_dim == to_dim:
        return amount
    a_prefix, _, a_time = from_dim.rpartition("-")
    b_prefix, _, b_time = to_dim.rpartition("-")
    if a_prefix == b_prefix and a_time in _HOURS and b_time in _HOURS:
        return amount * _HOURS[a_time] / _HOURS[b_time]
    raise UnitError(f"cannot convert {from_dim} to {to_dim}")


class UnitError(ValueError):
    pass


def parse_unit(unit_of_measure: str) -> tuple[float, str]:
    """The Retail Prices API's ``unitOfMeasure`` as (how many, dimension): ``"1 Hour"`` ->
    (1, "hour"), ``"10K"`` -> (10000, "unit"), ``"1 GB/Month"`` -> (1, "gb-month"),
    ``"1/Month"`` -> (1, "month"), ``"1M"`` -> (1e6, "unit")."""
    found = _UNIT.match(unit_of_measure)
    if not found:
        raise UnitError(unit_of_measure)
    number = float(found.group(1) or 1)
    scale = {"k": 1e3, "m": 1e6, None: 1.0}[(found.group(2) or "").lower() or None]
    dimension = _DIMENSIONS.get(found.group(3).lower())
    if dimension is None:
        raise UnitError(f"unknown unitOfMeasure {unit_of_measure!r}")
    return number * scale, dimension


@dataclass(frozen=True)
class Quantity:
    """How much of a price's unit a resource uses per month, at its minimum and maximum."""

    low: float
    high: float
    dimension: str  # "hour", "month", "day", "gb-month", "unit", ...
    what: str  # e.g. "2 instances x 730 h"

    @classmethod
    def fixed(cls, amount: float, dimension: str, what: str) -> Quantity:
        return cls(amount, amount, dimension, what)


@dataclass(frozen=True)
class Line:
    component: str
    resource: str
    type: str
    status: Status
    sku: str = ""
    count: str = ""  # "2", "2-6"
    price: Price | None = None
    quantity: Quantity | None = None
    note: str = ""
    price_key: str = ""
    low_price: Price | None = None  # the minimum's own rate (idle replicas), else ``price``
    low_price_key: str = ""

    @property
    def price_keys(self) -> tuple[str, ...]:
        """The snapshot keys this line reads (what ``--refresh`` must fetch)."""
        return tuple(k for k in (self.price_key, self.low_price_key) if k)

    @property
    def monthly(self) -> tuple[float, float]:
        """(minimum, maximum) USD per month; 0 for free lines; (0, 0) when not estimated."""
        if self.price is None or self.quantity is None:
            return (0.0, 0.0)
        q = self.quantity
        return (
            _cost(self.low_price or self.price, q.low, q.dimension),
            _cost(self.price, q.high, q.dimension),
        )


def _cost(price: Price, amount: float, dimension: str) -> float:
    per, unit = price.per
    return price.retail_price / per * convert(amount, dimension, unit)


@dataclass
class Estimate:
    stack: str
    region: str
    snapshot: str  # the snapshot's file and build date
    lines: list[Line] = field(default_factory=list)
    assumptions: Mapping[str, Any] = field(default_factory=dict)
    assumptions_file: str = ""

    @property
    def total(self) -> tuple[float, float]:
        low = sum(line.monthly[0] for line in self.lines)
        high = sum(line.monthly[1] for line in self.lines)
        return (round(low, 2), round(high, 2))

    def of(self, status: Status) -> list[Line]:
        return [line for line in self.lines if line.status == status]
