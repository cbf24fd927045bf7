"""What every pricing rule shares: the :class:`Context` (snapshot, assumptions, all resources),
reading declared inputs, and making a line priced from the snapshot or "not estimated"."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cost.model import HOURS_PER_MONTH, Declared, Line, Quantity, Status
from cost.snapshot import Missing, Snapshot

H = HOURS_PER_MONTH


@dataclass(frozen=True)
class Context:
    snapshot: Snapshot
    assumptions: Mapping[str, Any]
    resources: Sequence[Declared]


Rule = Callable[[Declared, Context], list[Line]]


def _get(value: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(value, Mapping) or value.get(key) is None:
            return default
        value = value[key]
    return value


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _count(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def priced(
    r: Declared,
    ctx: Context,
    key: str,
    quantity: Quantity,
    *,
    sku: str = "",
    count: str = "",
    status: Status = Status.PRICED,
    note: str = "",
    label: str = "",
) -> Line:
    """A line priced from the snapshot's ``key``, or "not estimated" with the snapshot's reason."""
    found = ctx.snapshot.lookup(key)
    name = f"{r.name} ({label})" if label else r.name
    if isinstance(found, Missing):
        return Line(
            r.component,
            name,
            r.type,
            Status.NOT_ESTIMATED,
            sku=sku,
            count=count,
            note=found.reason,
            price_key=key,
        )
    return Line(
        r.component,
        name,
        r.type,
        status,
        sku=sku,
        count=count,
        price=found,
        quantity=quantity,
        note=note,
        price_key=key,
    )


def not_estimated(r: Declared, reason: str, sku: str = "") -> Line:
    return Line(r.component, r.name, r.type, Status.NOT_ESTIMATED, sku=sku, note=reason)


def assumed(ctx: Context, *path: str) -> float | None:
    value = _get(ctx.assumptions, *path)
    return None if value is None else _num(value)
