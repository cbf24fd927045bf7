"""The stack's monthly budget (``mlscore:monthlyBudgetUsd``): the policy pack's ``monthly-budget``
rule fails the preview when the cost estimate's maximum (``python -m cost``) exceeds it. 0, the
default, sets no budget. The program declares nothing from it; it is checked here with every other
key, before any resource is declared."""

from __future__ import annotations

from components.config.reader import Reader

KEY = "monthlyBudgetUsd"


def read(r: Reader) -> int:
    """Whole US dollars per month, 0 for no budget."""
    budget = r.int(KEY)
    if KEY in r.values and budget < 0:
        r.fail(
            KEY,
            budget,
            "a budget cannot be negative",
            f"set mlscore:{KEY} to the monthly maximum in whole USD, or 0 for no budget",
        )
        return 0
    return budget
