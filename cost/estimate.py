"""Price a stack: run the program under the mock engine, then price each declared resource."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cost import rules
from cost.free import NOT_PRICED, free_reason
from cost.model import Declared, Estimate, Line, Status
from cost.snapshot import PRICES, Snapshot, load

ASSUMPTIONS = Path(__file__).resolve().parent / "assumptions"


def declared_from_run(resources: Iterable[Any]) -> list[Declared]:
    """The custom resources of a ``preview.engine.Run``, secrets revealed (a price needs the
    ACI containers' requests) and values known only after apply as None."""
    from preview import engine  # the mock engine, only when pricing a program run

    def known(value: Any) -> Any:
        if isinstance(value, engine.Computed):
            return None
        if isinstance(value, dict):
            return {k: known(v) for k, v in value.items()}
        if isinstance(value, list):
            return [known(v) for v in value]
        return value

    return [
        Declared(
            r.urn, r.type, r.name, r.parent, known(engine.reveal(r.inputs)), tuple(r.dependencies)
        )
        for r in resources
        if r.custom
    ]


def region_of(resources: Sequence[Declared]) -> str:
    """The stack's region: its resource group's location (every regional resource is there)."""
    for r in resources:
        if r.type == "azure-native:resources:ResourceGroup" and r.inputs.get("location"):
            return str(r.inputs["location"])
    for r in resources:
        if isinstance(r.inputs.get("location"), str) and r.inputs["location"] != "global":
            return str(r.inputs["location"])
    raise ValueError("no resource declares a location: cannot tell the stack's region")


def load_assumptions(stack: str, directory: Path = ASSUMPTIONS) -> tuple[dict[str, Any], str]:
    path = directory / f"{stack}.yaml"
    if not path.exists():
        return {}, ""
    return dict(yaml.safe_load(path.read_text()) or {}), str(path.relative_to(path.parents[2]))


def price_one(r: Declared, ctx: rules.Context) -> list[Line]:
    rule = rules.RULES.get(r.type)
    if rule is not None:
        return rule(r, ctx)
    reason = free_reason(r.type)
    if reason is not None:
        return [Line(r.component, r.name, r.type, Status.FREE, note=reason)]
    why = NOT_PRICED.get(r.type, "no pricing rule for this resource type (cost/rules.py)")
    return [Line(r.component, r.name, r.type, Status.NOT_ESTIMATED, note=why)]


def estimate(
    stack: str,
    resources: Sequence[Declared],
    *,
    assumptions: Mapping[str, Any] | None = None,
    assumptions_file: str = "",
    snapshot: Snapshot | None = None,
    prices: Path = PRICES,
) -> Estimate:
    region = region_of(resources)
    snap = snapshot or load(region, prices)
    ctx = rules.Context(snap, assumptions or {}, resources)
    result = Estimate(
        stack=stack,
        region=region,
        snapshot=f"{snap.path.name} (built {snap.built})",
        assumptions=assumptions or {},
        assumptions_file=assumptions_file,
    )
    for r in resources:
        result.lines += price_one(r, ctx)
    return result


def estimate_run(stack: str, run: Any, **kwargs: Any) -> Estimate:
    """The estimate of a ``preview.engine.Run`` with the stack's assumptions file."""
    assumptions, path = load_assumptions(stack)
    return estimate(
        stack,
        declared_from_run(run.resources),
        assumptions=assumptions,
        assumptions_file=path,
        **kwargs,
    )
