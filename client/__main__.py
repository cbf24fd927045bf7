"""``python -m client``: score against a deployed target, reading the stack outputs.

    python -m client score --target aks --data sample.json --outputs outputs.json
    python -m client score --target app_service --data sample.json --stack dev
    python -m client targets --outputs outputs.json
    python -m client smoke --stack dev          # every endpoint vs the local run of the build
    python -m client smoke --outputs outputs.json --stack dev [--set key=value]

Exit codes: 0 success, 2 a client error (printed on stderr, one line), 1 unexpected or (smoke)
a target that failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from client.errors import ClientError
from client.outputs import StackOutputs, load_file, load_stack
from client.scoring import RetryPolicy, ScoringClient


def _outputs(args: argparse.Namespace) -> StackOutputs:
    if args.outputs:
        return load_file(args.outputs)
    if args.command == "smoke" and not args.stack:
        raise ClientError("pass --stack NAME (outputs from the pulumi CLI) or --outputs FILE")
    return load_stack(args.stack)


def _payload(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except FileNotFoundError:
        raise ClientError(f"data file {path} does not exist") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientError(f"data file {path} is not JSON: {exc}") from None


def _raw(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise ClientError(f"data file {path} does not exist") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m client", description=(__doc__ or "").split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def source(sp: argparse.ArgumentParser) -> None:
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--outputs", help="saved `pulumi stack output --json --show-secrets`")
        g.add_argument("--stack", help="read the outputs of this stack with the pulumi CLI")

    s = sub.add_parser("score", help="POST a JSON payload to a target's scoring URI")
    s.add_argument("--target", required=True, help="target name, e.g. aks, app_service, functions")
    s.add_argument("--data", required=True, help="JSON payload file ('-' for stdin)")
    s.add_argument("--deployment", help="Azure ML online endpoints: pin a deployment (blue/green)")
    s.add_argument("--timeout", type=float, default=60.0, help="read timeout in seconds (60)")
    s.add_argument("--connect-timeout", type=float, default=5.0, help="connect timeout (5)")
    s.add_argument("--retries", type=int, default=4, help="retries on 429/503 (4)")
    s.add_argument("--backoff", type=float, default=0.5, help="first backoff in seconds (0.5)")
    source(s)

    t = sub.add_parser("targets", help="list the targets this stack exports")
    source(t)

    m = sub.add_parser("smoke", help="score every endpoint, compare with the local run")
    m.add_argument(
        "--data",
        help="JSON payload file ('-' for stdin); default: the sample input of the entry "
        "script's schema, else the seeds' sample rows",
    )
    m.add_argument(
        "--content-type",
        help="send --data as it is, with this content type (@rawhttp scripts: image/png, ...)",
    )
    m.add_argument("--local", help="base URL of a running local host of the same build")
    m.add_argument("--timeout", type=float, default=60.0, help="read timeout in seconds (60)")
    m.add_argument("--outputs", help="saved `pulumi stack output --json --show-secrets`")
    m.add_argument(
        "--stack",
        help="the stack deployed: its outputs (pulumi CLI, unless --outputs) and its build "
        "(Pulumi.<stack>.yaml), the local run the answers are compared with",
    )
    m.add_argument("--stack-file", type=Path, help="read the stack's config from this file")
    m.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config")
    return p


def _build_stack(args: argparse.Namespace) -> str:
    if args.stack:
        return args.stack
    if args.stack_file:  # Pulumi.<stack>.yaml
        return Path(args.stack_file).name.removeprefix("Pulumi.").removesuffix(".yaml")
    raise ClientError(
        "which build do these outputs come from? Pass --stack NAME (its Pulumi.NAME.yaml, "
        "and --set or --stack-file as deployed), or --local URL of a host serving that build"
    )


def _overrides(pairs: list[str]) -> dict[str, str]:
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise ClientError(f"--set takes KEY=VALUE, got {bad[0]!r}")
    return dict(p.split("=", 1) for p in pairs)


def _smoke(args: argparse.Namespace, outputs: StackOutputs) -> int:
    from client.reference import check_deployed_model, local_host, stack_build
    from client.smoke import (
        SAMPLE_PAYLOAD,
        Raw,
        reference_answer,
        run_smoke,
        schema_example,
        served_model,
        table,
    )

    def compare(url: str, reference: str) -> int:
        if args.content_type and args.data:
            payload: Any = Raw(_raw(args.data), args.content_type)
        else:
            payload = _payload(args.data) if args.data else schema_example(url) or SAMPLE_PAYLOAD
        expected = reference_answer(url, payload)
        rows = run_smoke(outputs, payload, expected, timeout=(5.0, args.timeout))
        print(table(rows, reference))
        return 0 if all(r.ok for r in rows) else 1

    if args.local:
        return compare(args.local, f"model {served_model(args.local) or '?'} at {args.local}")
    build = stack_build(_build_stack(args), _overrides(args.set), args.stack_file)
    check_deployed_model(build, outputs.raw)
    with local_host(build) as url:
        return compare(url, f"local run of {build.describe()}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        outputs = _outputs(args)
        if args.command == "smoke":
            return _smoke(args, outputs)
        if args.command == "targets":
            for name in sorted(outputs.endpoints):
                target = outputs.target(name)
                print(f"{name}\t{target.scoring_uri}\t{target.auth.scheme}")
            return 0
        client = ScoringClient(
            outputs,
            timeout=(args.connect_timeout, args.timeout),
            retry=RetryPolicy(retries=args.retries, backoff=args.backoff),
        )
        result = client.score(args.target, _payload(args.data), deployment=args.deployment)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
