"""The stack file the migration writes, and its validation by the program's own settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from components import PROJECT_ROOT
from components.config.reader import ConfigProblem, project_name, schema
from components.settings import SettingsError, load
from migrate import paths


def preview_command(out: Path, stack: str) -> str:
    """How to preview the stack file offline: by name in the project, else by path; from the
    project's folder (``preview`` is not an installed package, unlike ``migrate``)."""
    if out.resolve() == (PROJECT_ROOT / f"Pulumi.{stack}.yaml").resolve():
        command = f"python -m preview {stack}"
    else:
        command = f"python -m preview {stack} --stack-file {paths.shown(out)}"
    if Path.cwd().resolve() == PROJECT_ROOT.resolve():
        return command
    return f"cd {PROJECT_ROOT} && {command.replace(paths.shown(out), str(out.resolve()))}"


def render(values: Mapping[str, Any], sources: Sequence[Path], stack: str, out: Path) -> str:
    """``Pulumi.<stack>.yaml``: the migrated keys in ``Pulumi.yaml``'s order, nothing else."""
    order = {key: i for i, key in enumerate(schema())}
    project = project_name()
    config = {
        f"{project}:{key}": values[key]
        for key in sorted(values, key=lambda k: order.get(k, len(order)))
    }
    header = (
        "# Migrated from Azure ML SDK/CLI v1 by `python -m migrate` from:\n"
        + "".join(f"#   {paths.shown(p)}\n" for p in sources)
        + "# Every key not listed takes its default from Pulumi.yaml.\n"
        + f"# Offline preview: {preview_command(out, stack)}\n"
    )
    return header + yaml.safe_dump({"config": config}, sort_keys=False, width=100)


def read_values(path: Path) -> dict[str, Any]:
    """A stack file's ``mlscore:`` values by bare key."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    prefix = f"{project_name()}:"
    return {
        key[len(prefix) :]: value
        for key, value in (doc.get("config") or {}).items()
        if str(key).startswith(prefix)
    }


def lookup(values: Mapping[str, Any]) -> Callable[[str], str | None]:
    """A ``key -> raw string`` lookup as ``pulumi.Config.get`` gives it (None: the default)."""

    def get(key: str) -> str | None:
        if key not in values or values[key] is None:
            return None
        value = values[key]
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return get


def validate(path: Path, stack: str) -> list[ConfigProblem]:
    """Every problem ``components.settings.load`` finds in the written stack file, with
    ``Pulumi.yaml``'s defaults for the keys it does not set."""
    try:
        load(lookup(read_values(path)), project=project_name(), stack=stack)
    except SettingsError as e:
        return list(e.problems)
    return []
