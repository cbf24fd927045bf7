"""Local run (the seeds' LocalWebservice): what ``pulumi up`` would deploy, served on this machine.

    python -m scoring.demo [--stack dev] [--set key=value ...] [--data payload.json]
                           [--target app_service] [--docker] [--keep]

For the stack (``Pulumi.<stack>.yaml`` with ``--set`` overrides, as ``python -m preview``):

1. runs the program under the mock engine and takes the environment it gives the target
   (``--target``, default the first enabled of app_service, aci, aks, iot_edge, aml_online),
   secrets and the Redis connection aside;
2. assembles the same build context ``pulumi up`` builds the image from (the host, the entry
   script's folder, the dependencies, the model) and lays it out the way the Dockerfile does;
3. installs the entry script's dependencies in a venv of its own, cached by their hash under
   ``.local/venvs/`` (it sees the host's packages after its own);
4. starts the host there with that environment, POSTs the payload twice (``--data``; default:
   the seed payload for the sample, else the sample input of the script's schema) and prints
   the answers and ``/status``.

``--docker`` builds the real image from the context and runs it instead (Docker required).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED_PAYLOAD = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}
SAMPLE_SCRIPT = ROOT / "scoring" / "sample_model" / "score.py"
VENVS = ROOT / ".local" / "venvs"
CONTAINER_TARGETS = ("app_service", "aci", "container_apps", "aks", "iot_edge", "aml_online")
# Not part of a local run: secrets (kept by each platform), the cache and Azure identities.
_LEFT_OUT = ("REDIS_", "AZURE_CLIENT_ID", "APPLICATIONINSIGHTS_", "SCORING_AUTH_KEYS")


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


# --- the user's dependencies in a venv of their own ----------------------------------------------
def dependencies_venv(requirements: Path, root: Path = VENVS) -> Path:
    """A venv with ``requirements`` installed, on top of this interpreter's packages (the host's),
    cached by the requirements' hash. Returns its python."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = root / digest
    python = venv / "bin" / "python"
    if (venv / ".installed").is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The host's packages come after the venv's own: the user's pins win, as in the image.
    Path(site, "_scoring_host.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    print(f"installing the entry script's dependencies into {venv}", flush=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run([*pip, "-r", str(requirements)])
    if result.returncode != 0:
        raise SystemExit(f"pip could not install {requirements} (see above)")
    (venv / ".installed").write_text("")
    return python


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


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if _get(base + "/ready") == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"server not ready after {timeout:.0f}s")
        time.sleep(0.05)


def schema_example(base: str) -> Any | None:
    """The sample input of the entry script's ``inference-schema`` decorators, if any."""
    with urllib.request.urlopen(base + "/swagger.json", timeout=5) as r:
        doc = json.loads(r.read())
    example = doc.get("definitions", {}).get("ServiceInput", {}).get("example")
    return example or None


def score(base: str, payload: Any) -> None:
    body = json.dumps(payload).encode()
    for attempt in (1, 2):
        if attempt == 2:
            time.sleep(0.1)  # the cache store happens just after the first response
        req = urllib.request.Request(
            base + "/score", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            cache = r.headers.get("x-scoring-cache", "off")
            print(f"POST /score #{attempt} -> {r.status} (cache: {cache}) {r.read().decode()}")
    with urllib.request.urlopen(base + "/status", timeout=5) as r:
        print("GET /status -> " + r.read().decode(), flush=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- the command ----------------------------------------------------------------------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Serve what a stack deploys locally and score.")
    p.add_argument("--stack", default="dev", help="stack file Pulumi.<stack>.yaml (default dev)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config")
    p.add_argument("--data", type=Path, help="JSON payload to POST (default: see above)")
    p.add_argument("--target", choices=CONTAINER_TARGETS, help="whose environment to use")
    p.add_argument("--docker", action="store_true", help="build and run the real image")
    p.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    return p.parse_args(argv)


def prepare(stack: str, overrides: Mapping[str, str], target: str | None) -> tuple[Any, str, dict]:
    """Settings, chosen target and its environment, and the assembled build context."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from components.platform.build_context import assemble
    from components.settings import SettingsError, load
    from preview import engine

    config, _ = engine.stack_config(stack, overrides)
    try:
        s = load(lambda k: config.get(f"mlscore:{k}"), project="mlscore", stack=stack)
    except SettingsError as e:
        raise SystemExit(str(e)) from None
    run = engine.run(stack, overrides, preview=False)
    if run.error is not None:
        raise SystemExit(f"the {stack} program failed: {run.error}")
    envs = target_envs(run)
    chosen = target or next((t for t in CONTAINER_TARGETS if t in envs), None)
    if chosen is None or chosen not in envs:
        raise SystemExit(f"no container target {target or ''} enabled in {stack}: {sorted(envs)}")
    env = envs[chosen]
    if chosen == "aml_online":  # Azure ML sets it to its mount of the registered model
        env["AZUREML_MODEL_DIR"] = (
            f"/var/azureml-app/azureml-models/{s.model.name}/{s.model.version}"
        )
    return s, chosen, {"env": env, "context": assemble(s.model)}


def _payload(args: argparse.Namespace, entry_script: Path, base: str) -> Any:
    if args.data:
        return json.loads(args.data.read_text())
    if entry_script == SAMPLE_SCRIPT:
        return SEED_PAYLOAD
    return schema_example(base) or SEED_PAYLOAD


def _serve_layout(ctx: Any, env: dict[str, str], port: int, work: Path) -> subprocess.Popen[bytes]:
    from components.platform.image_layout import rebuild

    layout = rebuild(ctx, work / "image")
    python = dependencies_venv(ctx.path / "user-requirements.txt")
    run_env = layout.with_env(env)
    run_env |= {"AZUREML_SERVER_PORT": str(port), "SCORING_HOST": "127.0.0.1"}
    run_env["PATH"] = os.environ.get("PATH", "")
    print(f"$ (cd {layout.workdir} && {python} -m scoring)  image layout: {layout.root}")
    return subprocess.Popen([str(python), "-m", "scoring"], cwd=layout.workdir, env=run_env)


def _check_docker() -> None:
    if shutil.which("docker") is None:
        raise SystemExit("--docker: no docker command on this machine")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise SystemExit("--docker: the Docker daemon is not reachable (docker info failed)")


def _serve_docker(ctx: Any, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    tag = f"mlscore-local:{ctx.tag}"
    build_args = [a for k, v in ctx.build_args.items() for a in ("--build-arg", f"{k}={v}")]
    subprocess.run(["docker", "build", "-t", tag, *build_args, str(ctx.path)], check=True)
    env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    container_port = env.get("AZUREML_SERVER_PORT", "5001")
    cmd = ["docker", "run", "--rm", "-p", f"127.0.0.1:{port}:{container_port}", *env_args, tag]
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.Popen(cmd)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    overrides = dict(kv.split("=", 1) for kv in args.set)
    if args.docker:
        _check_docker()
    s, target, prepared = prepare(args.stack, overrides, args.target)
    ctx, env = prepared["context"], prepared["env"]
    print(f"stack {args.stack}, {target}'s environment; model {s.model.name}:{s.model.version} "
          f"from {s.model.path}; entry script {s.model.entry_script}")  # fmt: skip
    print(f"build context {ctx.path} (tag {ctx.tag})", flush=True)
    port = args.port or _free_port()
    with tempfile.TemporaryDirectory(prefix="mlscore-demo-") as work:
        proc = (
            _serve_docker(ctx, env, port)
            if args.docker
            else _serve_layout(ctx, env, port, Path(work))
        )
        base = f"http://127.0.0.1:{port}"
        try:
            print(f"ready after {wait_ready(base, proc):.2f}s: {base}/score", flush=True)
            score(base, _payload(args, s.model.entry_script, base))
            if args.keep:
                print("serving; Ctrl-C to stop", flush=True)
                proc.wait()
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            _stop(proc)


if __name__ == "__main__":
    sys.exit(main())
