"""python -m migrate: an Azure ML SDK/CLI v1 deployment's configs become a stack file.

    python -m migrate --inference-config inferenceconfig.json \\
        --deployment-config aks.json [--deployment-config aci.json ...] \\
        --model PATH --model-name NAME --model-version V --stack STACK [--out FILE] [--force]
        [--accept-losses]

Runs from any directory (``make setup`` installs the package): ``python -m migrate`` with the
project's venv, or its console script ``mlscore-migrate``. The paths given are relative to the
working directory; ``sourceDirectory`` (and the paths without it) to the inference config's
folder, as in a v1 project.

Exit status: 0 the stack file is written and valid; 1 written, but the program's settings
refuse it (the problems are printed); 2 a v1 file is unreadable or invalid (the file and the
field are named), or the command line is (a missing option, a stack file that exists without
--force); 3 a part of the v1 deployment could not be carried over (an inline environment, extra
Dockerfile steps, a custom base image, files of sourceDirectory outside the entry script's
folder, a field this program has no key for, two files that disagree): nothing is written
unless --accept-losses says to write the stack without those parts.
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

USAGE_ERROR, INVALID, NOT_CARRIED_OVER = 2, 1, 3


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
    parser.add_argument(
        "--accept-losses",
        action="store_true",
        help="write the stack even though parts of v1 could not be carried over (exit 3 without)",
    )
    return parser.parse_args(argv)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return USAGE_ERROR


def _read(args: argparse.Namespace) -> list[V1File]:
    """The inference config, then each deployment config; one of each compute type."""
    inference = args.inference_config
    # sourceDirectory (and paths without it) next to the inference config, wherever the command
    # runs; the working directory only when nothing is found there (where v1's CLI looked)
    files = [read_inference(inference, [inference.resolve().parent, Path.cwd()])]
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
    lost = migration.not_carried_over()
    if lost and not args.accept_losses:
        print("\n".join(report.rows(migration) + report.losses(lost, written=False)))
        return NOT_CARRIED_OVER
    try:
        out.write_text(render(migration.values, [f.path for f in files], stack, out), "utf-8")
    except OSError as e:
        return _fail(f"cannot write {paths.shown(out)}: {e}")

    print(f"Azure ML v1 -> stack {stack!r} ({paths.shown(out)})", end="\n\n")
    print("\n".join(report.rows(migration) + report.summary(migration, out)))
    if lost:
        print("\n".join(report.losses(lost, written=True)))
    problems = validate(out, stack)
    print("\n".join(report.validation(problems, stack, out)))
    return INVALID if problems else 0


def run() -> None:
    """The console script's entry (``mlscore-migrate``)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
