"""The layers of components/ as the folders show them, and nothing too long to read.

contract <- config <- platform <- targets: imports run one way. A target imports no other
target, so adding one touches no other; a section's settings module imports only config, so
the settings can be assembled before any component module is imported.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from components import PROJECT_ROOT

COMPONENTS = PROJECT_ROOT / "components"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 120


def _modules() -> list[Path]:
    return sorted(COMPONENTS.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.update(_imported_module(node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m == "components" or m.startswith("components.")}


def _imported_module(module: str, name: str) -> str:
    """``from a.b import c``: ``a.b.c`` when c is a module, else ``a.b``."""
    candidate = PROJECT_ROOT.joinpath(*module.split("."), name)
    is_module = candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists()
    return f"{module}.{name}" if is_module else module


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 4 and parts[1] == "targets" and parts[3] == "settings":
        return "settings"  # a target's settings section
    if len(parts) == 3 and parts[1] == "platform" and parts[2].endswith("settings"):
        return "settings"  # a platform part's settings
    return parts[1] if len(parts) > 1 else "root"


ALLOWED = {
    "root": {"root"},
    "settings": {"root", "config", "settings"},  # "settings": its own package only (below)
    "config": {"root", "config", "settings"},
    "contract": {"root", "config", "settings"},
    "providers": {"root", "config", "providers"},
    "platform": {"root", "config", "settings", "contract", "providers", "platform"},
    "targets": {"root", "config", "settings", "contract", "providers", "platform", "targets"},
}


def _same_section(module: str, imported: str) -> bool:
    """Both in one target's settings package (``components.targets.aks.settings[.x]``)."""
    parts, other = module.split("."), imported.split(".")
    return len(parts) >= 4 and parts[1] == "targets" and parts[:4] == other[:4]


def _name(path: Path) -> str:
    rel = path.relative_to(PROJECT_ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(COMPONENTS)))
def test_imports_run_one_way(path: Path) -> None:
    module = _name(path)
    layer = _layer(module) if module != "components.contract" else "contract"
    wrong = set()
    for imported in _imports(path):
        other = "contract" if imported == "components.contract" else _layer(imported)
        if other not in ALLOWED[layer]:
            wrong.add(imported)
        same_target = module.split(".")[:3] == imported.split(".")[:3]
        if layer == "targets" and other == "targets" and not same_target:
            wrong.add(imported)  # a target never imports another target
        if layer == "settings" and other == "settings" and not _same_section(module, imported):
            wrong.add(imported)  # a settings package may split itself, never read another's
    assert not wrong, f"{module} ({layer}) imports {sorted(wrong)}"


def _project_python() -> list[Path]:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = {PROJECT_ROOT / f for f in tracked} | set(_modules())
    return sorted(f for f in files if f.exists())


def test_no_module_or_function_too_long_to_read() -> None:
    long = []
    for path in _project_python():
        source = path.read_text()
        rel = path.relative_to(PROJECT_ROOT)
        if len(source.splitlines()) > MAX_MODULE_LINES:
            long.append(f"{rel}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{rel}:{node.lineno} {node.name}(): {length} lines")
    assert not long, "split these:\n" + "\n".join(long)
