"""The local run of the same build: the stack's own build context served on this machine.

The smoke test compares every deployed answer with the answer of this run. It is the build
``pulumi up`` pushes for the stack: the config as the Pulumi CLI assembles it (``Pulumi.yaml``'s
defaults, ``Pulumi.<stack>.yaml`` or ``--stack-file``, ``--set`` overrides), checked like the
program checks it, and the same build context (``components/platform/build_context.py``: the
user's entry script folder, model and dependencies), laid out as the Dockerfile lays out the
image and started with the image's environment and Python, the user's dependencies installed by
the Dockerfile's own install step (:func:`image_environment`, ``scoring/localenv.py``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from client.errors import ClientError

PROJECT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Build:
    """What a stack's images are built from."""

    stack: str
    context: Any  # components.platform.build_context.BuildContext
    model_name: str
    model_version: str
    model_source: str  # as the config names it
    entry_script: str
    dependencies: str

    @property
    def model(self) -> str:
        return f"{self.model_name}:{self.model_version}"

    def describe(self) -> str:
        return (
            f"model {self.model} ({self.model_source}), entry script {self.entry_script}, "
            f"dependencies {self.dependencies or 'none'}; stack {self.stack}'s build context "
            f"{self.context.digest[:12]}"
        )


def stack_name(stack: str) -> str:
    """``org/mlscore/dev`` (what ``pulumi --stack`` takes) names the stack file of ``dev``."""
    return stack.rstrip("/").split("/")[-1]


def stack_build(
    stack: str,
    overrides: Mapping[str, str] | None = None,
    stack_file: Path | None = None,
) -> Build:
    """The build context of ``stack``'s images, assembled the way the program assembles it."""
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    from components.platform.build_context import assemble, shown
    from components.settings import SettingsError, load
    from preview import engine

    name = stack_name(stack)
    try:
        config, _ = engine.stack_config(name, overrides, stack_file=stack_file)
        s = load(lambda k: config.get(f"mlscore:{k}"), project="mlscore", stack=name)
    except (engine.StackConfigError, SettingsError) as exc:
        raise ClientError(f"the build of stack {name}: {exc}") from None
    m = s.model
    return Build(
        stack=name,
        context=assemble(m),
        model_name=m.name,
        model_version=m.version,
        model_source=shown(m.path),
        entry_script=shown(m.entry_script),
        dependencies=shown(m.dependencies_file),
    )


def check_deployed_model(build: Build, outputs: Mapping[str, Any]) -> None:
    """The stack outputs name the registered model (``model``): it must be the build's."""
    deployed = outputs.get("model")
    if not isinstance(deployed, Mapping) or "name" not in deployed:
        return
    found = f"{deployed.get('name')}:{deployed.get('version')}"
    if found != build.model:
        raise ClientError(
            f"the outputs were deployed with model {found}, the build of stack {build.stack} "
            f"has {build.model}: pass the stack they came from (--stack, --stack-file, --set)"
        )


def image_environment(
    context: Any, root: Path, target_env: Mapping[str, str] | None = None
) -> tuple[Path, dict[str, str], Path]:
    """The image of ``context`` on this machine (``scoring/localenv.py``: the image's Python with
    the packages its Dockerfile installs, its variables, its files laid out under ``root``):
    (its interpreter, its environment with ``target_env`` on top, its working directory). The
    one place the local run's environment is made (the smoke's local run, the corpus's batch
    runs)."""
    from scoring.localenv import image_env

    try:
        with _stdout_to_stderr():  # a first build's pip output is not the smoke's table
            local = image_env(context, root)
    except SystemExit as exc:  # the install step failed, as it would in docker build
        raise ClientError(str(exc)) from None
    return local.python, local.with_target(target_env or {}), local.workdir


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Whatever this process and its children write to stdout goes to stderr meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_host(build: Build, timeout_s: float = READY_TIMEOUT_S) -> Iterator[str]:
    """Serve ``build`` on 127.0.0.1 (no auth, nothing sent to Azure) until the block ends;
    yields the base URL."""
    port = _free_port()
    with (
        tempfile.TemporaryDirectory(prefix="mlscore-reference-") as work,
        tempfile.TemporaryFile() as log,
    ):
        python, env, workdir = image_environment(build.context, Path(work) / "image")
        env |= {"AZUREML_SERVER_PORT": str(port), "SCORING_HOST": "127.0.0.1"}
        proc = subprocess.Popen(
            [str(python), "-m", "scoring"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
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


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: IO[bytes], timeout_s: float) -> None:
    started = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-800:]
            raise ClientError(f"the local scoring host exited with {proc.returncode}: {tail}")
        try:  # readiness: init() has completed
            answer = requests.get(f"{url}/ready", timeout=2)
            if answer.status_code == 200:
                return
            last = f"GET /ready answered {answer.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise ClientError(
        f"gave up waiting for the local scoring host at {url} to answer GET /ready after "
        f"{timeout_s:.0f} s; last answer: {last}"
    )
