"""Applying the table to the v1 files: the stack's values, and one report row per field found."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from components.config.reader import schema
from migrate import paths
from migrate.rules import Maps, Unmapped
from migrate.table import MODEL_OPTIONS, TARGET_SWITCHES
from migrate.v1files import Found, V1File

MAPPED, BUILT_IN, NO_EQUIVALENT = "mapped", "built in", "no equivalent"
NOT_YET, CONFLICT, UNKNOWN = "not yet supported by this program", "conflict", "unknown field"


@dataclass(frozen=True)
class Row:
    source: str  # the file (or the command-line option)
    field: str  # the v1 field as written
    value: Any
    status: str  # one of the statuses above
    writes: tuple[tuple[str, Any], ...] = ()  # (stack key, value) written
    why: str = ""
    instead: str = ""
    shown: tuple[str, ...] = ()
    note: str = ""  # a mapped field's caveat
    lost: bool = False  # what v1 did here is not done (see rules.Unmapped.lost)

    @property
    def carried_over(self) -> bool:
        """False when the v1 field's effect is lost: a lost behaviour, a key the program does
        not have, the second of two conflicting values, a field the migration does not know."""
        return not self.lost and self.status not in (NOT_YET, CONFLICT, UNKNOWN)


@dataclass
class Migration:
    """The stack being assembled: values in the order they were set, where each came from."""

    values: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    switched_off: list[str] = field(default_factory=list)

    def add_file(self, v1: V1File) -> None:
        source = paths.shown(v1.path)
        for found in v1.found:
            self.rows.append(self._row(source, found, v1))

    def add_model(self, model: Path, name: str, version: str) -> None:
        given = {"--model": paths.shown(model), "--model-name": name, "--model-version": version}
        stored = {
            "--model": paths.stack_path(model),
            "--model-name": name,
            "--model-version": version,
        }
        for option, key in MODEL_OPTIONS.items():
            row = Row("command line", option, given[option], MAPPED)
            self.rows.append(self._write(row, {key: stored[option]}))

    def not_carried_over(self) -> list[Row]:
        return [row for row in self.rows if not row.carried_over]

    def switch_off_the_rest(self) -> None:
        """Every target the v1 files did not describe is written off."""
        declared = schema()
        for key in TARGET_SWITCHES:
            if key in declared and key not in self.values:
                self.values[key] = False
                self.origin[key] = "not in the v1 files"
                self.switched_off.append(key)

    # -------------------------------------------------------------------------------------
    def _row(self, source: str, found: Found, v1: V1File) -> Row:
        rule = found.rule
        if rule is None:
            return Row(
                source,
                found.written,
                found.value,
                UNKNOWN,
                why=f"not a documented v1 {_what(v1.compute)} field; ignored",
                instead="check its spelling against the v1 schema",
            )
        result = (
            rule.convert(found.value, v1.context)
            if isinstance(rule, Maps)
            else rule.explain(found.value, v1.context)
        )
        if isinstance(result, Unmapped):
            status = BUILT_IN if result.built_in else NO_EQUIVALENT
            why, instead = _text(result)
            return Row(
                source, found.written, found.value, status, (), why, instead, result.shown,
                lost=result.lost,
            )  # fmt: skip
        assert isinstance(rule, Maps)
        note = rule.note(found.value, v1.context) if rule.note else ""
        row = Row(source, found.written, found.value, MAPPED, note=note)
        return self._write(row, dict(zip(rule.keys, result, strict=True)))

    def _write(self, row: Row, wanted: dict[str, Any]) -> Row:
        declared = schema()
        missing = [k for k in wanted if k not in declared]
        if missing:
            keys = ", ".join(f"mlscore:{k}" for k in missing)
            return replace(
                row,
                status=NOT_YET,
                writes=tuple(wanted.items()),
                why=f"{keys} is not declared in Pulumi.yaml, so it is not written",
                instead="set it by hand once the program has the setting",
                note="",
            )
        clashes = [k for k, v in wanted.items() if k in self.values and self.values[k] != v]
        if clashes:
            first = ", ".join(f"{k} = {_show(self.values[k])} ({self.origin[k]})" for k in clashes)
            return replace(
                row,
                status=CONFLICT,
                writes=tuple(wanted.items()),
                why=f"already set: {first}; the first value is kept",
                instead="make the v1 files agree, or edit the stack file",
                note="",
            )
        for key, value in wanted.items():
            self.values[key] = value
            self.origin[key] = f"{row.source} {row.field}"
        return replace(row, writes=tuple(wanted.items()))


def _text(result: Unmapped) -> tuple[str, str]:
    return result.why, result.instead


def _what(compute: str) -> str:
    return "inference config" if compute == "inference" else f"{compute} deployment config"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
