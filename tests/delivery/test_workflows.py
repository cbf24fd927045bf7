"""What the two workflows promise, read from the YAML: triggers, stacks, OIDC without stored
credentials, least privilege, pinned actions, per-branch concurrency, the gated prod deploy."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WF = ROOT / ".github" / "workflows"
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WF / name).read_text())
    # YAML 1.1 reads the key `on` as True
    data["on"] = data.pop(True, data.get("on"))
    return data


@pytest.fixture(scope="module")
def preview() -> dict[str, Any]:
    return load("preview.yml")


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return load("deploy.yml")


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml"])
def test_every_action_is_pinned_to_a_full_commit_sha_with_its_tag(name: str):
    text = (WF / name).read_text()
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses
    for ref, rest in uses:
        assert SHA_PIN.match(ref), ref
        assert re.search(r"#\s*v\d", rest), f"{ref}: say which release the SHA is"


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml"])
def test_no_long_lived_secrets(name: str):
    text = (WF / name).read_text()
    assert set(re.findall(r"secrets\.(\w+)", text)) <= {"GITHUB_TOKEN"}
    for banned in ("client-secret", "creds:", "PULUMI_ACCESS_TOKEN", "ARM_CLIENT_SECRET"):
        assert banned not in text


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml"])
def test_least_privilege(name: str):
    wf = load(name)
    assert wf["permissions"] == {}  # nothing by default; each job asks for what it needs
    for job_name, job in wf["jobs"].items():
        perms = job["permissions"]
        assert perms.get("contents") == "read", job_name
        assert set(perms.values()) <= {"read", "write"}
        writes = {k for k, v in perms.items() if v == "write"}
        assert writes <= {"id-token", "pull-requests"}, (job_name, writes)
        if "id-token" in writes:
            assert steps_using(job, "azure/login"), f"{job_name} asks for OIDC but never logs in"


def test_preview_runs_on_pull_requests_per_branch(preview: dict[str, Any]):
    assert "pull_request" in preview["on"]
    assert "pull_request_target" not in preview["on"]
    assert "github.head_ref" in preview["concurrency"]["group"]
    assert preview["concurrency"]["cancel-in-progress"] is True


def test_preview_job_previews_each_stack_with_the_policy_pack(preview: dict[str, Any]):
    job = preview["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert job["permissions"]["id-token"] == "write"
    login = steps_using(job, "azure/login")[0]["with"]
    assert set(login) == {"client-id", "tenant-id", "subscription-id"}  # OIDC, no secret
    assert steps_using(job, "pulumi/auth-actions")
    pulumi = steps_using(job, "pulumi/actions")[0]["with"]
    assert pulumi["command"] == "preview"
    assert pulumi["comment-on-pr"] is True
    assert pulumi["policyPacks"] == "policy"
    assert pulumi["policyPackConfigs"] == "policy/config.${{ matrix.stack }}.json"
    assert pulumi["stack-name"].endswith("/mlscore/${{ matrix.stack }}")
    assert job["env"]["ARM_USE_OIDC"] == "true"
    # forks have no OIDC token: the job is skipped for them, the offline one runs
    assert "head.repo.full_name == github.repository" in job["if"]


def test_offline_job_needs_no_secret_and_runs_the_tests_and_offline_preview(
    preview: dict[str, Any],
):
    job = preview["jobs"]["offline"]
    text = yaml.safe_dump(job)
    assert "secrets." not in text and "vars." not in text
    assert job["permissions"] == {"contents": "read"}
    runs = [s.get("run", "") for s in job["steps"]]
    assert "make test" in runs
    assert ".venv/bin/python -m preview dev" in runs
    assert ".venv/bin/python -m preview prod" in runs


def test_checkouts_do_not_persist_credentials(preview: dict[str, Any], deploy: dict[str, Any]):
    for wf in (preview, deploy):
        for job in wf["jobs"].values():
            for step in steps_using(job, "actions/checkout"):
                assert step["with"]["persist-credentials"] is False


def test_deploy_goes_dev_then_prod_through_a_reviewed_environment(deploy: dict[str, Any]):
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    dev, prod = deploy["jobs"]["dev"], deploy["jobs"]["prod"]
    assert prod["needs"] == "dev"
    assert prod["environment"] == "production"
    assert dev.get("environment") != "production"
    for job, stack in ((dev, "dev"), (prod, "prod")):
        up = steps_using(job, "pulumi/actions")[0]["with"]
        assert up["command"] == "up"
        assert up["stack-name"].endswith(f"/mlscore/{stack}")
        assert up["policyPacks"] == "policy"
        assert up["policyPackConfigs"] == f"policy/config.{stack}.json"
        assert (ROOT / up["policyPackConfigs"]).exists()


def test_prod_never_deploys_from_a_runner_azure_cannot_tell(deploy: dict[str, Any]):
    """prod's data planes admit a runner in the VNet or a fixed egress IP outside the stack's
    region (storage ignores IP rules for same-region clients: network_settings.py); a
    GitHub-hosted runner is neither, so without PROD_RUNNER the job stops before any login."""
    prod = deploy["jobs"]["prod"]
    assert "vars.PROD_RUNNER" in prod["runs-on"]
    guard = prod["steps"][0]
    assert guard["if"].replace(" ", "") == "vars.PROD_RUNNER==''"
    done = subprocess.run(["bash", "-e", "-c", guard["run"]], capture_output=True, text=True)
    assert done.returncode != 0
    assert "::error::set the repository variable PROD_RUNNER" in done.stdout
    assert "outside the stack's region" in done.stdout
