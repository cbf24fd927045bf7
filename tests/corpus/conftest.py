"""The corpus table: each example's test records its row; the end of the run prints the table
(example, source, preview, local run, smoke, batch) and writes it to ``.local/corpus/table.md``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.corpus.sources import CACHE

ROWS = CACHE / "rows"
COLUMNS = ("example", "source", "preview", "local run", "smoke", "batch")


def pytest_configure(config: pytest.Config) -> None:
    """The rows of this run only: the controller (not an xdist worker) clears the last run's.
    (``pytest_configure`` also runs for a conftest found while collecting, as this one is when
    the whole suite runs; ``pytest_sessionstart`` would not.)"""
    if not hasattr(config, "workerinput"):
        shutil.rmtree(ROWS, ignore_errors=True)


def record(row: dict[str, Any]) -> None:
    """Keep one example's row (written by whichever worker ran it)."""
    ROWS.mkdir(parents=True, exist_ok=True)
    path = ROWS / f"{row['example']}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(row))
    os.replace(tmp, path)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [str(r.get(c, "FAILED before this step")).replace("|", "/") for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _this_run() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(ROWS.glob("*.json"))]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows = _this_run()
    if not rows:
        return
    text = table(rows)
    Path(CACHE / "table.md").write_text(text + "\n")
    terminalreporter.write_sep("-", "corpus of public Azure ML entry scripts")
    terminalreporter.write_line(text)
