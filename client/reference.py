"""The local run of the same build: ``python -m scoring`` with the stack's entry script and model.

The images carry the entry script (``mlscore:entryScript``) and the model (``mlscore:modelPath``)
of the stack's config; the smoke test scores the same payload here, on this machine, and compares
the deployed answers with this one. The config is read as the Pulumi CLI assembles it: the
defaults of ``Pulumi.yaml``, then ``Pulumi.<stack>.yaml``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from client.errors import ClientError

PROJECT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Build:
    entry_script: Path
    model_dir: Path


def stack_build(stack: str | None, root: Path = PROJECT) -> Build:
    """The entry script and model a stack's images are built from."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    name = project["name"]
    values = {k: v.get("default") for k, v in (project.get("config") or {}).items()}
    stack_file = root / f"Pulumi.{(stack or '').split('/')[-1]}.yaml"
    if stack and stack_file.is_file():
        values |= (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}

    def path(key: str) -> Path:
        value = Path(str(values.get(f"{name}:{key}") or ""))
        return value if value.is_absolute() else root / value

    build = Build(path("entryScript"), path("modelPath"))
    if not build.entry_script.is_file():
        raise ClientError(f"entry script {build.entry_script} (mlscore:entryScript) not found")
    if not build.model_dir.exists():
        raise ClientError(
            f"model {build.model_dir} (mlscore:modelPath) not found; for the sample model run "
            "`python -m scoring.sample_model.train --out aml/model`"
        )
    return build


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_host(build: Build, timeout_s: float = READY_TIMEOUT_S) -> Iterator[str]:
    """Serve ``build`` on 127.0.0.1 (no auth) until the block ends; yields the base URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SCORING_AUTH"))}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT), env.get("PYTHONPATH", "")])
    model_dir = build.model_dir if build.model_dir.is_dir() else build.model_dir.parent
    cmd = [
        sys.executable, "-m", "scoring",
        "--entry_script", str(build.entry_script),
        "--model_dir", str(model_dir),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=PROJECT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, proc, log, timeout_s)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: object, timeout_s: float) -> None:
    started = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            tail = log.read().decode(errors="replace")[-800:]  # type: ignore[attr-defined]
            raise ClientError(f"the local scoring host exited with {proc.returncode}: {tail}")
        try:
            answer = requests.get(f"{url}/", timeout=2)
            if answer.status_code == 200:
                return
            last = f"GET / answered {answer.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise ClientError(
        f"gave up waiting for the local scoring host at {url} to answer GET / after "
        f"{timeout_s:.0f} s; last answer: {last}"
    )
