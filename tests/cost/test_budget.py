"""The budget: mlscore:monthlyBudgetUsd is checked with every other key, and the policy pack's
``monthly-budget`` rule fails when the estimate's maximum exceeds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config.reader import SettingsError
from cost.budget import over_budget, stack_budget
from cost.model import Declared
from policy import budget as policy_budget
from policy import policies as P
from preview import engine
from tests.conftest import RunStack
from tests.cost.conftest import estimate_of


def declared(run: engine.Run) -> list[Declared]:
    from cost.estimate import declared_from_run

    return declared_from_run(run.resources)


def test_the_shipped_stacks_have_no_budget() -> None:
    assert stack_budget("dev") == 0 and stack_budget("prod") == 0


def test_a_stack_files_budget_is_read(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(Path("Pulumi.dev.yaml").read_text() + "  mlscore:monthlyBudgetUsd: 250\n")
    assert stack_budget("dev", path) == 250
    path.write_text(Path("Pulumi.dev.yaml").read_text() + "  mlscore:monthlyBudgetUsd: -5\n")
    with pytest.raises(SettingsError, match="monthlyBudgetUsd"):
        stack_budget("dev", path)


def test_a_negative_budget_is_refused_before_any_resource(run_stack: RunStack) -> None:
    run = run_stack("dev", monthlyBudgetUsd="-1")
    assert [p.keys for p in run.problems] == [("monthlyBudgetUsd",)]
    assert not [r for r in run.resources if r.custom]


def test_over_budget_names_the_largest_lines(prod: engine.Run) -> None:
    estimate = estimate_of(prod)
    assert over_budget(estimate, 0) == ""
    assert over_budget(estimate, 10_000) == ""
    message = over_budget(estimate, 50)
    top = max(estimate.lines, key=lambda x: x.monthly[1])
    assert "exceeds mlscore:monthlyBudgetUsd 50" in message
    assert f"largest: {top.component} / {top.resource} ${top.monthly[1]:,.2f}" in message


def test_the_pack_rule_fails_the_preview_over_budget(prod: engine.Run) -> None:
    resources = declared(prod)
    assert policy_budget.stack_of(resources[0].urn) == "prod"
    assert policy_budget.check_budget(resources, budget=50)
    assert policy_budget.check_budget(resources, budget=1_000_000) == []
    assert policy_budget.check_budget(resources) == []  # prod ships without a budget
    assert policy_budget.BUDGET_NAME in {p.name for p in P.policies()}
