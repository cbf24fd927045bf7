"""The user's environment file (``mlscore:dependenciesFile``): its requirements, line by line, its
Python, and whether the scoring host can live with them, checked before any resource.

* :func:`read` parses a pip requirements file or a conda environment file (the seeds'
  ``myenv.yml``) into :class:`Line` s that remember the file and line they came from: pip ``==``,
  ``~=``, ``<``, ``>=`` ... as written; conda ``name=1.2`` (fuzzy: ``==1.2.*``), ``name==1.2``,
  ``name 1.2.*`` and build strings (``numpy==1.26.4=py311h_0``: the build is conda's, the version
  is pip's); conda packages without a pip equivalent are refused, ``python=`` is the image's
  Python (:func:`python_spec`).
* :func:`host_conflicts` is the check that needs no network: a user's specifier whose
  intersection with the host's own (``scoring/requirements.txt``) is empty.
* :func:`resolve` resolves the user's requirements together with the host's, for the image's
  Python and platform, as the image build will (one resolution of both files), with uv
  (https://docs.astral.sh/uv/reference/cli/#uv-pip-compile): it resolves for another Python
  (``--python-version``) and platform (``--python-platform``) without that interpreter and reads
  only the wheels' metadata, in a second or two. ``pip install --dry-run --python-version``
  needs ``--only-binary=:all:``, which refuses the sdists the image build would install. A
  conflict or a package missing from the index is reported by the user's file and line; an
  unreachable index is a skipped check, said so. A resolution that succeeded is cached by the
  digest of its inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from components import PROJECT_ROOT
from components.config.conda import (
    CONDA_ONLY,
    CONDA_TO_PIP,
    IGNORED_CONDA,
    NUMPY2_FROM,
    conda_version,
    split_conda_spec,
)

HOST_REQUIREMENTS = PROJECT_ROOT / "scoring" / "requirements.txt"
# Azure ML's batch runtime: in the image's one resolution when the stack has a batch deployment
# (mlscore:batchEnabled; scoring/Dockerfile's BATCH_RUNTIME), so resolved with it here too.
BATCH_REQUIREMENTS = PROJECT_ROOT / "scoring" / "requirements-batch.txt"
# The image's platform: linux/amd64 (image.py builds for it) on Debian 12 "bookworm" (the
# python:*-slim-bookworm bases), whose C library is glibc 2.36:
# https://packages.debian.org/bookworm/libc6 ("2.36-9+deb12u..."). A wheel tagged up to
# manylinux_2_36 installs there.
PLATFORM = "x86_64-manylinux_2_36"
CACHE = Path.home() / ".cache" / "mlscore" / "resolved"
RESOLVE_TIMEOUT_S = 120

PIP_FIX = "write one requirement per line, e.g. scikit-learn==1.9.1"


@dataclass(frozen=True)
class Line:
    """One requirement of the user's file: the pip requirement, and where it was written."""

    requirement: str  # as pip reads it, e.g. "scikit-learn==1.2.2.*"
    file: Path
    line: int  # 1-based
    written: str  # as in the file, e.g. "scikit-learn=1.2.2"

    @property
    def where(self) -> str:
        return f"{self.file.name} line {self.line} ({self.written!r})"

    @property
    def name(self) -> str:
        return canonicalize_name(Requirement(self.requirement).name)


@dataclass(frozen=True)
class Problem:
    problem: str
    fix: str


@dataclass(frozen=True)
class UserEnv:
    lines: tuple[Line, ...] = ()
    python: tuple[str, int] | None = None  # a conda file's python spec and its line
    problems: tuple[Problem, ...] = ()
    file: Path | None = None


# --- reading the file ---------------------------------------------------------------------------
def read(path: Path) -> UserEnv:
    """The requirements of a pip or conda file, each with its line; problems, never an exception."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return UserEnv(problems=(Problem(f"unreadable ({e})", "point it at a UTF-8 text file"),))
    if path.suffix in (".yml", ".yaml"):
        raw, python, problems = _conda_entries(path, text)
    else:
        raw, python, problems = _pip_entries(text), None, []
    lines: list[Line] = []
    for number, written, requirement in raw:
        if written.startswith("-"):
            problems.append(
                Problem(
                    f"{path.name} line {number}: pip option {written!r}: only requirements are "
                    "installed into the image",
                    "list the packages themselves (no -r, -e, -c or index options)",
                )
            )
            continue
        try:
            lines.append(Line(str(Requirement(requirement)), path, number, written))
        except InvalidRequirement as e:
            where = f"{path.name} line {number}"
            problems.append(Problem(f"{where}: {written!r} is not a requirement ({e})", PIP_FIX))
    return UserEnv(tuple(lines), python, tuple(problems), path)


Entry = tuple[int, str, str]  # line, as written, as a pip requirement


def _pip_entries(text: str) -> list[Entry]:
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            found.append((number, line, line))
    return found


def _conda_entries(path: Path, text: str) -> tuple[list[Entry], tuple[str, int] | None, list]:
    """A conda file's pip section and its conda packages that have a pip equivalent."""
    problems: list[Problem] = []
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        return [], None, [Problem(f"not valid YAML ({e})", "fix the conda file's syntax")]
    deps = _mapping_value(root, "dependencies")
    if not isinstance(deps, yaml.SequenceNode):
        fix = "list the packages under dependencies: (and pip packages under - pip:)"
        return [], None, [Problem("a conda environment file needs a 'dependencies:' list", fix)]
    entries: list[Entry] = []
    python = None
    for node in deps.value:
        pip = _mapping_value(node, "pip") if isinstance(node, yaml.MappingNode) else None
        if isinstance(pip, yaml.SequenceNode):
            entries += [
                (n.start_mark.line + 1, str(n.value), str(n.value))
                for n in pip.value
                if isinstance(n, yaml.ScalarNode) and not str(n.value).startswith("-")
            ]
        elif isinstance(node, yaml.ScalarNode):
            number, spec = node.start_mark.line + 1, str(node.value)
            name, version = split_conda_spec(spec.split("::")[-1].strip())
            if name.lower() == "python":
                python = (version, number)
                continue
            converted = _conda_to_pip(path, number, spec, name, version, problems)
            entries += [(number, spec, converted)] if converted else []
            if converted and _numpy1_build(converted) and "numpy<2" not in (e[2] for e in entries):
                entries.append((number, spec, "numpy<2"))
        else:
            where = f"{path.name} line {node.start_mark.line + 1}"
            problems.append(Problem(f"{where}: unknown entry", "use conda's format"))
    return entries, python, problems


def _numpy1_build(requirement: str) -> bool:
    """Whether every version ``requirement`` admits was built against numpy 1.x."""
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return False
    first = NUMPY2_FROM.get(canonicalize_name(req.name))
    return first is not None and not intersects(req.specifier, SpecifierSet(f">={first}"))


def _mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if getattr(k, "value", None) == key), None)


def _conda_to_pip(
    path: Path, number: int, spec: str, name: str, version: str, problems: list[Problem]
) -> str | None:
    key = name.lower()
    if key in IGNORED_CONDA:
        return None
    if key in CONDA_ONLY or key.startswith("r-"):
        problems.append(
            Problem(
                f"{path.name} line {number}: conda package {name!r} has no pip equivalent (the "
                "image installs with pip)",
                f"remove {name!r}, or replace it with its PyPI package under '- pip:'",
            )
        )
        return None
    return CONDA_TO_PIP.get(key, name) + conda_version(version)


# --- the check without network: specifier intersections ------------------------------------------
def batch_files(batch: bool) -> tuple[Path, ...]:
    """The host-side requirements the image installs beside scoring/requirements.txt: the batch
    runtime's when the stack has a batch deployment (the Dockerfile's BATCH_RUNTIME=true)."""
    return (BATCH_REQUIREMENTS,) if batch else ()


def host_requirements(*paths: Path) -> dict[str, Requirement]:
    """The scoring host's own requirements (``paths``: scoring/requirements.txt unless given), by
    canonical name; a name in several files keeps every file's specifier."""
    found: dict[str, Requirement] = {}
    for path in paths or (HOST_REQUIREMENTS,):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                req = Requirement(line)
                key = canonicalize_name(req.name)
                if key in found:
                    req.specifier &= found[key].specifier
                found[key] = req
    return found


def host_conflicts(lines: tuple[Line, ...], host: dict[str, Requirement]) -> list[Problem]:
    """Each user requirement no version of which the host's own range admits."""
    problems = []
    for line in lines:
        mine = host.get(line.name)
        if mine is None or intersects(Requirement(line.requirement).specifier, mine.specifier):
            continue
        problems.append(
            Problem(
                f"{line.where} asks for {line.requirement}; the scoring host needs {mine} "
                "(scoring/requirements*.txt): no version satisfies both",
                f"allow a version of {mine.name} in {mine.specifier} on that line",
            )
        )
    return problems


def intersects(a: SpecifierSet, b: SpecifierSet) -> bool:
    """Whether some version satisfies both. Empty intersections of version intervals show at
    their ends: every version the specifiers name, and the versions just above and below each,
    are tried (``===`` arbitrary strings are taken as compatible)."""
    if any(s.operator == "===" for s in (*a, *b)):
        return True
    return any(a.contains(v, prereleases=True) and b.contains(v, prereleases=True)
               for v in _candidates(a, b))  # fmt: skip


def _candidates(*specs: SpecifierSet) -> set[Version]:
    found = {Version("0"), Version("99999")}
    for spec in specs:
        for s in spec:
            with contextlib.suppress(InvalidVersion):
                v = Version(s.version.removesuffix(".*"))
                found |= {v, *_around(v.release)}
                if s.version.endswith(".*") or s.operator == "~=":  # the next prefix is a bound
                    prefix = v.release[:-1] if s.operator == "~=" else v.release
                    found |= set(_around((*prefix[:-1], prefix[-1] + 1)))
    return found


def _around(release: tuple[int, ...]) -> list[Version]:
    """The versions just above and just below ``release``."""
    found = [Version(".".join(map(str, (*release, 0, 0, 1))))]
    for i in range(len(release) - 1, -1, -1):
        if release[i] > 0:
            below = (*release[:i], release[i] - 1, 99999, 99999)
            found.append(Version(".".join(map(str, below))))
            break
    return found


# --- the check with the index: one resolution, as the image build does ---------------------------
@dataclass(frozen=True)
class Resolution:
    status: str  # "ok", "failed" or "skipped"
    detail: str = ""  # uv's explanation (failed) or why the check did not run (skipped)
    culprits: tuple[Line, ...] = ()  # the user's lines the explanation names
    pins: str = ""  # the resolved versions (ok)


def uv_binary() -> str:
    from uv import find_uv_bin  # the uv wheel (pyproject.toml), a self-contained binary

    return find_uv_bin()


def resolve(
    lines: tuple[Line, ...],
    python: str,
    host: Path = HOST_REQUIREMENTS,
    cache: Path | None = None,
    index_url: str | None = None,
    extra: tuple[Path, ...] = (),
) -> Resolution:
    """Resolve the host's (``host`` and the ``extra`` host-side files: the batch runtime's) and
    the user's requirements together for ``python`` on the image's platform. ``index_url``
    None: uv's default (PyPI, or UV_INDEX_URL), as pip in the image.

    Wheels first (``--no-build``): the slim base has no C compiler, so a compiled package
    without a wheel for this Python fails the image build. A release with no usable wheel is
    looked up on PyPI: if its other files are platform wheels it is compiled, and refused; if
    pure Python, the resolution runs again allowing its source, as pip in the image would."""
    user = "".join(f"{line.requirement}\n" for line in lines)
    hosts = "".join(f.read_text() for f in (host, *extra))
    key = hashlib.sha256(
        "\0".join(["v2", hosts, user, python, PLATFORM, index_url or ""]).encode()
    ).hexdigest()[:24]
    cached = (cache or CACHE) / f"{key}.txt"
    if cached.is_file():
        return Resolution("ok", pins=cached.read_text())
    with tempfile.TemporaryDirectory(prefix="mlscore-resolve-") as tmp:
        user_file = Path(tmp, "user-requirements.txt")
        user_file.write_text(user)
        cmd = [uv_binary(), "pip", "compile", str(host), *map(str, extra), str(user_file),
               "--python-version", python, "--python-platform", PLATFORM, "--no-header",
               "--no-annotate", "--no-config", "--quiet", "--color", "never"]  # fmt: skip
        cmd += ["--index-url", index_url] if index_url else []
        done = _compile(cmd, lines, python, index_url)
    if isinstance(done, Resolution):
        return done
    if done.returncode == 0:
        _store(cached, done.stdout)
        return Resolution("ok", pins=done.stdout)
    return _failure(done.stderr, lines)


def _compile(
    cmd: list[str], lines: tuple[Line, ...], python: str, index_url: str | None
) -> subprocess.CompletedProcess[str] | Resolution:
    """Wheels only first; then, if what lacks a wheel is pure Python, with its source too. A
    resolution from uv's cache alone (``--offline``) that succeeds is a valid one and spares the
    index's round trips; any other outcome is decided online."""
    offline = _uv([*cmd, "--no-build", "--offline"])
    if not isinstance(offline, Resolution) and offline.returncode == 0:
        return offline
    done = _uv([*cmd, "--no-build"])
    no_wheel = (
        [] if isinstance(done, Resolution) else list(dict.fromkeys(_NO_WHEEL.findall(done.stderr)))
    )
    if not no_wheel:
        return done
    compiled = [f"{n}=={v}" for n, v in no_wheel if _compiled(n, v, index_url)]
    if not compiled:
        return _uv(cmd)
    why = (
        f"{', '.join(compiled)} has no wheel for Python {python} on {PLATFORM}, and the image "
        "(a slim base without a C compiler) cannot build it from source"
    )
    named = tuple(ln for ln in lines if any(_mentions(c, ln.name) for c in compiled))
    return Resolution("failed", why, named or _named(why, lines))


_NO_WHEEL = re.compile(r"([A-Za-z0-9][\w.-]*)==([\w.+!-]+) has no usable wheels")


def _uv(cmd: list[str]) -> subprocess.CompletedProcess[str] | Resolution:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S, env=_uv_env()
        )
    except subprocess.TimeoutExpired:
        return Resolution("skipped", f"the index did not answer in {RESOLVE_TIMEOUT_S} s")


def _compiled(name: str, version: str, index_url: str | None) -> bool:
    """Whether release ``name==version`` ships platform wheels (a compiled package), from the
    index's JSON simple API, the one pip and uv read (PEP 691,
    https://peps.python.org/pep-0691/; PyPI serves it at /simple/<name>/ for the
    ``application/vnd.pypi.simple.v1+json`` Accept header); unknown counts as compiled."""
    if index_url:
        return True
    url = f"https://pypi.org/simple/{canonicalize_name(name)}/"
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            files = [f["filename"] for f in json.load(r)["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return True
    return any(_platform_wheel(f, Version(version)) for f in files)


def _platform_wheel(filename: str, version: Version) -> bool:
    """Whether ``filename`` is a wheel of ``version`` for one platform (not ``none-any``)."""
    if not filename.endswith(".whl") or filename.endswith("-none-any.whl"):
        return False
    try:
        return parse_wheel_filename(filename)[1] == version
    except InvalidWheelFilename:
        return False


def _uv_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)  # resolving for the image, not for the venv running this
    # a slow index is not an unreachable one: uv's defaults (30 s, 3 retries) gave up under load
    # and the check said "skipped" (https://docs.astral.sh/uv/reference/environment/)
    env.setdefault("UV_HTTP_TIMEOUT", "90")
    env.setdefault("UV_HTTP_RETRIES", "5")
    return env


_UNREACHABLE = re.compile(
    r"error sending request|dns error|failed to lookup address|connection refused|"
    r"tcp connect error|timed out|network is unreachable|could not connect|"
    r"certificate|client error \(connect\)",
    re.I,
)


def _failure(stderr: str, lines: tuple[Line, ...]) -> Resolution:
    text = " ".join(stderr.split())
    if "No solution found" not in stderr and _UNREACHABLE.search(stderr):
        return Resolution("skipped", f"the package index is not reachable ({text[:300]})")
    return Resolution("failed", text[:900], _named(text, lines))


def _named(text: str, lines: tuple[Line, ...]) -> tuple[Line, ...]:
    return tuple(line for line in lines if _mentions(text, line.name))


def _mentions(text: str, name: str) -> bool:
    pattern = re.escape(name).replace(r"\-", "[-_.]")
    return re.search(rf"(?<![\w.-]){pattern}(?![\w-])", text, re.I) is not None


def _store(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def resolution_problems(res: Resolution, python: str) -> list[Problem]:
    """A failed resolution as problems naming the user's lines."""
    if res.status != "failed":
        return []
    where = "; ".join(line.where for line in res.culprits) or "the dependencies file"
    return [
        Problem(
            f"{where}: the image build (the scoring host's scoring/requirements.txt and these "
            f"requirements in one resolution, Python {python}, {PLATFORM}) would fail: "
            f"{res.detail}",
            "change the named lines to versions that exist for this Python and that the host "
            "can live with (or pick the Python they need with python= / mlscore:pythonVersion)",
        )
    ]
