"""Local run (the seeds' LocalWebservice): what ``pulumi up`` would deploy, served on this machine.

    python -m scoring.demo [--stack dev | --stack-file FILE] [--set key=value ...]
                           [--target aks] [--data FILE ...] [--content-type TYPE]
                           [--keep] [--verbose] [--out DIR] [--docker]

For the stack (``Pulumi.<stack>.yaml``, or any stack file with ``--stack-file``, with ``--set``
overrides, as ``python -m preview``):

1. runs the program under the mock engine (its one-line summary is printed; the whole plan is
   ``python -m preview``) and takes the environment it gives the target (``--target``, default
   the first enabled of app_service, aci, container_apps, aks, iot_edge, aml_online), secrets,
   the Redis connection and Azure identities aside;
2. assembles the same build context ``pulumi up`` builds the image from (the host, the entry
   script's folder, the dependencies, the model) and lays it out the way the Dockerfile does;
3. makes the image's environment on this machine (``scoring/localenv.py``): a venv of the
   image's Python into which the Dockerfile's own install step installs the host's and the
   user's requirements (never the dev ``.venv``), cached by their digest under
   ``~/.cache/mlscore/``, and the image's variables, ``HOME`` and working directory;
4. starts the host there with the target's environment on top, POSTs each payload twice
   (``--data FILE``, repeatable, any bytes, sent as ``--content-type`` or the type its name or
   content says; default: the seed payload for the sample, else the sample input of the
   script's schema) and prints each answer with its status, whatever the status.

Nothing talks to Azure: model data collection, when the stack turns it on, is written to
``<out>/modeldata`` in Azure ML's layout (``DATA_COLLECTION_FOLDER``), and telemetry is off (the
Application Insights connection is one of the secrets left aside). The host's own output goes
to ``<out>/host.log`` (``--verbose``: to the console, with ``/status`` at the end); ``<out>`` is
``.local/demo/<stack>`` unless ``--out`` says otherwise, emptied at each start.

Exit status: 0 every answer was 2xx; 1 an answer was not, or the stack, its config or the host
failed (said in one line, no traceback). ``--keep`` goes on serving until Ctrl-C whatever the
answers were. ``--docker`` builds the real image from the context and runs it instead (Docker
required).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from scoring.demo_http import Payload, read_payload, score

ROOT = Path(__file__).resolve().parent.parent
SEED_PAYLOAD = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}
SAMPLE_SCRIPT = ROOT / "scoring" / "sample_model" / "score.py"
OUT = ROOT / ".local" / "demo"
CONTAINER_TARGETS = ("app_service", "aci", "container_apps", "aks", "iot_edge", "aml_online")
# Not part of a local run: secrets (kept by each platform), the cache and Azure identities.
_LEFT_OUT = ("REDIS_", "AZURE_CLIENT_ID", "APPLICATIONINSIGHTS_", "SCORING_AUTH_KEYS")
# Where the host would write collected data in Azure: replaced by a local folder.
_STORAGE = ("DATA_COLLECTION_BLOB_URL", "DATA_COLLECTION_CONNECTION_STRING")


class DemoError(SystemExit):
    """A failure said in one line (stack file, config, target, host): exit 1, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}")


# --- the environment the program gives each target -----------------------------------------------
def target_envs(run: Any) -> dict[str, dict[str, str]]:
    """Plain environment of the scoring host in each target of a mock run
    (``preview.engine.Run``): the container targets and ``functions``; secrets left out."""
    from preview.engine import reveal

    envs: dict[str, dict[str, str]] = {}
    for r in run.resources:
        i = reveal(r.inputs)
        if r.type == "azure-native:web:WebApp":
            target = "functions" if "functionapp" in str(i.get("kind")) else "app_service"
            envs[target] = {a["name"]: a["value"] for a in i["siteConfig"]["appSettings"]}
        elif r.type == "azure-native:containerinstance:ContainerGroup":
            envs["aci"] = _name_value(i["containers"][0]["environmentVariables"])
        elif r.type == "azure-native:app:ContainerApp":
            envs["container_apps"] = _name_value(i["template"]["containers"][0]["env"])
        elif r.type == "kubernetes:apps/v1:Deployment" and r.name == "deployment":
            # the scoring Deployment (not tls-sync, the certificate's sync pod, in prod)
            envs["aks"] = _name_value(i["spec"]["template"]["spec"]["containers"][0]["env"])
        elif r.type == "pulumi-python:dynamic/iotedge:Deployment":
            agent = i["modules_content"]["$edgeAgent"]["properties.desired"]["modules"]
            module = next(m for m in agent.values() if "env" in m)
            envs["iot_edge"] = {k: v["value"] for k, v in module["env"].items()}
        elif r.type == "azure-native:machinelearningservices:OnlineDeployment":
            envs.setdefault("aml_online", dict(i["properties"]["environmentVariables"]))
    return {t: _plain(env) for t, env in envs.items()}


def _name_value(items: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in items if "value" in e}


def _plain(env: Mapping[str, Any]) -> dict[str, str]:
    return {
        k: str(v)
        for k, v in env.items()
        if not k.startswith(_LEFT_OUT)
        and "@Microsoft.KeyVault" not in str(v)
        and "{{secret:" not in str(v)
    }


def local_env(env: Mapping[str, str], out: Path) -> dict[str, str]:
    """``env`` for a run on this machine: collected data goes to ``out/modeldata`` (Azure ML's
    layout, ``scoring/observability/collector.py``), never to a storage account."""
    local = {k: v for k, v in env.items() if k not in _STORAGE}
    if local.get("DATA_COLLECTION_ENABLED", "").strip().lower() in ("true", "1", "yes", "on"):
        local["DATA_COLLECTION_FOLDER"] = str(out / "modeldata")
    return local


def choose_target(envs: Mapping[str, Any], wanted: str | None, stack: str) -> str:
    """``wanted`` if the stack deploys it, else the first container target it deploys."""
    enabled = [t for t in CONTAINER_TARGETS if t in envs]
    if wanted is None and enabled:
        return enabled[0]
    if wanted in enabled:
        return wanted
    what = f"--target {wanted} is not deployed by" if wanted else "no container target in"
    hint = f"; pick one of {', '.join(enabled)}" if enabled else ""
    raise DemoError(f"{what} stack {stack}{hint} (or turn it on with --set)")


# --- serving and scoring --------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def _tail(log: Path | None, lines: int = 25) -> str:
    if log is None or not log.is_file():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; the end of {log}:\n" + "\n".join(text)


def wait_ready(
    base: str, proc: subprocess.Popen[bytes], timeout: float = 60, log: Path | None = None
) -> float:
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise DemoError(
                f"the host exited with {proc.returncode} before it was ready" + _tail(log)
            )
        try:
            if _get(base + "/ready") == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            raise DemoError(f"the host was not ready after {timeout:.0f}s" + _tail(log))
        time.sleep(0.05)


def schema_example(base: str) -> Any | None:
    """The sample input of the entry script's ``inference-schema`` decorators, if any."""
    try:
        with urllib.request.urlopen(base + "/swagger.json", timeout=5) as r:
            doc = json.loads(r.read())
    except (OSError, ValueError):  # no swagger (a 404 is an HTTPError, an OSError)
        return None
    example = doc.get("definitions", {}).get("ServiceInput", {}).get("example")
    return example or None


def status(base: str) -> str:
    try:
        with urllib.request.urlopen(base + "/status", timeout=5) as r:
            return r.read().decode(errors="replace")
    except OSError as e:
        return f"(no answer: {e})"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the command ----------------------------------------------------------------------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m scoring.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stack", help="stack file Pulumi.<stack>.yaml of the project (default dev)")
    p.add_argument(
        "--stack-file",
        type=Path,
        metavar="FILE",
        help="a stack file anywhere (e.g. one python -m migrate --out wrote); the stack name "
        "defaults to the NAME of Pulumi.NAME.yaml",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config")
    p.add_argument("--target", choices=CONTAINER_TARGETS, help="whose environment to use")
    p.add_argument(
        "--data", type=Path, action="append", default=[], metavar="FILE", help="payload to POST"
    )
    p.add_argument("--content-type", metavar="TYPE", help="of every --data (default: guessed)")
    p.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    p.add_argument("--verbose", action="store_true", help="the host's output and /status too")
    p.add_argument("--out", type=Path, metavar="DIR", help="logs and data (.local/demo/<stack>)")
    p.add_argument("--docker", action="store_true", help="build and run the real image")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    return p.parse_args(argv)


def _stack_name(args: argparse.Namespace) -> str:
    if args.stack or args.stack_file is None:
        return args.stack or "dev"
    found = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", args.stack_file.name)
    if found is None:
        raise DemoError(f"{args.stack_file.name} is not Pulumi.<stack>.yaml: give --stack NAME")
    return found.group(1)


def _overrides(items: list[str]) -> dict[str, str]:
    from preview import engine

    try:
        return engine.parse_overrides(items)
    except engine.StackConfigError as e:
        raise DemoError(str(e)) from None


@dataclass
class Prepared:
    settings: Any  # components.settings.Settings
    target: str
    env: dict[str, str]
    context: Any  # components.platform.build_context.BuildContext
    summary: str


def prepare(
    stack: str,
    overrides: Mapping[str, str],
    target: str | None,
    stack_file: Path | None = None,
) -> Prepared:
    """Settings, the chosen target and its environment, the assembled build context and the
    plan's summary; a bad stack file, config or target is a :class:`DemoError`."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from components.platform.build_context import assemble
    from components.settings import SettingsError, load
    from preview import engine

    try:
        config, _ = engine.stack_config(stack, overrides, stack_file=stack_file)
        s = load(lambda k: config.get(f"mlscore:{k}"), project="mlscore", stack=stack)
        run = engine.run(stack, overrides, preview=False, stack_file=stack_file)
    except engine.StackConfigError as e:
        raise DemoError(str(e)) from None
    except SettingsError as e:
        raise DemoError(str(e)) from None
    if run.error is not None:
        raise DemoError(f"the {stack} program failed: {run.error}")
    envs = target_envs(run)
    chosen = choose_target(envs, target, stack)
    env = envs[chosen]
    if chosen == "aml_online":  # Azure ML sets it to its mount of the registered model
        env["AZUREML_MODEL_DIR"] = (
            f"/var/azureml-app/azureml-models/{s.model.name}/{s.model.version}"
        )
    return Prepared(s, chosen, env, assemble(s.model), plan_summary(run, sorted(envs), stack_file))


def plan_summary(run: Any, hosts: list[str], stack_file: Path | None) -> str:
    custom = sum(r.custom for r in run.resources)
    whole = f"python -m preview {run.stack}" + (f" --stack-file {stack_file}" if stack_file else "")
    return (
        f"stack {run.stack}: {custom} resources in {len(run.resources) - custom} components; "
        f"the scoring host runs in {', '.join(hosts) or 'no target'} (the whole plan: {whole})"
    )


def _payloads(args: argparse.Namespace, entry_script: Path, base: str) -> list[Payload]:
    if args.data:
        return [read_payload(path, args.content_type) for path in args.data]
    if entry_script == SAMPLE_SCRIPT:
        return [Payload(json.dumps(SEED_PAYLOAD).encode(), "application/json")]
    example = schema_example(base) or SEED_PAYLOAD
    return [Payload(json.dumps(example).encode(), "application/json")]


def _serve_layout(
    ctx: Any, env: dict[str, str], port: int, work: Path, output: IO[bytes] | None, verbose: bool
) -> subprocess.Popen[bytes]:
    """The host in the image's environment on this machine (``client.reference``'s
    :func:`image_environment`, the smoke's and the corpus's local run too)."""
    from client.errors import ClientError
    from client.reference import image_environment

    try:
        python, run_env, workdir = image_environment(ctx, work / "image", env)
    except ClientError as e:  # the image's install step failed, as docker build would
        raise DemoError(str(e)) from None
    if "DATA_COLLECTION_FOLDER" in env:  # a folder of this machine, not of the image
        run_env["DATA_COLLECTION_FOLDER"] = env["DATA_COLLECTION_FOLDER"]
    run_env |= {"AZUREML_SERVER_PORT": str(port), "SCORING_HOST": "127.0.0.1"}
    if verbose:
        print(f"$ (cd {workdir} && {python} -m scoring)  image layout: {work / 'image'}")
    cmd = [str(python), "-m", "scoring"]
    return subprocess.Popen(cmd, cwd=workdir, env=run_env, stdout=output, stderr=output)


def _check_docker() -> None:
    if shutil.which("docker") is None:
        raise DemoError("--docker: no docker command on this machine")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise DemoError("--docker: the Docker daemon is not reachable (docker info failed)")


def _serve_docker(
    ctx: Any, env: dict[str, str], port: int, output: IO[bytes] | None
) -> subprocess.Popen[bytes]:
    tag = f"mlscore-local:{ctx.tag}"
    build_args = [a for k, v in ctx.build_args.items() for a in ("--build-arg", f"{k}={v}")]
    subprocess.run(["docker", "build", "-t", tag, *build_args, str(ctx.path)], check=True)
    container_port = env.get("AZUREML_SERVER_PORT", "5001")
    folder = env.get("DATA_COLLECTION_FOLDER")
    mount = ["-v", f"{folder}:{folder}"] if folder else []
    env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    cmd = ["docker", "run", "--rm", "-p", f"127.0.0.1:{port}:{container_port}", *mount]
    cmd += [*env_args, tag]
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.Popen(cmd, stdout=output, stderr=output)


def _collected(out: Path) -> list[str]:
    """The files data collection wrote under ``out/modeldata``, with their line counts."""
    files = sorted((out / "modeldata").rglob("*.jsonl"))
    counts = [(f, len(f.read_bytes().splitlines())) for f in files]
    return [f"  {f} ({n} line{'' if n == 1 else 's'})" for f, n in counts]


@dataclass(frozen=True)
class Where:
    """Where a run's output went: the host's log (None: the console) and collected data."""

    out: Path
    log: Path | None
    env: Mapping[str, str]

    def lines(self) -> list[str]:
        lines = [f"host log: {self.log}"] if self.log is not None else []
        if "DATA_COLLECTION_FOLDER" in self.env:
            files = _collected(self.out)
            lines.append(
                f"collected data (Azure ML's layout): {self.out / 'modeldata'}"
                + ("" if files else " (nothing written)")
            )
            lines += files
        return lines


def _out_dir(args: argparse.Namespace, stack: str) -> Path:
    out = (args.out or OUT / stack).resolve()
    shutil.rmtree(out / "modeldata", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    stack, overrides = _stack_name(args), _overrides(args.set)
    if args.docker:
        _check_docker()
    payloads = [read_payload(p, args.content_type) for p in args.data]  # unreadable: say so now
    ready = prepare(stack, overrides, args.target, args.stack_file)
    s, ctx, out = ready.settings, ready.context, _out_dir(args, stack)
    env = local_env(ready.env, out)
    print(ready.summary)
    print(f"{ready.target}'s environment; model {s.model.name}:{s.model.version} "
          f"from {s.model.path}; entry script {s.model.entry_script}")  # fmt: skip
    if args.verbose:
        print(f"build context {ctx.path} (tag {ctx.tag})")
    sys.stdout.flush()
    log = None if args.verbose else out / "host.log"
    with (
        tempfile.TemporaryDirectory(prefix="mlscore-demo-") as work,
        open(log, "wb") if log is not None else contextlib.nullcontext() as output,
    ):
        port = args.port or _free_port()
        proc = (
            _serve_docker(ctx, env, port, output)
            if args.docker
            else _serve_layout(ctx, env, port, Path(work), output, args.verbose)
        )
        base = f"http://127.0.0.1:{port}"
        payloads = payloads or None
        return _session(args, proc, base, s.model.entry_script, payloads, Where(out, log, env))


def _session(
    args: argparse.Namespace,
    proc: subprocess.Popen[bytes],
    base: str,
    entry_script: Path,
    payloads: list[Payload] | None,
    where: Where,
) -> int:
    """Wait for the host, score, then keep serving or stop; where the logs and data are."""
    ok = False
    try:
        print(f"ready after {wait_ready(base, proc, log=where.log):.2f}s: {base}/score", flush=True)
        ok = score(base, payloads or _payloads(args, entry_script, base))
        if args.verbose:
            print("GET /status -> " + status(base))
        if args.keep:
            print(f"serving {base}/score until Ctrl-C", flush=True)
            code = proc.wait()
            print(f"the host exited with {code}", file=sys.stderr)
            ok = False
    except KeyboardInterrupt:
        pass
    finally:
        _stop(proc)
    print("\n".join(where.lines()), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
