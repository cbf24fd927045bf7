"""The function app's image and the user's environment: its Python and its requirements, checked
before any resource when the Functions target is on.

The function image (``scoring/functions.Dockerfile``) runs the Python the user's environment
names, as the scoring image does (``PYTHON_VERSION``: ``mlscore:pythonVersion`` or the conda
file's ``python=`` line, ``components/platform/settings.py``), on the Azure Functions host image
of that Python. The function app is a custom container (``linuxFxVersion`` ``DOCKER|<image>``,
``app.py``): its Python is the image's, which sets ``FUNCTIONS_WORKER_RUNTIME_VERSION`` to it
(github.com/Azure/azure-functions-docker, ``host/4/*/python/python3*/python3*.Dockerfile``).

* :func:`check_python`: a Python Azure Functions does not support, or no longer supports at the
  clock's date, is refused naming the key that chose it and ``mlscore:functionsEnabled``; when
  no key chose it (the program's default, 3.11, supported until October 2027) it is a warning:
  there is no value of the user's to refuse, and the stacks that set neither stay valid at
  every date (``make time-travel``).
* :func:`check_requirements`: the user's requirements go through the same pre-deploy pin check
  as the scoring image's (``components/config/user_env.py``), against what the function image
  installs with them (``scoring/requirements-functions.txt``: the host's requirements and the
  Functions libraries), in one resolution for the image's Python.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pulumi
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from components import PROJECT_ROOT
from components.config import user_env
from components.config.reader import Reader

FUNCTIONS_REQUIREMENTS = PROJECT_ROOT / "scoring" / "requirements-functions.txt"

# The Python versions Azure Functions supports and the first day each no longer is. "Supported
# languages in Azure Functions", https://learn.microsoft.com/azure/azure-functions/supported-languages
# (Python: 3.13 GA, expected end of support October 2029; 3.12 October 2028; 3.11 October 2027;
# 3.10 October 2026; the page gives the month, so the month is taken whole). After that date
# "function apps that use retired language versions ... aren't eligible for new features,
# security patches, and performance optimizations" ("Language runtime support policy",
# https://learn.microsoft.com/azure/azure-functions/language-support-policy): refused here.
PYTHON_SUPPORT_ENDS = {
    "3.10": date(2026, 11, 1),
    "3.11": date(2027, 11, 1),
    "3.12": date(2028, 11, 1),
    "3.13": date(2029, 11, 1),
}

Clock = Callable[[], datetime]


class ModelSettings(Protocol):
    """What this check reads of the model's settings (components/platform/settings.py
    ModelSettings; the settings layers never import another section's module)."""

    @property
    def python_version(self) -> str: ...

    @property
    def dependencies_file(self) -> Path | None: ...


def utc_now() -> datetime:
    """The check's clock (looked up at each call: tests pass ``clock=`` or patch it)."""
    return datetime.now(UTC)


def check(r: Reader, enabled: bool, model: ModelSettings, clock: Clock | None = None) -> None:
    """With the Functions target on: its image's Python and requirements (module docstring)."""
    if not enabled or any(k in ("pythonVersion", "dependenciesFile") for p in r.problems
                          for k in p.keys):  # fmt: skip
        return  # off, or the user's environment is already refused for every image
    check_python(r, model, (clock or utc_now)().date())
    check_requirements(r, model)


def python_key(r: Reader, model: ModelSettings) -> str | None:
    """The key that chose the image's Python: mlscore:pythonVersion, else the conda file's python=
    line (mlscore:dependenciesFile); None: neither, the program's default."""
    if r.str("pythonVersion").strip():
        return "pythonVersion"
    deps = model.dependencies_file
    return "dependenciesFile" if deps and user_env.read(deps).python is not None else None


def supported(today: date) -> list[str]:
    return [v for v, ends in PYTHON_SUPPORT_ENDS.items() if today < ends]


def check_python(r: Reader, model: ModelSettings, today: date) -> None:
    python = model.python_version
    if python in supported(today):
        return
    ends = PYTHON_SUPPORT_ENDS.get(python)
    why = (
        f"Azure Functions supported Python {python} until {ends - timedelta(days=1):%B %Y} "
        "(no security patches since)"
        if ends is not None
        else f"Azure Functions does not run Python {python}"
    )
    key = python_key(r, model)
    today_ok = ", ".join(supported(today)) or "none of the images' Pythons"
    problem = (
        f"the function app's image runs the model's Python, and {why}; Azure Functions "
        f"supports {today_ok} today "
        "(learn.microsoft.com/azure/azure-functions/supported-languages)"
    )
    fix = (
        "pick one of those with mlscore:pythonVersion or the conda file's python= line (a "
        "model pickled on another Python may need retraining), or set mlscore:functionsEnabled "
        "to false"
    )
    if key is None:  # no value of the user's to refuse: the program's default (its owner moves it)
        pulumi.log.warn(
            f"mlscore:pythonVersion unset, the default Python {python}: {problem}; {fix}"
        )
        return
    shown = python if key == "pythonVersion" else f"python {python} ({model.dependencies_file})"
    r.fail((key, "functionsEnabled"), shown, problem, fix)


# --- the requirements --------------------------------------------------------------------------
def function_host_requirements() -> str:
    """What the function image installs besides the user's file, as one requirements text:
    scoring/requirements-functions.txt with its ``-r requirements.txt`` inlined."""
    lines = []
    for line in FUNCTIONS_REQUIREMENTS.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] == ["-r"]:
            lines += (FUNCTIONS_REQUIREMENTS.parent / words[1]).read_text().splitlines()
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _own(text: str) -> dict[str, Requirement]:
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            found[canonicalize_name(req.name)] = req
    return found


def conflicts(lines: tuple[user_env.Line, ...], host: dict[str, Requirement]) -> list[str]:
    """The user's lines no version of which the function image's own range admits."""
    return [
        f"{line.where} asks for {line.requirement}; the function image needs {mine} "
        "(scoring/requirements-functions.txt): no version satisfies both"
        for line in lines
        if (mine := host.get(line.name)) is not None
        and not user_env.intersects(Requirement(line.requirement).specifier, mine.specifier)
    ]


def check_requirements(r: Reader, model: ModelSettings) -> None:
    """Refuse what the function image's build would: a conflict with its own requirements (no
    network needed), else a failed resolution of both for the image's Python."""
    if model.dependencies_file is None:
        return
    env = user_env.read(model.dependencies_file)
    host_text = function_host_requirements()
    problems = conflicts(env.lines, _own(host_text))
    fix = "allow versions the function image can install (or set mlscore:functionsEnabled to false)"
    if not problems and env.lines:
        with tempfile.TemporaryDirectory(prefix="mlscore-functions-") as tmp:
            host = Path(tmp, "requirements-functions.txt")
            host.write_text(host_text)
            res = user_env.resolve(env.lines, model.python_version, host=host)
        problems += [_failed(res, model.python_version)] if res.status == "failed" else []
        if res.status == "skipped":
            pulumi.log.warn(
                f"mlscore:dependenciesFile: the function image's requirements were not "
                f"resolved before deploy ({res.detail}); its build resolves them"
            )
    for problem in problems:
        r.fail(("dependenciesFile", "functionsEnabled"), str(model.dependencies_file), problem, fix)


def _failed(res: user_env.Resolution, python: str) -> str:
    where = "; ".join(line.where for line in res.culprits) or "the dependencies file"
    return (
        f"{where}: the function image's build (scoring/requirements-functions.txt and these "
        f"requirements in one resolution, Python {python}) would fail: {res.detail}"
    )
