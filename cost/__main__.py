"""What a stack costs, before ``pulumi up``.

    python -m cost [STACK] [--stack-file FILE] [--set KEY=VALUE ...] [--json | --markdown]
                   [--base BASE.json] [--budget-check]
    python -m cost --refresh [--api URL] [--stacks dev prod]

Runs the program for STACK under the offline preview's mock engine and prices every resource it
declares from the snapshot in cost/prices/<region>.json (no network). ``--refresh`` rebuilds the
snapshot from the Azure Retail Prices API for the prices the stacks ask for (run it where
https://prices.azure.com is reachable). Exits 1 when the program fails, 2 on a usage error, 3
with ``--budget-check`` when the maximum exceeds the stack's mlscore:monthlyBudgetUsd.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cost import estimate as est
from cost import render
from cost.snapshot import SnapshotError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("stack", nargs="?", default=None, help="stack name (default: dev)")
    p.add_argument("--stack-file", type=Path, help="a Pulumi.<stack>.yaml anywhere")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output")
    out.add_argument("--markdown", action="store_true", help="the pull request comment")
    p.add_argument("--base", type=Path, help="the base branch's --json output: show the change")
    p.add_argument(
        "--budget-check",
        action="store_true",
        help="exit 3 when the maximum exceeds mlscore:monthlyBudgetUsd",
    )
    p.add_argument("--refresh", action="store_true", help="rebuild the price snapshot")
    p.add_argument("--api", default=None, help="Retail Prices API URL (--refresh)")
    p.add_argument(
        "--stacks", nargs="*", default=None, help="stacks whose prices --refresh fetches"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.refresh:
        from cost import refresh

        return refresh.main(args.stacks, api=args.api)
    from preview import engine
    from preview.__main__ import _stack_of, parse_set

    try:
        stack = args.stack or _stack_of(args.stack_file)
        run = engine.run(stack, parse_set(args.set), preview=True, stack_file=args.stack_file)
    except engine.StackConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if run.error is not None:
        problems = [str(p) for p in run.problems] or [f"{type(run.error).__name__}: {run.error}"]
        print(
            "The program failed; nothing to price:\n  - " + "\n  - ".join(problems), file=sys.stderr
        )
        return 1
    try:
        result = est.estimate_run(stack, run)
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = json.loads(args.base.read_text()) if args.base and args.base.exists() else None
    if args.json:
        print(json.dumps(render.as_json(result), indent=2, sort_keys=True))
    elif args.markdown:
        print(render.markdown(result, base))
    else:
        print(render.text(result))
    return _budget_exit(stack, args, result) if args.budget_check else 0


def _budget_exit(stack: str, args: argparse.Namespace, result: est.Estimate) -> int:
    from cost.budget import over_budget, stack_budget
    from preview.__main__ import parse_set

    message = over_budget(result, stack_budget(stack, args.stack_file, parse_set(args.set)))
    if message:
        print(message, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # leave without the mock runtime's asyncio teardown noise (as preview does)
