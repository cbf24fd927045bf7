"""Paths as v1 resolved them, and as the stack file writes them.

v1 (``InferenceConfig``, and the CLI reading ``inferenceconfig.json``): ``entryScript``,
``condaFile`` and ``extraDockerfileSteps`` are relative to ``sourceDirectory`` when it is set;
``sourceDirectory`` itself, and the paths when it is not set, are relative to the directory the
command ran in, which was the v1 project's folder, where ``inferenceconfig.json`` sits. The
migration runs from anywhere, so it takes them relative to the inference config's folder, and
only when nothing is there relative to its own working directory; the report shows the paths
it found.

The stack file writes a path relative to the project (as the program resolves it) when it lies
inside the project, else absolute.
"""

from __future__ import annotations

from pathlib import Path

from components import PROJECT_ROOT


def candidates(raw: str, bases: list[Path]) -> list[Path]:
    path = Path(raw).expanduser()
    if path.is_absolute():
        return [path]
    seen: list[Path] = []
    for base in bases:
        found = (base / path).resolve()
        if found not in seen:
            seen.append(found)
    return seen


def resolve(raw: str, bases: list[Path], *, folder: bool = False) -> Path | None:
    """The first candidate that exists (a folder if ``folder``, else a file), or None."""
    for path in candidates(raw, bases):
        if path.is_dir() if folder else path.is_file():
            return path
    return None


def stack_path(path: Path) -> str:
    """A path as ``mlscore:*Path``/``entryScript`` take it: project-relative, else absolute."""
    path = path.resolve()
    try:
        return path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def shown(path: Path) -> str:
    """A path for the report: relative to the working directory when below it."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def files_outside(root: Path, inner: Path) -> list[Path]:
    """Visible files under ``root`` that are not under ``inner`` (hidden parts skipped)."""
    found = []
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if not f.is_file() or any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            continue
        if not f.resolve().is_relative_to(inner.resolve()):
            found.append(f)
    return found
