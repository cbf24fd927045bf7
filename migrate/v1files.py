"""Reading the v1 files: JSON or the YAML form the CLI took, fields checked against the table.

Every problem that makes a file unusable raises :class:`V1FileError` naming the file and the
field: unreadable, not JSON/YAML, not an object, a field of the wrong type, a path that does not
exist, no or an unknown ``computeType``. Null fields (the documented examples write
``"sourceDirectory": null``) count as not set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from migrate import paths
from migrate.rules import Context, Kind, Rule, Table
from migrate.table import DEPLOYMENT, INFERENCE


class V1FileError(Exception):
    def __init__(self, file: Path, field: str, problem: str):
        super().__init__(f"{paths.shown(file)}: {field}: {problem}")
        self.file, self.field, self.problem = file, field, problem


@dataclass(frozen=True)
class Found:
    name: str  # the table's spelling (dotted for nested fields), else as written
    written: str  # as written in the file
    value: Any  # converted to the rule's kind
    rule: Rule | None  # None: not a field the migration knows


@dataclass(frozen=True)
class V1File:
    path: Path
    compute: str  # "inference", "aci", "aks" or "local"
    found: tuple[Found, ...]
    context: Context


def read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise V1FileError(path, "(file)", f"unreadable ({e})") from e
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise V1FileError(path, f"line {e.lineno}", f"not valid JSON ({e.msg})") from e
    else:  # the YAML form (JSON is YAML too)
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "(document)"
            problem = getattr(e, "problem", None) or str(e)
            raise V1FileError(path, where, f"not valid YAML ({problem})") from e
    if not isinstance(doc, dict):
        raise V1FileError(path, "(document)", "expected an object of fields")
    return doc


def _fields(path: Path, doc: Mapping[str, Any], table: Table) -> Iterator[tuple[str, str, Any]]:
    """(table name or written name, written name, value) for every non-null field, nested
    groups flattened to dotted names."""
    names = {k.lower(): k for k in table}
    groups = {k.split(".")[0].lower() for k in table if "." in k}
    seen: dict[str, str] = {}
    for key, value in doc.items():
        written = str(key)
        if value is None:
            continue
        if written.lower() in groups:
            if not isinstance(value, dict):
                raise V1FileError(path, written, f"expected an object, got {value!r}")
            items = [(f"{written}.{k}", v) for k, v in value.items() if v is not None]
        else:
            items = [(written, value)]
        for name, item in items:
            if name.lower() in seen:
                raise V1FileError(path, name, f"given twice (also as {seen[name.lower()]})")
            seen[name.lower()] = name
            yield names.get(name.lower(), name), name, item


def convert(path: Path, field: str, value: Any, kind: Kind) -> Any:
    """``value`` as ``kind``, or V1FileError naming the field."""
    converted = _AS[kind](value)
    if converted is not None:
        return converted
    expected = {
        "bool": "true or false",
        "int": "a whole number",
        "number": "a number",
        "object": "an object",
    }.get(kind, "a non-empty string")
    raise V1FileError(path, field, f"expected {expected}, got {value!r}")


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str) else ""
    return {"true": True, "false": False}.get(text)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


_AS: dict[str, Callable[[Any], Any]] = {
    "bool": _bool,
    "int": _int,
    "number": _number,
    "str": _text,
    "path": _text,
    "dir": _text,
    "object": lambda v: v if isinstance(v, dict) else None,
    "any": lambda v: v,
}


def _found(path: Path, doc: Mapping[str, Any], table: Table) -> tuple[Found, ...]:
    found = []
    for name, written, value in _fields(path, doc, table):
        rule = table.get(name)
        if rule is not None:
            value = convert(path, written, value, rule.kind)
        found.append(Found(name, written, value, rule))
    return tuple(found)


def read_inference(path: Path, bases: list[Path]) -> V1File:
    """``inferenceconfig.json``: paths resolved as v1 did (see ``migrate/paths.py``)."""
    found = _found(path, read_document(path), INFERENCE)
    values = {f.name: f.value for f in found if f.rule is not None}
    if "entryScript" not in values:
        raise V1FileError(path, "entryScript", "missing: the entry script is required")
    resolved: dict[str, Path] = {}
    if "sourceDirectory" in values:
        source = paths.resolve(values["sourceDirectory"], bases, folder=True)
        if source is None:
            raise _missing(path, "sourceDirectory", values["sourceDirectory"], bases, "folder")
        resolved["sourceDirectory"] = source
        bases = [source]
    for f in found:
        if f.rule is not None and f.rule.kind == "path":
            file = paths.resolve(f.value, bases)
            if file is None:
                raise _missing(path, f.written, f.value, bases, "file")
            resolved[f.name] = file
    return V1File(path, "inference", found, Context(path, "inference", values, resolved))


def _missing(path: Path, field: str, raw: str, bases: list[Path], what: str) -> V1FileError:
    looked = ", ".join(paths.shown(p) for p in paths.candidates(raw, bases))
    return V1FileError(path, field, f"no such {what} {raw!r} (looked for {looked})")


def read_deployment(path: Path) -> V1File:
    """A ``deploymentconfig.json``: its ``computeType`` picks the table."""
    doc = read_document(path)
    compute_field = next((k for k in doc if str(k).lower() == "computetype"), None)
    compute = doc.get(compute_field) if compute_field is not None else None
    if not isinstance(compute, str) or compute.strip().lower() not in DEPLOYMENT:
        problem = "missing" if compute is None else f"{compute!r} is not a v1 compute type"
        raise V1FileError(path, "computeType", f"{problem}: use aci, aks or local")
    kind = compute.strip().lower()
    found = _found(path, doc, DEPLOYMENT[kind])
    values = {f.name: f.value for f in found if f.rule is not None}
    if values.get("authEnabled") is True and values.get("tokenAuthEnabled") is True:
        raise V1FileError(
            path, "authEnabled, tokenAuthEnabled", "both true: v1 takes one or the other"
        )
    return V1File(path, kind, found, Context(path, kind, values))
