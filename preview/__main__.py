"""Offline preview: the plan of the real program for a stack, with no Azure account or Pulumi CLI.

    python -m preview [STACK] [--json] [--set KEY=VALUE ...] [--all-properties]

Prints the tree of components and resources with their key properties, the stack outputs
(secrets masked, values Azure computes marked "known after apply"), and every validation problem.
Exits 1 when the stack config is invalid or the program fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from components.config import stand_ins
from components.config.reader import Reader
from preview import engine

MAX_PROPS = 14
MAX_WIDTH = 96
HIDDEN = {"__provider", "name", "location", "tags", "resourceGroupName"}


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            if k in HIDDEN and not prefix:
                continue
            out += _flatten(v, f"{prefix}.{k}" if prefix else k)
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [(f"{prefix}[{len(value)}]", "...")]
    return [(prefix, value)]


def _show(value: Any) -> str:
    text = json.dumps(engine.to_json(value)) if not isinstance(value, str) else value
    return text if len(text) <= MAX_WIDTH else text[: MAX_WIDTH - 3] + "..."


def stand_ins_of(
    stack: str, overrides: dict[str, str], stack_file: Path | None
) -> dict[str, list[str]]:
    """The stand-in values of the stack's config (key -> values) that this offline preview
    accepts and a real run refuses (components/config/stand_ins.py)."""
    config, _ = engine.stack_config(stack, overrides, stack_file=stack_file)
    prefix = f"{engine.project_file()['name']}:"
    values = {k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix)}
    reader = Reader(values.get)
    stand_ins.check(reader)  # what a real run refuses, one problem per key
    return {p.keys[-1]: [p.value] for p in reader.problems}


def render(
    run: engine.Run, *, all_properties: bool = False, stand_ins: dict[str, list[str]] | None = None
) -> str:
    lines = [f"Offline preview of stack '{run.stack}' (mock engine, no Azure calls)", ""]
    if stand_ins:
        lines.append(
            "Stand-ins this offline preview accepts and `pulumi up` refuses (replace them first):"
        )
        lines += [f"  - mlscore:{k} = {', '.join(v)}" for k, v in sorted(stand_ins.items())]
        lines.append("")
    if run.problems:
        lines.append(f"Invalid stack config: {len(run.problems)} problem(s)")
        lines += [f"  - {p}" for p in run.problems]
        return "\n".join(lines)
    if run.error is not None:
        lines.append(f"The program failed: {type(run.error).__name__}: {run.error}")
        return "\n".join(lines)

    by_parent: dict[str, list[engine.Registered]] = {}
    for r in run.resources:
        by_parent.setdefault(r.parent, []).append(r)
    roots = [r for r in run.resources if r.parent not in {x.urn for x in run.resources}]

    def walk(r: engine.Registered, depth: int) -> None:
        pad = "    " * depth
        kind = "component" if not r.custom else "+ create"
        lines.append(
            f"{pad}{kind:<9} {r.type}  {r.name}"
            + (f"  ({r.azure_name})" if r.custom and r.azure_name != r.name else "")
        )
        if r.custom:
            props = _flatten(r.inputs)
            shown = props if all_properties else props[:MAX_PROPS]
            for key, value in shown:
                lines.append(f"{pad}              {key}: {_show(value)}")
            if len(props) > len(shown):
                lines.append(
                    f"{pad}              ... {len(props) - len(shown)} more (--all-properties)"
                )
        for child in sorted(by_parent.get(r.urn, []), key=lambda c: (c.custom, c.name)):
            walk(child, depth + 1)

    for r in sorted(roots, key=lambda c: (c.custom, c.name)):
        walk(r, 0)
    custom = sum(r.custom for r in run.resources)
    lines += [
        "",
        f"Resources: {custom} to create, in {len(run.resources) - custom} components",
        "",
        "Outputs:",
    ]
    text = json.dumps(engine.to_json(run.outputs), indent=2, sort_keys=True)
    lines += ["  " + line for line in text.splitlines()]
    lines += ["", f"({run.seconds:.2f} s)"]
    return "\n".join(lines)


def as_json(run: engine.Run, stand_ins: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {
        "stack": run.stack,
        "ok": run.error is None,
        "stand_ins": stand_ins or {},
        "problems": [str(p) for p in run.problems],
        "error": None if run.error is None or run.problems else f"{run.error}",
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "custom": r.custom,
                "inputs": engine.to_json(r.inputs),
            }
            for r in run.resources
        ],
        "outputs": engine.to_json(run.outputs),
        "seconds": round(run.seconds, 3),
    }


def parse_set(items: list[str]) -> dict[str, str]:
    try:
        return engine.parse_overrides(items)
    except engine.StackConfigError as e:
        raise SystemExit(str(e)) from None


def _stack_of(stack_file: Path | None) -> str:
    if stack_file is None:
        return "dev"
    found = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", stack_file.name)
    if found is None:
        raise engine.StackConfigError(
            f"{stack_file.name} is not Pulumi.<stack>.yaml: name the stack"
        )
    return found.group(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m preview",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stack", nargs="?", default=None, help="stack name (default: dev)")
    parser.add_argument(
        "--stack-file",
        type=Path,
        help="a stack file anywhere (e.g. one python -m migrate --out wrote); the stack name "
        "defaults to the NAME of Pulumi.NAME.yaml",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key for this preview (repeatable)",
    )
    parser.add_argument(
        "--all-properties", action="store_true", help="list every input property of each resource"
    )
    args = parser.parse_args(argv)
    try:
        stack = args.stack or _stack_of(args.stack_file)
        overrides = parse_set(args.set)
        run = engine.run(stack, overrides, preview=True, stack_file=args.stack_file)
        found = stand_ins_of(stack, overrides, args.stack_file) if run.error is None else {}
    except engine.StackConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(as_json(run, found), indent=2, sort_keys=True))
    else:
        print(render(run, all_properties=args.all_properties, stand_ins=found))
    return 0 if run.error is None else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Leave without the asyncio teardown noise of the mock runtime's event loop.
    os._exit(code)
