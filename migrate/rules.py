"""The kinds of rule the mapping table (``migrate/table.py``) is made of.

A v1 field either becomes stack keys (:class:`Maps`: one converted value per key) or is
reported (:class:`Reports`: why it has no key here, whether the behaviour is built in, and what
to do instead). A rule sees the field's value and the :class:`Context` of its file (the other
fields, the resolved paths), so a value-dependent answer stays in the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["bool", "int", "number", "str", "path", "dir", "object", "any"]


@dataclass(frozen=True)
class Context:
    """What a rule may look at: its file, the compute type, every field found, resolved paths."""

    file: Path
    compute: str  # "inference", "aci", "aks" or "local"
    fields: Mapping[str, Any]  # canonical dotted name -> value (null fields left out)
    paths: Mapping[str, Path] = field(default_factory=dict)  # path/dir fields, resolved

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


@dataclass(frozen=True)
class Unmapped:
    """A value with no stack key: why, whether the program does it anyway, what to do instead."""

    why: str
    instead: str = ""
    built_in: bool = False
    shown: tuple[str, ...] = ()  # lines to show under the row (e.g. a file's content)
    # What v1 did is not done here and the service may not work as it did (code, packages,
    # image): the migration stops unless told to go on (--accept-losses).
    lost: bool = False


Convert = Callable[[Any, Context], "tuple[Any, ...] | Unmapped"]
Explain = Callable[[Any, Context], Unmapped]


@dataclass(frozen=True)
class Maps:
    """The field becomes ``keys``; ``convert`` gives one value per key, or an :class:`Unmapped`
    when this particular value has no equivalent."""

    kind: Kind
    keys: tuple[str, ...]
    convert: Convert
    note: Callable[[Any, Context], str] | None = None  # said under the row when it applies


@dataclass(frozen=True)
class Reports:
    """The field has no stack key; ``explain`` says why and what to do."""

    kind: Kind
    explain: Explain


Rule = Maps | Reports


def same(value: Any, _: Context) -> tuple[Any, ...]:
    return (value,)


def const(*values: Any) -> Convert:
    return lambda _value, _ctx: values


def fixed(
    kind: Kind, why: str, instead: str = "", *, built_in: bool = False, lost: bool = False
) -> Reports:
    """A report whose text does not depend on the value."""
    return Reports(kind, lambda _value, _ctx: Unmapped(why, instead, built_in, lost=lost))


def when(kind: Kind, true: Unmapped, false: Unmapped) -> Reports:
    """A boolean field whose report depends on its value."""
    return Reports(kind, lambda value, _ctx: true if value else false)


def decimal(value: Any, _: Context) -> tuple[Any, ...]:
    """A decimal as the stack's string keys take it: 0.5 -> "0.5", 1.0 -> "1"."""
    return (f"{float(value):g}",)


def millicores(value: Any, _: Context) -> tuple[Any, ...]:
    return (round(float(value) * 1000),)


def mebibytes(value: Any, _: Context) -> tuple[Any, ...]:
    return (round(float(value) * 1024),)


Table = Mapping[str, Rule]
