"""A second run of the program declares exactly what the first declared.

``pulumi up`` twice in a row, and the drift check (``pulumi preview --refresh
--expect-no-changes``, .github/workflows/drift.yml), must find nothing to do: every resource's
inputs, its options and its dependencies are a function of the config alone (no clock, no random
value, no order that changes between runs, no file that the first run wrote and the second reads
differently). The mock engine records both runs; they must be equal, resource by resource.
"""

from __future__ import annotations

from typing import Any

import pytest

from preview import engine


def declared(run: engine.Run) -> dict[str, Any]:
    assert run.error is None, run.error
    return {
        r.urn: {
            "inputs": engine.to_json(r.inputs, show_secrets=True),
            "dependencies": sorted(r.dependencies),
            "parent": r.parent,
            "retain_on_delete": r.retain_on_delete,
        }
        for r in run.resources
    }


def differences(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    out = [f"only in the first run: {u}" for u in sorted(first.keys() - second.keys())]
    out += [f"only in the second run: {u}" for u in sorted(second.keys() - first.keys())]
    for urn in sorted(first.keys() & second.keys()):
        for part in ("inputs", "dependencies", "parent", "retain_on_delete"):
            a, b = first[urn][part], second[urn][part]
            if a != b:
                keys = (
                    sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                    if part == ("inputs")
                    else []
                )
                out.append(f"{urn}: {part} differ {keys}")
    return out


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_second_run_declares_exactly_the_same_inputs(
    stack: str, run_stack: Any, request: pytest.FixtureRequest
) -> None:
    first = declared(request.getfixturevalue(stack))
    second = declared(run_stack(stack))
    assert len(first) > 50
    assert differences(first, second) == []


def test_the_comparison_sees_a_changed_input(dev: engine.Run) -> None:
    first = declared(dev)
    urn = next(iter(first))
    changed = {**first, urn: {**first[urn], "inputs": {**first[urn]["inputs"], "x": 1}}}
    assert differences(first, changed) == [f"{urn}: inputs differ ['x']"]
