"""Shared fixtures: the real program run under Pulumi's mocks with the real stack files.

``dev`` / ``prod`` are deploy-mode runs (the fake Azure fills in computed outputs such as login
servers and host names, so wiring can be asserted); ``run_stack(stack, preview=..., **overrides)``
runs any stack with config overrides (bare keys, e.g. ``aksNodeCount=2``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from preview import engine  # noqa: E402

RunStack = Callable[..., engine.Run]


# ``-n auto`` (pyproject addopts): two workers per core. The suite waits on the hosts it starts,
# their subprocesses, Azurite, Redis and the package index as well as computing: on a 2-core
# machine, 1,696 tests took 329 s with 2 workers (cores 65% busy) and 260 s with 4; after the
# waits and process starts were cut, 4 workers took 201 s and 3 took 210 s.
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return 2 * (os.cpu_count() or 1)


# One run of the program per (stack, mode, overrides) for the whole session: a run under mocks
# costs seconds, the program is deterministic for its config (tests/infra/test_idempotency.py)
# and tests only read a Run. Tests that change the world around the program (a patched clock, a
# failing fake Azure) call ``engine.run`` themselves and get a run of their own.
_RUNS: dict[str, engine.Run] = {}


def _run(stack: str, *, preview: bool = False, **overrides: Any) -> engine.Run:
    key = json.dumps([stack, preview, overrides], sort_keys=True, default=repr)
    if key not in _RUNS:
        _RUNS[key] = engine.run(stack, overrides, preview=preview)
    return _RUNS[key]


@pytest.fixture(scope="session")
def run_stack() -> RunStack:
    return _run


def _ok(stack: str) -> engine.Run:
    run = _run(stack)
    if run.error is not None:
        raise AssertionError(f"the {stack} program failed under mocks: {run.error!r}")
    return run


@pytest.fixture(scope="session")
def dev() -> engine.Run:
    return _ok("dev")


@pytest.fixture(scope="session")
def prod() -> engine.Run:
    return _ok("prod")


@pytest.fixture(scope="session", params=["dev", "prod"])
def each_stack(request: pytest.FixtureRequest) -> engine.Run:
    return _ok(request.param)


# --- the time-travel check (Makefile ``time-travel``) -------------------------------------------
# ``--graph-only`` keeps the tests that read the program's graph of the real stack files (the
# ``dev``, ``prod`` and ``each_stack`` runs, the outputs contract, and the runs with overrides of
# ``run_stack``: a certificate fixture that expired a year on was caught only once those were in)
# and the tests of the key schedule, and deselects the rest. ``make time-travel`` runs them under
# libfaketime at dates in two consecutive rotation periods and a year ahead: a test that only
# passes on some dates fails.
GRAPH_FIXTURES = frozenset({"dev", "prod", "each_stack", "dev_outputs", "run_stack"})
CLOCK_MODULES = ("tests/infra/platform/test_resilience.py",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--graph-only",
        action="store_true",
        help="only the tests on the shared dev/prod graphs and the key schedule (time travel)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--graph-only"):
        return
    keep, drop = [], []
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        on_clock = item.nodeid.startswith(CLOCK_MODULES)
        (keep if fixtures & GRAPH_FIXTURES or on_clock else drop).append(item)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)
