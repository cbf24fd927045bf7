"""Shared fixtures: the real program run under Pulumi's mocks with the real stack files.

``dev`` / ``prod`` are deploy-mode runs (the fake Azure fills in computed outputs such as login
servers and host names, so wiring can be asserted); ``run_stack(stack, preview=..., **overrides)``
runs any stack with config overrides (bare keys, e.g. ``aksNodeCount=2``).
"""

from __future__ import annotations

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


def _run(stack: str, *, preview: bool = False, **overrides: Any) -> engine.Run:
    return engine.run(stack, overrides, preview=preview)


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
