"""Every resource type the dev and prod programs declare is priced, usage-priced, explicitly
free, or explicitly not estimated with a reason: none falls through to "no rule"."""

from __future__ import annotations

from cost.free import NOT_PRICED, free_reason
from cost.rules import RULES
from preview import engine
from tests.cost.conftest import estimate_of


def test_every_declared_type_is_classified(dev: engine.Run, prod: engine.Run) -> None:
    types = {r.type for run in (dev, prod) for r in run.resources if r.custom}
    unclassified = sorted(
        t for t in types if t not in RULES and t not in NOT_PRICED and free_reason(t) is None
    )
    assert unclassified == []


def test_no_type_is_both_priced_and_free() -> None:
    assert not {t for t in RULES if free_reason(t) or t in NOT_PRICED}


def test_no_line_of_either_stack_lacks_a_rule(each_stack: engine.Run) -> None:
    estimate = estimate_of(each_stack)
    assert not [x for x in estimate.lines if "no pricing rule" in x.note]
    assert all(x.note for x in estimate.lines if x.status.value in ("free", "not estimated"))
