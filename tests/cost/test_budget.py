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


def declared_inputs(r: engine.Registered) -> dict:
    """A resource's inputs as the analyzer sees them (secrets unwrapped, unknowns absent)."""
    from cost.estimate import declared_from_run

    found = declared_from_run([r]) if r.custom else []
    return dict(found[0].inputs) if found else dict(engine.reveal(r.inputs))


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


def test_the_pack_sees_parents_and_dependencies_as_the_engine_hands_them(
    prod: engine.Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through pulumi-policy's own objects: resources with their parent and dependency objects
    (the autoscale setting depends on the plan), the budget read for the stack in the URNs."""
    from pulumi_policy import (
        PolicyCustomTimeouts,
        PolicyResource,
        PolicyResourceOptions,
        StackValidationArgs,
    )

    by_urn: dict[str, PolicyResource] = {}
    for r in prod.resources:  # components too; parents and dependencies registered first
        opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
        deps = [by_urn[u] for u in r.dependencies if u in by_urn]
        inputs = declared_inputs(r)
        by_urn[r.urn] = PolicyResource(
            r.type, inputs, r.urn, r.name, opts, None, by_urn.get(r.parent), deps, {}
        )
    seen: list[int] = []

    def budget_of(stack: str) -> int:
        seen.append(len(stack))
        assert stack == "prod"
        return 3100  # between prod's minimum and maximum

    monkeypatch.setattr(policy_budget, "stack_budget", budget_of)
    found: list[str] = []
    args = StackValidationArgs(list(by_urn.values()), None)
    policy_budget.budget_policy().validate(args, lambda message, urn=None: found.append(message))
    assert seen and len(found) == 1 and "exceeds mlscore:monthlyBudgetUsd 3100" in found[0]
    # the same maximum as python -m cost prod: the plan's autoscale bounds were found
    assert f"maximum ${estimate_of(prod).total[1]:,.2f} per month" in found[0]
    plan = policy_budget._declared(args)
    autoscale = next(r for r in plan if r.type == "azure-native:monitor:AutoscaleSetting")
    assert any(u.endswith("::plan") for u in autoscale.dependencies)
