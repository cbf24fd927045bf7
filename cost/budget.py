"""The stack's budget (``mlscore:monthlyBudgetUsd`` in Pulumi.<stack>.yaml, checked by
``components/platform/budget_settings.py``) against an estimate's maximum."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.config.reader import Reader, SettingsError
from components.platform import budget_settings
from cost.model import Estimate, Status


def stack_budget(
    stack: str, stack_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> int:
    """Whole USD per month (0: no budget), read as the CLI would assemble the stack's config."""
    from preview import engine

    config, _ = engine.stack_config(stack, overrides, stack_file=stack_file)
    project = engine.project_file()["name"]

    def lookup(key: str) -> str | None:
        return config.get(f"{project}:{key}")

    r = Reader(lookup)
    budget = budget_settings.read(r)
    if r.problems:
        raise SettingsError(r.problems)
    return budget


def over_budget(estimate: Estimate, budget: int) -> str:
    """Why the estimate breaks the budget, or "" (no budget, or within it)."""
    if budget <= 0:
        return ""
    _, high = estimate.total
    if high <= budget:
        return ""
    top = sorted(estimate.lines, key=lambda x: -x.monthly[1])[:3]
    biggest = ", ".join(f"{x.component} / {x.resource} ${x.monthly[1]:,.2f}" for x in top)
    missing = len(estimate.of(Status.NOT_ESTIMATED))
    return (
        f"stack {estimate.stack}: estimated maximum ${high:,.2f} per month exceeds "
        f"mlscore:monthlyBudgetUsd {budget} (largest: {biggest}; {missing} line(s) not estimated "
        "and not counted). Lower autoscale maximums or SKUs, or raise the budget."
    )
