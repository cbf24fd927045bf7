"""The local run (python -m scoring.demo): what a stack deploys, served here and scored.

It assembles the build context ``pulumi up`` would, lays it out as the Dockerfile does, starts
the host with the environment the program gives the target, and prints the answers: for the
sample (the seed payload) and for a model of one's own (the sample input of its schema).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from _scoring_support import REPO

from scoring.demo import dependencies_venv

OWN = "tests/models/iris_centroid"


def _demo(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "AZUREML_"))}
    env = base | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "scoring.demo", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _answers(stdout: str) -> list[object]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("POST /score #")]
    assert len(lines) == 2, stdout
    assert all(" -> 200 " in ln for ln in lines), lines
    return [json.loads(ln.split(") ", 1)[1]) for ln in lines]


def test_the_sample_is_served_with_the_seed_payload() -> None:
    result = _demo("--stack", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "app_service's environment; model diabetes-ridge:1" in result.stdout
    first, second = _answers(result.stdout)
    assert first == second and isinstance(first, list) and len(first) == 2
    assert '"model": {"name": "diabetes-ridge", "version": "1"}' in result.stdout


def test_an_own_model_with_a_conda_file_is_served_with_its_schemas_sample_input() -> None:
    result = _demo(
        "--stack", "dev", "--target", "aks",
        "--set", f"modelPath={OWN}/model",
        "--set", f"entryScript={OWN}/code/score.py",
        "--set", f"dependenciesFile={OWN}/environment.yml",
        "--set", "modelName=iris-centroid",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "aks's environment; model iris-centroid:1" in result.stdout
    assert _answers(result.stdout) == [{"labels": ["setosa", "virginica"]}] * 2
    assert "/var/azureml-app/code/score.py" in result.stdout


def test_a_payload_file_is_posted(tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"data": [[6.5, 3.0, 5.8, 2.2]]}))
    result = _demo(
        "--set", f"modelPath={OWN}/model",
        "--set", f"entryScript={OWN}/code/score.py",
        "--set", f"dependenciesFile={OWN}/requirements.txt",
        "--data", str(payload),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert _answers(result.stdout) == [{"labels": ["virginica"]}] * 2


def test_a_bad_config_is_refused_before_anything_runs() -> None:
    result = _demo("--set", "entryScript=nope/score.py", timeout=120)
    assert result.returncode != 0
    assert "mlscore:entryScript" in result.stdout + result.stderr
    assert "POST /score" not in result.stdout


def test_docker_mode_refuses_without_docker_or_its_daemon(tmp_path: Path) -> None:
    no_docker = _demo("--docker", env={"PATH": str(Path(sys.executable).parent)}, timeout=120)
    assert no_docker.returncode != 0 and "no docker command" in no_docker.stderr
    if shutil.which("docker") is not None:
        sock = f"unix://{tmp_path}/none.sock"
        no_daemon = _demo("--docker", env={"DOCKER_HOST": sock}, timeout=120)
        assert no_daemon.returncode != 0
        assert "Docker daemon is not reachable" in no_daemon.stderr


def test_the_dependencies_venv_is_cached_by_their_hash_and_sees_the_host(tmp_path: Path) -> None:
    reqs = tmp_path / "user-requirements.txt"
    reqs.write_text("scipy>=1.11,<2\n")  # already among this interpreter's packages: no download
    python = dependencies_venv(reqs, root=tmp_path / "venvs")
    assert python.parent.parent.parent == tmp_path / "venvs"
    marker = python.parent.parent / ".installed"
    stamp = marker.stat().st_mtime_ns
    assert dependencies_venv(reqs, root=tmp_path / "venvs") == python  # reused
    assert marker.stat().st_mtime_ns == stamp
    check = "import scipy, sklearn, uvicorn, sys; print(sys.prefix)"
    out = subprocess.run([str(python), "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(python.parent.parent)
    reqs.write_text("scipy>=1.10,<2\n")
    assert dependencies_venv(reqs, root=tmp_path / "venvs") != python  # new hash, new venv
