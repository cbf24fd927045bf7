"""The local run's environment is the image's: its Python, its packages, its variables, its files.

    from scoring.localenv import image_env
    env = image_env(ctx, root)       # ctx: components.platform.build_context.BuildContext
    subprocess.Popen([str(env.python), "-m", "scoring"], cwd=env.workdir, env=env.with_target(t))

* **Python**: the minor version the image's base stage has (build argument ``PYTHON_VERSION``
  of scoring/Dockerfile), found on this machine (:func:`image_python`: pyenv's
  ``~/.pyenv/versions/3.X.*``, else ``python3.X`` on PATH). The patch level may differ.
* **Packages**: a venv of that Python, never layered over the dev venv, into which the build
  stage's own ``RUN pip install ...`` line runs on the same files it installs in the image (the
  build stage's ``COPY`` sources in the build context: the host's requirements and the user's).
  pip's download cache is allowed (``--no-cache-dir`` dropped): it changes no version chosen.
  The venv is cached under ``~/.cache/mlscore/localenv-<python>-<digest>`` by the digest of the
  interpreter's version, that command and those files' bytes: the second run starts at once.
* **Files**: the final stage's ``COPY`` lines laid out under ``root`` (``image_layout.rebuild``).
* **Variables**: the final stage's ``ENV`` (paths mapped under ``root``), ``PATH`` with the venv
  where the image has ``/opt/venv/bin``, ``LANG`` as the python base images set it, and ``HOME``,
  which Docker sets from the ``USER``'s passwd entry: the ``useradd --home-dir`` of the user the
  image runs as (``/app``), mapped under ``root``. Nothing of this shell's environment leaks
  in (no ``VIRTUAL_ENV``, ``PYTHONPATH``, ``REDIS_*``...).
* **User**: :attr:`LocalEnv.user` is the image's ``USER`` (uid 10001). The process is not
  switched to it: pyenv's interpreters and the cache live under this user's home.

Stable API (for ``scoring/demo.py`` and the tests): :func:`image_python`, :func:`venv`,
:func:`image_env`, :class:`LocalEnv`.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE = Path.home() / ".cache" / "mlscore"
# local environments kept (the most recently used): one run of the test suite uses six (the
# sample, the own models, the corpus's on 3.10 and 3.11), a developer's demos more; at 6 a run
# that also built a new one evicted another and rebuilt it cold (60-100 s) the next time
KEEP = 12
IMAGE_VENV = "/opt/venv"  # where scoring/Dockerfile's build stage makes its venv
DOCKER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The official python images set LANG (https://github.com/docker-library/python, Dockerfile
# template: "ENV LANG C.UTF-8").
BASE_ENV = {"LANG": "C.UTF-8"}


@dataclass(frozen=True)
class LocalEnv:
    python: Path  # the venv's interpreter (the image's /opt/venv/bin/python)
    env: dict[str, str]  # the image's environment, paths under the layout's root
    home: Path  # HOME of the image's user, under root
    workdir: Path  # the image's WORKDIR, under root
    user: str = ""  # the image's USER (not switched to: see the module docstring)
    layout: Any = None  # components.platform.image_layout.ImageLayout

    def with_target(self, target_env: Mapping[str, str]) -> dict[str, str]:
        """The image's environment with a target's settings on top (its paths mapped)."""
        return {**self.env, **(self.layout.with_env(target_env) if self.layout else target_env)}


def image_python(version: str) -> Path:
    """An interpreter of Python ``version`` (``3.10``) on this machine."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    found = [
        Path(p)
        for root in roots
        if root
        for p in glob.glob(f"{root}/versions/{version}.*/bin/python{version}")
        if re.fullmatch(rf"{re.escape(version)}\.\d+", Path(p).parent.parent.name)
    ]
    found.sort(key=lambda p: int(p.parent.parent.name.rsplit(".", 1)[1]), reverse=True)
    on_path = shutil.which(f"python{version}")
    for python in [*found, *([Path(on_path)] if on_path else [])]:
        if _minor(python) == version:
            return python
    raise SystemExit(
        f"the image runs Python {version} and this machine has none (looked in pyenv's "
        f"versions and for python{version} on PATH): install it, e.g. pyenv install {version}"
    )


def _minor(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def _install_step(ctx: Any) -> tuple[str, list[Path]]:
    """The build stage's pip command with its files mapped into the build context."""
    from components.platform.image_layout import stages

    stage = next(
        (s for s in stages(ctx.dockerfile.read_text(), ctx.build_args) if s.name == "build"),
        None,
    )
    if stage is None:
        raise SystemExit(f"{ctx.dockerfile}: no build stage (only scoring/Dockerfile has one)")
    (command,) = [r for r in stage.runs if "pip install" in r]
    files: list[Path] = []
    for sources, dest in stage.copies:
        (source,) = sources
        command = command.replace(dest, shlex.quote(str(ctx.path / source)))
        files.append(ctx.path / source)
    return re.sub(r"\s*--no-cache-dir", "", command).strip(), files


def venv(ctx: Any, cache: Path = CACHE) -> Path:
    """The python of a venv of the image's Python with what the image's build stage installs,
    built once per digest of its inputs."""
    version = ctx.build_args.get("PYTHON_VERSION", "3.11")
    base = image_python(version)
    command, files = _install_step(ctx)
    digest = hashlib.sha256(
        b"\0".join(
            [_full_version(base).encode(), command.replace(str(ctx.path), "").encode()]
            + [f.read_bytes() for f in files]
        )
    ).hexdigest()[:16]
    root = cache / f"localenv-{version}-{digest}"
    python = root / "bin" / "python"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(cache / f".localenv-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per digest (parallel tests, two demos)
        if not (root / ".installed").is_file():
            _build(base, root, command)
        (root / ".installed").write_text(command + "\n")  # its time: last used
    _prune(cache)
    return python


def _full_version(python: Path) -> str:
    done = subprocess.run([str(python), "-VV"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _build(base: Path, root: Path, command: str) -> None:
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run([str(base), "-m", "venv", str(root)], check=True)
    env = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "HOME", "SSL_"))}
    env |= {"PATH": f"{root / 'bin'}:{DOCKER_PATH}", "VIRTUAL_ENV": str(root)}
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    print(f"building the image's environment in {root}: {command}", file=sys.stderr, flush=True)
    # pip's output goes to stderr: a caller's stdout (the demo's answers) stays its own
    done = subprocess.run(["/bin/sh", "-c", command], env=env, stdout=2)
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise SystemExit(
            f"the image's install step failed here as it would in docker build: {command}"
        )


def _prune(cache: Path) -> None:
    built = sorted(
        (p for p in cache.glob("localenv-*") if (p / ".installed").is_file()),
        key=lambda p: (p / ".installed").stat().st_mtime,
        reverse=True,
    )
    for old in built[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def _image_user(ctx: Any) -> tuple[str, str]:
    """The final stage's USER and that user's home (useradd --home-dir)."""
    from components.platform.image_layout import parse

    final = parse(ctx.dockerfile.read_text(), ctx.build_args)
    home = "/root"
    for run in final.runs:
        words = shlex.split(run.replace("&&", " && "))
        if "useradd" in words and "--home-dir" in words:
            uid = words[words.index("--uid") + 1] if "--uid" in words else ""
            if final.user in (uid, words[-1]):
                home = words[words.index("--home-dir") + 1]
    return final.user, home


def image_env(ctx: Any, root: Path, cache: Path = CACHE) -> LocalEnv:
    """The image of build context ``ctx`` on this machine: its file layout under ``root``,
    its venv, its environment."""
    from components.platform.image_layout import rebuild

    python = venv(ctx, cache)
    layout = rebuild(ctx, root)
    user, home = _image_user(ctx)
    env = dict(BASE_ENV) | layout.env
    env["PATH"] = f"{python.parent}:{DOCKER_PATH}"
    env["HOME"] = str(layout.local(home))
    return LocalEnv(python, env, layout.local(home), layout.workdir, user, layout)
