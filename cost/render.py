"""The estimate as a table (terminal), as Markdown (the pull request comment) and as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cost.model import Estimate, Line, Status


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _range(low: float, high: float) -> str:
    return _money(low) if round(low, 2) == round(high, 2) else f"{_money(low)}-{_money(high)}"


def _unit_price(line: Line) -> str:
    if line.price is None:
        return ""
    return f"${line.price.retail_price:g} per {line.price.unit_of_measure}"


def _monthly(line: Line) -> str:
    if line.status == Status.NOT_ESTIMATED:
        return "not estimated"
    if line.status == Status.FREE:
        return "free"
    return _range(*line.monthly)


def rows(estimate: Estimate) -> list[tuple[str, str, str, str, str, str]]:
    """(component / resource, SKU, count, unit price, monthly, note) for every non-free line."""
    out = []
    for line in sorted(estimate.lines, key=lambda x: (x.component, x.resource)):
        if line.status == Status.FREE:
            continue
        note = line.note
        if line.status == Status.USAGE and line.quantity is not None:
            note = f"usage: {line.quantity.what}" + (f"; {line.note}" if line.note else "")
        elif line.status == Status.NOT_ESTIMATED:
            note = f"reason {_reasons(estimate).index(line.note) + 1} below"
        out.append(
            (
                f"{line.component} / {line.resource}",
                line.sku,
                line.count,
                _unit_price(line),
                _monthly(line),
                note,
            )
        )
    return out


def text(estimate: Estimate) -> str:
    header = ("component / resource", "SKU", "count", "unit price", "per month", "note")
    body = rows(estimate)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(5)]
    lines = [
        f"Monthly cost of stack '{estimate.stack}' in {estimate.region} (USD, 730 h; "
        f"prices: {estimate.snapshot})",
        "",
    ]
    for row in [header, *body]:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[5]
        )
    low, high = estimate.total
    free = estimate.of(Status.FREE)
    missing = estimate.of(Status.NOT_ESTIMATED)
    lines += [
        "",
        f"Total: {_range(low, high)} per month (minimum-maximum), "
        f"{len(missing)} line(s) not estimated, {len(free)} free resource(s)",
    ]
    lines += ["", f"Assumptions ({estimate.assumptions_file or 'none'}):"]
    lines += [f"  {k}: {v}" for k, v in _flat(estimate.assumptions)]
    if missing:
        lines += ["", "Not estimated (not counted in the total), by reason:"]
        for number, reason in enumerate(_reasons(estimate), 1):
            which = [f"{m.component} / {m.resource}" for m in missing if m.note == reason]
            lines.append(f"  {number}. {reason}")
            lines.append(f"     ({len(which)}: {', '.join(which)})")
    return "\n".join(lines)


def _reasons(estimate: Estimate) -> list[str]:
    """The distinct reasons of the lines not estimated, in first-seen order."""
    return list(dict.fromkeys(m.note for m in estimate.of(Status.NOT_ESTIMATED)))


def _flat(value: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        out += _flat(item, f"{name}.") if isinstance(item, Mapping) else [(name, item)]
    return out


def as_json(estimate: Estimate) -> dict[str, Any]:
    low, high = estimate.total
    return {
        "stack": estimate.stack,
        "region": estimate.region,
        "currency": "USD",
        "hoursPerMonth": 730,
        "snapshot": estimate.snapshot,
        "total": {"min": low, "max": high},
        "assumptionsFile": estimate.assumptions_file,
        "assumptions": estimate.assumptions,
        "lines": [
            {
                "component": line.component,
                "resource": line.resource,
                "type": line.type,
                "status": line.status.value,
                "sku": line.sku,
                "count": line.count,
                "priceKey": line.price_key,
                "unitPrice": None if line.price is None else line.price.retail_price,
                "unitOfMeasure": None if line.price is None else line.price.unit_of_measure,
                "meterId": None if line.price is None else line.price.meter_id,
                "min": round(line.monthly[0], 2),
                "max": round(line.monthly[1], 2),
                "note": line.note,
            }
            for line in estimate.lines
        ],
    }


def markdown(estimate: Estimate, base: Mapping[str, Any] | None = None) -> str:
    """The pull request comment: the table, the total and, given the base branch's JSON, the
    difference per line and in total."""
    low, high = estimate.total
    out = [f"### Cost of `{estimate.stack}` ({estimate.region}, USD per month)", ""]
    out.append(f"**Total: {_range(low, high)}** (prices: {estimate.snapshot})")
    if base is not None:
        b_low, b_high = base["total"]["min"], base["total"]["max"]
        out.append(
            f"Change from the base branch: {_signed(low - b_low)} to {_signed(high - b_high)} "
            f"(base: {_range(b_low, b_high)})"
        )
        out += ["", *_changes(estimate, base)]
    out += [
        "",
        "| component / resource | SKU | count | unit price | per month | note |",
        "|---|---|---|---|---|---|",
    ]
    out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows(estimate)]
    reasons = _reasons(estimate)
    if reasons:
        out += ["", "Not estimated (not in the total):"]
        out += [f"{n}. {reason}" for n, reason in enumerate(reasons, 1)]
    return "\n".join(out)


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + _money(abs(value))


def _changes(estimate: Estimate, base: Mapping[str, Any]) -> list[str]:
    def keyed(lines: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[float, float]]:
        return {(x["component"], x["resource"]): (x["min"], x["max"]) for x in lines}

    now = keyed(as_json(estimate)["lines"])
    before = keyed(base.get("lines", []))
    changed = []
    for key in sorted(set(now) | set(before)):
        a, b = before.get(key, (0.0, 0.0)), now.get(key, (0.0, 0.0))
        if a != b:
            what = "added" if key not in before else "removed" if key not in now else "changed"
            changed.append(f"- {what}: {key[0]} / {key[1]}: {_range(*a)} -> {_range(*b)}")
    return changed or ["- no line changed"]
