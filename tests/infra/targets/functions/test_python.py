"""The function app follows the user's Python (issue 28): its image is built on the Azure Functions
host image of the model's Python, a Python Azure Functions does not (or no longer) support is
refused before any resource naming the key that chose it and mlscore:functionsEnabled, and the
user's requirements go through the pre-deploy pin check against what the function image installs
(components/targets/functions/settings/python.py, with the citations)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from components import PROJECT_ROOT
from components.config import user_env
from components.config.reader import Reader
from components.platform.settings import PYTHON_VERSIONS, ModelSettings, read_model
from components.targets.functions.settings import python as environment
from preview import engine

DOCKERFILE = PROJECT_ROOT / "scoring" / "functions.Dockerfile"
STAGE = re.compile(
    r"^FROM mcr\.microsoft\.com/azure-functions/python:4-python(3\.\d+)(@sha256:[0-9a-f]{64})?"
    r" AS python-(3\.\d+)$",
    re.M,
)


def _stages() -> dict[str, str]:
    """Each Python's base image line of functions.Dockerfile."""
    found = {m.group(3): m.group(0) for m in STAGE.finditer(DOCKERFILE.read_text())}
    assert all(m.group(1) == m.group(3) for m in STAGE.finditer(DOCKERFILE.read_text()))
    return found


def test_one_functions_base_per_python_the_settings_accept_and_azure_functions_supports() -> None:
    assert list(_stages()) == list(PYTHON_VERSIONS) == list(environment.PYTHON_SUPPORT_ENDS)
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_VERSION=3\.11$", text, re.M)
    assert re.findall(r"^FROM python-\$\{PYTHON_VERSION\}$", text, re.M) == [
        "FROM python-${PYTHON_VERSION}"
    ]


@pytest.mark.parametrize("python", PYTHON_VERSIONS)
def test_the_dockerfile_each_python_builds_is_hadolint_clean(python: str, tmp_path: Path) -> None:
    """What BuildKit builds for PYTHON_VERSION=<python>: that stage's base, then the rest."""
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    text = DOCKERFILE.read_text()
    base = _stages()[python].rsplit(" AS ", 1)[0]
    text = STAGE.sub("", text).replace("FROM python-${PYTHON_VERSION}", base)
    (tmp_path / "Dockerfile").write_text(text.replace("# hadolint ignore=DL3006\n", ""))
    done = subprocess.run([exe, str(tmp_path / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_function_image_is_built_for_the_models_python(dev) -> None:
    """On the graph: both images get the model's Python (dev: the default, 3.11)."""
    images = {r.name: r for r in dev.of_type("docker:index/image:Image")}
    args = {
        name: images[name].inputs["build"]["args"] for name in ("scoring-image", "functions-image")
    }
    assert args["functions-image"]["PYTHON_VERSION"] == args["scoring-image"]["PYTHON_VERSION"]
    assert args["functions-image"]["PYTHON_VERSION"] == "3.11"
    built = Path(images["functions-image"].inputs["build"]["dockerfile"])
    assert built.read_bytes() == DOCKERFILE.read_bytes()


def _load(monkeypatch: pytest.MonkeyPatch, today: str, **config: str) -> list[str]:
    """The problems of the dev stack with ``config`` on top, at ``today``'s date."""
    from components.settings import SettingsError, load

    now = datetime.fromisoformat(today).replace(tzinfo=UTC)
    monkeypatch.setattr(environment, "utc_now", lambda: now)
    base, _ = engine.stack_config("dev")
    values = {k.split(":", 1)[1]: v for k, v in base.items() if k.startswith("mlscore:")}
    try:
        load((values | config).get, project="mlscore", stack="dev")
    except SettingsError as e:
        return [str(p) for p in e.problems]
    return []


def test_a_python_past_its_azure_functions_support_is_refused_with_functions_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on = {"functionsEnabled": "true", "dependenciesFile": "", "batchEnabled": "false"}
    assert _load(monkeypatch, "2026-10-31", pythonVersion="3.10", **on) == []
    (problem,) = _load(monkeypatch, "2026-11-01", pythonVersion="3.10", **on)
    assert problem.startswith("mlscore:pythonVersion, mlscore:functionsEnabled = '3.10': ")
    assert "supported Python 3.10 until October 2026 (no security patches since)" in problem
    assert "supports 3.11, 3.12, 3.13 today" in problem and "fix: pick one of those" in problem
    off = {"functionsEnabled": "false", "dependenciesFile": "", "batchEnabled": "false"}
    assert _load(monkeypatch, "2026-11-01", pythonVersion="3.10", **off) == []
    conda = tmp_path / "environment.yml"
    conda.write_text("dependencies:\n  - python=3.10\n")
    (problem,) = _load(monkeypatch, "2027-01-01", dependenciesFile=str(conda), **{
        "functionsEnabled": "true", "pythonVersion": "", "batchEnabled": "false"})  # fmt: skip
    assert problem.startswith("mlscore:dependenciesFile, mlscore:functionsEnabled = ")
    assert "python 3.10" in problem and "environment.yml" in problem
    (problem,) = _load(monkeypatch, "2029-11-01", pythonVersion="3.13", **on)
    assert "supports none of the images' Pythons today" in problem


def test_the_programs_default_python_past_its_functions_support_is_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Neither key set (the dev and prod stacks): no value of the user's to refuse, so the
    stacks stay valid at every date (make time-travel); the warning says what to do."""
    warned: list[str] = []
    monkeypatch.setattr(environment.pulumi.log, "warn", warned.append)
    config = {"functionsEnabled": "true", "dependenciesFile": "", "pythonVersion": ""}
    config["batchEnabled"] = "false"  # its own Python rule aside
    assert _load(monkeypatch, "2027-11-01", **config) == []
    (warning,) = warned
    assert warning.startswith("mlscore:pythonVersion unset, the default Python 3.11: ")
    assert "until October 2027" in warning and "3.12, 3.13 today" in warning
    assert _load(monkeypatch, "2027-10-31", **config) == [] and len(warned) == 1


def _reader() -> tuple[Reader, ModelSettings]:
    base, _ = engine.stack_config("dev")
    values = {k.split(":", 1)[1]: v for k, v in base.items() if k.startswith("mlscore:")}
    r = Reader(values.get)
    return r, read_model(r)


def test_a_pin_the_function_image_cannot_install_is_refused_by_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No network: a pin outside scoring/requirements-functions.txt's range."""
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("joblib>=1.4\nazure-storage-blob==12.19.0\n")
    r, model = _reader()
    resolved = []
    monkeypatch.setattr(user_env, "resolve", lambda *a, **k: resolved.append(a))
    environment.check_requirements(r, ModelSettings("m", "1", dependencies_file=reqs))
    (problem,) = [str(p) for p in r.problems]
    assert problem.startswith("mlscore:dependenciesFile, mlscore:functionsEnabled = ")
    assert "requirements.txt line 2 ('azure-storage-blob==12.19.0')" in problem
    assert "azure-storage-blob<13,>=12.20" in problem and resolved == []
    assert model.python_version == "3.11"


def test_the_function_image_resolution_is_its_own_requirements_with_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same resolution as the scoring image's (user_env.resolve), on the function image's
    files for the model's Python; its failure names the user's line."""
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("joblib>=1.4\n")
    seen: list[tuple[str, str]] = []

    def resolve(lines, python, host):
        seen.append((host.read_text(), python))
        return user_env.Resolution("failed", "because joblib... no solution", lines)

    r, _ = _reader()
    monkeypatch.setattr(user_env, "resolve", resolve)
    environment.check_requirements(
        r, ModelSettings("m", "1", dependencies_file=reqs, python_version="3.12")
    )
    ((host, python),) = seen
    assert python == "3.12" and "azure-functions" in host and "uvicorn" in host
    assert "-r requirements.txt" not in host
    (problem,) = [str(p) for p in r.problems]
    assert "requirements.txt line 1 ('joblib>=1.4'): the function image's build" in problem
    assert "Python 3.12) would fail: because joblib" in problem
