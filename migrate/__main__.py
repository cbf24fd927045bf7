"""python -m migrate: an Azure ML SDK/CLI v1 deployment's configs become a stack file.

    python -m migrate --inference-config inferenceconfig.json \\
        --deployment-config aks.json [--deployment-config aci.json ...] \\
        --model PATH --model-name NAME --model-version V --stack STACK [--out FILE] [--force]

Exit status: 0 the stack file is written and valid; 1 written, but the program's settings
refuse it (the problems are printed); 2 a v1 file is unreadable or invalid (the file and the
field are named), or the command line is (a missing option, a stack file that exists without
--force).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from components import PROJECT_ROOT
from migrate import paths, report
from migrate.convert import Migration
from migrate.stack import render, validate
from migrate.v1files import V1File, V1FileError, read_deployment, read_inference

USAGE_ERROR, INVALID = 2, 1


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m migrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--inference-config", required=True, type=Path, metavar="FILE")
    parser.add_argument(
        "--deployment-config",
        required=True,
        action="append",
        type=Path,
        metavar="FILE",
        help="a v1 deploymentconfig (aci, aks or local); repeatable",
    )
    parser.add_argument("--model", required=True, type=Path, metavar="PATH")
    parser.add_argument("--model-name", required=True, metavar="NAME")
    parser.add_argument("--model-version", required=True, metavar="V")
    parser.add_argument("--stack", required=True, metavar="STACK")
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="default: Pulumi.<STACK>.yaml in the project"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing stack file")
    return parser.parse_args(argv)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return USAGE_ERROR


def _read(args: argparse.Namespace) -> list[V1File]:
    """The inference config, then each deployment config; one of each compute type."""
    inference = args.inference_config
    files = [read_inference(inference, [Path.cwd(), inference.resolve().parent])]
    first: dict[str, Path] = {}
    for path in args.deployment_config:
        v1 = read_deployment(path)
        if v1.compute in first:
            raise V1FileError(
                path,
                "computeType",
                f"a second {v1.compute} deployment config (the first is "
                f"{paths.shown(first[v1.compute])}): a stack has one {v1.compute} service; "
                "migrate the other into a stack of its own",
            )
        first[v1.compute] = path
        files.append(v1)
    return files


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    stack = args.stack
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", stack):
        return _fail(f"--stack {stack!r}: use letters, digits, '-', '_' and '.'")
    out: Path = args.out or PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    if out.exists() and not args.force:
        return _fail(f"{paths.shown(out)} exists; pass --force to overwrite it")
    if not args.model.exists():
        return _fail(f"--model {args.model}: no such file or folder (the downloaded v1 model)")
    try:
        files = _read(args)
    except V1FileError as e:
        return _fail(str(e))

    migration = Migration()
    migration.add_file(files[0])
    migration.add_model(args.model.resolve(), args.model_name, args.model_version)
    for v1 in files[1:]:
        migration.add_file(v1)
    migration.switch_off_the_rest()
    try:
        out.write_text(render(migration.values, [f.path for f in files], stack, out), "utf-8")
    except OSError as e:
        return _fail(f"cannot write {paths.shown(out)}: {e}")

    print(f"Azure ML v1 -> stack {stack!r} ({paths.shown(out)})", end="\n\n")
    print("\n".join(report.rows(migration) + report.summary(migration, out)))
    problems = validate(out, stack)
    print("\n".join(report.validation(problems, stack, out)))
    return INVALID if problems else 0


if __name__ == "__main__":
    sys.exit(main())
