"""The ``monthly-budget`` stack policy: the preview fails when the cost estimate's maximum
(``python -m cost``) exceeds the stack's ``mlscore:monthlyBudgetUsd``.

The pack sees the resources' inputs, not the stack's config; the stack's name is in every URN
(``urn:pulumi:<stack>::<project>::...``), so the budget is read from ``Pulumi.<stack>.yaml`` the
way the CLI assembles it (``cost/budget.py``), and the estimate is the one ``python -m cost``
prints: same rules, same price snapshot, same assumptions file. No budget (0): no check.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from pulumi_policy import (
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from cost import estimate as est  # noqa: E402
from cost.budget import over_budget, stack_budget  # noqa: E402
from cost.model import Declared  # noqa: E402
from cost.snapshot import SnapshotError  # noqa: E402

BUDGET_NAME = "monthly-budget"
COMPONENT_PREFIX = "mlscore:"  # the program's component type tokens (DESIGN.md, "Components")


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> ``<stack>``."""
    head = urn.split("::", 1)[0]
    if not head.startswith("urn:pulumi:"):
        raise ValueError(f"not a Pulumi URN: {urn}")
    return head[len("urn:pulumi:") :]


def check_budget(resources: Sequence[Declared], budget: int | None = None) -> list[str]:
    """Violations of the stack's budget (``budget``: whole USD, read from the stack when None)."""
    try:
        stack = stack_of(resources[0].urn) if resources else ""
    except ValueError:  # not from a Pulumi engine (the engine's URNs always parse): no stack
        return []
    if not stack:
        return []
    try:
        limit = stack_budget(stack) if budget is None else budget
    except Exception as exc:  # no stack file here: the program checks the key itself
        return [] if "no stack file" in str(exc) else [f"mlscore:monthlyBudgetUsd: {exc}"]
    if limit <= 0:
        return []
    assumptions, path = est.load_assumptions(stack)
    try:
        estimate = est.estimate(stack, resources, assumptions=assumptions, assumptions_file=path)
    except SnapshotError as exc:
        return [f"budget {limit} USD cannot be checked: {exc}"]
    message = over_budget(estimate, limit)
    return [message] if message else []


def _priced(type_: str) -> bool:
    """Resources the estimate prices: not the stack, not the program's own components (type
    ``mlscore:...``: they declare nothing themselves, their children are priced)."""
    return type_ != "pulumi:pulumi:Stack" and not type_.startswith(COMPONENT_PREFIX)


def _declared(args: StackValidationArgs) -> list[Declared]:
    """The pack's view of the stack as the estimate reads it (the analyzer hands components and
    custom resources alike; the parent's URN names the component of each line)."""
    return [
        Declared(
            urn=r.urn,
            type=r.resource_type,
            name=r.name,
            parent=r.parent.urn if r.parent is not None else "",
            inputs=r.props,
            dependencies=tuple(d.urn for d in r.dependencies),
        )
        for r in args.resources
        if _priced(r.resource_type)
    ]


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for message in check_budget(_declared(args)):
        report_violation(message, None)


def budget_policy() -> StackValidationPolicy:
    return StackValidationPolicy(
        name=BUDGET_NAME,
        description=(
            "The stack's estimated maximum monthly cost (python -m cost) stays within "
            "mlscore:monthlyBudgetUsd (0: no budget)."
        ),
        validate=_validate,
        remediation_steps="Lower SKUs or autoscale maximums, or raise mlscore:monthlyBudgetUsd.",
    )
