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
    if module == "components.settings":
        return "assembly"  # every section's settings in one Settings object
    if module == TARGET_LIST:
        return "list"
    parts = module.split(".")
    if len(parts) >= 4 and parts[1] == "targets" and parts[3] == "settings":
        return "settings"  # a target's settings section
    if len(parts) == 3 and parts[1] == "platform" and parts[2].endswith("settings"):
        return "settings"  # a platform part's settings
    return parts[1] if len(parts) > 1 else "root"


# The list of targets __main__.py walks: the one module that imports every target.
TARGET_LIST = "components.targets.all"
BELOW_CONTRACT = {"root", "config", "settings", "assembly"}
ALLOWED = {
    "root": {"root"},
    "config": {"root", "config"},
    "settings": {"root", "config", "settings"},  # "settings": its own package only (below)
    "assembly": {"root", "config", "settings"},
    "contract": BELOW_CONTRACT,
    "providers": {"root", "config", "providers"},
    "platform": BELOW_CONTRACT | {"contract", "providers", "platform"},
    "targets": BELOW_CONTRACT | {"contract", "providers", "platform", "targets"},
    "list": BELOW_CONTRACT | {"contract", "platform", "targets"},
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


# --- import circles, anywhere in the project ------------------------------------------------------
def _module_names() -> dict[str, Path]:
    """Every project module by its dotted name (``scoring.app``, ``tests.infra.test_layers``)."""
    names = {}
    for path in _project_python():
        rel = path.relative_to(PROJECT_ROOT).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        if parts:
            names[".".join(parts)] = path
    return names


def _resolve(name: str, importer: str, path: Path, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to from ``importer``: absolute, or a sibling imported
    by a script-style path (``from _scoring_support import ...`` in tests/scoring)."""
    if name in modules:
        return name
    package = importer.rsplit(".", 1)[0] if path.name != "__init__.py" else importer
    sibling = f"{package}.{name}"
    return sibling if sibling in modules else None


def _edges(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules ``module`` imports, at any depth of its code (a lazy import is an arrow too)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [_resolve(a.name, module, path, modules) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            # ``from a.b import c``: the submodule a.b.c if it is one, else the module a.b
            subs = [_resolve(f"{base}.{a.name}", module, path, modules) for a in node.names]
            targets = [t for t in subs if t] or [_resolve(base, module, path, modules)]
        else:
            continue
        found.update(t for t in targets if t is not None and t != module)
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_anywhere_in_the_project() -> None:
    modules = _module_names()
    graph = {m: _edges(m, p, modules) for m, p in modules.items()}
    assert _circles(graph) == []


def test_the_circle_check_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# --- __main__.py reads as the diagram ------------------------------------------------------------
MAX_MAIN_LINES = 200


def test_main_is_short_and_walks_the_list_of_targets() -> None:
    main = (PROJECT_ROOT / "__main__.py").read_text()
    assert len(main.splitlines()) <= MAX_MAIN_LINES
    assert "for t in TARGETS if t.enabled(s)" in main
    imported = {n.module for n in ast.walk(ast.parse(main)) if isinstance(n, ast.ImportFrom)}
    targets = [m for m in imported if m and m.startswith("components.targets.")]
    assert targets == [TARGET_LIST]  # the targets come from their list, nothing else


def test_every_target_folder_is_in_the_list_once() -> None:
    from components.targets.all import TARGETS

    folders = {
        p.name
        for p in (COMPONENTS / "targets").iterdir()
        if p.is_dir() and (p / "target.py").exists()
    }
    modules = {t.build.__module__.split(".")[2] for t in TARGETS}
    keys = [t.key for t in TARGETS]
    assert modules == folders and len(set(keys)) == len(keys) == len(folders)
