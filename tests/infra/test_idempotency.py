"""A second run of the program declares exactly what the first declared.

``pulumi up`` twice in a row, and the drift check (``pulumi preview --refresh
--expect-no-changes``, .github/workflows/drift.yml), must find nothing to do: every resource's
inputs, its options and its dependencies are a function of the config alone (no clock, no random
value, no order that changes between runs, no file that the first run wrote and the second reads
differently). The mock engine records both runs; they must be equal, resource by resource.
"""

from __future__ import annotations

import contextlib
from typing import Any
from unittest.mock import patch

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
    second = declared(engine.run(stack, preview=False))  # a run of its own, not the memoized one
    assert len(first) > 50
    assert differences(first, second) == []


def test_the_comparison_sees_a_changed_input(dev: engine.Run) -> None:
    first = declared(dev)
    urn = next(iter(first))
    changed = {**first, urn: {**first[urn], "inputs": {**first[urn]["inputs"], "x": 1}}}
    assert differences(first, changed) == [f"{urn}: inputs differ ['x']"]


def _spied(stack: str, *, skip_alias_urns: bool) -> tuple[engine.Run, dict[Any, list[bytes]]]:
    """A run of its own, with the aliases every registration sends to the monitor."""
    sent: dict[Any, list[bytes]] = {}
    register = engine._Monitor.RegisterResource

    def spy(monitor: engine._Monitor, request: Any) -> Any:
        aliases = [a.SerializeToString(deterministic=True) for a in request.aliases]
        sent[(request.type, request.name)] = aliases
        return register(monitor, request)

    with contextlib.ExitStack() as within:
        within.enter_context(patch.object(engine._Monitor, "RegisterResource", spy))
        if not skip_alias_urns:
            within.enter_context(
                patch.object(engine, "alias_urns_skipped", lambda: contextlib.nullcontext(False))
            )
        run = engine.run(stack, preview=False)
    return run, sent


def test_skipping_alias_urns_declares_the_same_graph_and_sends_the_same_aliases() -> None:
    """preview/aliases.py skips the alias URNs the engine never reads (3-4x faster runs): with
    and without the shortcut, the same resources, inputs and dependencies, and the same alias
    specs sent with every registration (azure-native's older type tokens among them)."""
    fast, fast_aliases = _spied("prod", skip_alias_urns=True)
    slow, slow_aliases = _spied("prod", skip_alias_urns=False)
    assert differences(declared(slow), declared(fast)) == []
    assert fast_aliases == slow_aliases
    assert sum(len(v) for v in fast_aliases.values()) > 500
