"""A scoring image's file layout and environment as its Dockerfile builds them, rebuilt in a folder.

No Docker engine needed: the final stage's ``ARG`` (with the build arguments), ``ENV``,
``WORKDIR`` and ``COPY`` lines are applied to the assembled build context, with the image's ``/``
standing at ``root``. What comes from an earlier stage (``COPY --from``: the installed packages)
is the interpreter running the layout. The local run (``python -m scoring.demo``) and the tests
start the host from it with the environment a target gets, so a path the program sets that does
not exist in the image fails here the way it would crash-loop there.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from components.platform.build_context import BuildContext

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_PATH_LISTS = ("PYTHONPATH",)
_NOT_MAPPED = ("PATH",)  # the local interpreter's PATH stays


@dataclass(frozen=True)
class Dockerfile:
    """One stage of a Dockerfile (the last one: what the running container sees)."""

    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[list[str], str]] = field(default_factory=list)  # (context sources, dest)
    workdir: str = "/"
    name: str = ""  # FROM ... AS <name>
    base: str = ""  # FROM <base>, ARGs substituted
    runs: list[str] = field(default_factory=list)  # RUN commands, shell form
    user: str = ""  # USER


def _logical_lines(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return [ln.strip() for ln in "\n".join(lines).replace("\\\n", " ").splitlines() if ln.strip()]


def stages(text: str, build_args: Mapping[str, str]) -> list[Dockerfile]:
    """Every stage: FROM/ARG/ENV/WORKDIR/COPY/RUN/USER with ``${VAR}`` substituted (ARGs
    declared before the first FROM are seen by the FROM lines, as Docker does)."""
    found: list[Dockerfile] = []
    globals_: dict[str, str] = {}
    values = globals_
    for line in _logical_lines(text):
        op, _, rest = line.partition(" ")
        op = op.upper()
        stage = found[-1] if found else None
        if op == "FROM":
            words = _substitute(rest, globals_).split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else ""
            found.append(Dockerfile(name=name, base=words[0]))
            values = {}
        elif op == "ARG":
            key, _, default = rest.strip().partition("=")
            values[key] = build_args.get(key, globals_.get(key, default.strip('"')))
        elif stage is None:
            continue
        elif op == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage.env[key] = values[key] = _substitute(value, values)
        elif op == "WORKDIR":
            found[-1] = replace(stage, workdir=_substitute(rest.strip(), values))
        elif op == "COPY":
            parts = [_substitute(p, values) for p in shlex.split(rest)]
            if not any(p.startswith("--from") for p in parts):
                paths = [p for p in parts if not p.startswith("--")]
                stage.copies.append((paths[:-1], paths[-1]))
        elif op == "RUN":
            stage.runs.append(_substitute(rest.strip(), values))
        elif op == "USER":
            found[-1] = replace(stage, user=_substitute(rest.strip(), values))
    return found


def parse(text: str, build_args: Mapping[str, str]) -> Dockerfile:
    """The last stage: what the running container sees."""
    return stages(text, build_args)[-1]


def _substitute(value: str, values: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), value)


@dataclass(frozen=True)
class ImageLayout:
    root: Path  # stands for the image's /
    env: dict[str, str]  # the image's ENV, its paths under root
    workdir: Path

    def local(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def with_env(self, target_env: Mapping[str, str]) -> dict[str, str]:
        """The image's environment with a target's on top (its paths mapped the same way)."""
        return {**self.env, **{k: self._map(k, v) for k, v in target_env.items()}}

    def _map(self, key: str, value: str) -> str:
        if key in _NOT_MAPPED:
            return value
        if key in _PATH_LISTS:
            return os.pathsep.join(self._map("", p) for p in value.split(":"))
        return str(self.local(value)) if value.startswith("/") else value


def rebuild(context: BuildContext, root: Path) -> ImageLayout:
    """Copy the context into ``root`` the way the Dockerfile's final stage does."""
    stage = parse(context.dockerfile.read_text(), context.build_args)
    layout = ImageLayout(root, {}, root)
    for sources, dest in stage.copies:
        target = layout.local(dest)
        into_dir = dest.endswith("/") or len(sources) > 1
        for src in sources:
            path = context.path / src
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True)
            else:
                out = target / path.name if into_dir else target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, out)
    env = {k: layout._map(k, v) for k, v in stage.env.items() if k not in _NOT_MAPPED}
    workdir = layout.local(stage.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    return ImageLayout(root, env, workdir)
