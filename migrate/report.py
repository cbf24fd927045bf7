"""The report: one row per v1 field found, grouped by file, then what was written and checked."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.config.reader import ConfigProblem
from migrate import paths
from migrate.convert import MAPPED, Migration, Row
from migrate.stack import preview_command

WIDTH = 100
INDENT = " " * 6


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _writes(row: Row) -> str:
    return ", ".join(f"{key}: {json.dumps(value)}" for key, value in row.writes)


def _wrap(text: str, first: str = INDENT) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=INDENT + "  ")


def _lines(row: Row) -> list[str]:
    """``field = value`` and the stack key on one line when it fits, else below; a field with
    no key: its status and why below, then what to do instead and what is shown."""
    head = f"  {row.field} = {_value(row.value)}"
    if row.status == MAPPED:
        one = f"{head}  ->  {_writes(row)}"
        lines = [one] if len(one) <= WIDTH else [head, *_wrap(f"->  {_writes(row)}")]
        return lines + (_wrap(f"note: {row.note}") if row.note else [])
    wanted = f" ({_writes(row)})" if row.writes else ""
    lines = [head, *_wrap(f"{row.status}{wanted}: {row.why}")]
    if row.instead:
        lines += _wrap(f"instead: {row.instead}")
    return lines + [INDENT + line for line in row.shown]


def rows(migration: Migration) -> list[str]:
    out: list[str] = []
    source = None
    for row in migration.rows:
        if row.source != source:
            source = row.source
            out.append(source)
        out += _lines(row)
    return out


def summary(migration: Migration, out: Path) -> list[str]:
    counts = Counter(row.status for row in migration.rows)
    lines = ["", "Fields: " + ", ".join(f"{n} {status}" for status, n in counts.items())]
    if migration.switched_off:
        lines += textwrap.wrap(
            "Switched off (targets not in the v1 files): "
            + ", ".join(f"{k}: false" for k in migration.switched_off),
            WIDTH,
            subsequent_indent="  ",
        )
    lines.append(
        f"Wrote {paths.shown(out)}: {len(migration.values)} keys; every other key takes its "
        "default from Pulumi.yaml."
    )
    return lines


def losses(lost: Sequence[Row], *, written: bool) -> list[str]:
    """What of v1 is not carried over, and whether the stack was written anyway."""
    lines = ["", f"Not carried over: {len(lost)} part(s) of the v1 deployment:"]
    lines += [f"  - {row.source} {row.field}: {row.status}" for row in lost]
    if written:
        return [*lines, "Written anyway (--accept-losses): the stack deploys without them."]
    text = (
        "Nothing written: the stack would deploy without them (e.g. the sample's requirements "
        "instead of an inline environment's packages). Do what each 'instead' above says and "
        "migrate again, or pass --accept-losses to write the stack without them."
    )
    return [*lines, *textwrap.wrap(text, WIDTH)]


def validation(problems: Sequence[ConfigProblem], stack: str, out: Path) -> list[str]:
    checked = "Checked with the program's settings (components.settings.load): "
    if not problems:
        return [checked + "valid.", f"Next, the offline preview: {preview_command(out, stack)}"]
    lines = [checked + f"INVALID, {len(problems)} problem(s):"]
    for problem in problems:
        lines += textwrap.wrap(str(problem), WIDTH, initial_indent="  - ", subsequent_indent="    ")
    lines += textwrap.wrap(
        "Fix them in the v1 files and migrate again (--force), or set those keys in the stack "
        f"file (pulumi config set --stack {stack} KEY VALUE), then preview it.",
        WIDTH,
    )
    return lines
