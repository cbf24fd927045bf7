"""The offline preview, run as users run it: a process, per stack, text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def preview(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "preview", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_preview_lists_the_platform(stack: str) -> None:
    done = preview(stack)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for needle in (
        "azure-native:machinelearningservices:Workspace",
        "azure-native:keyvault:Vault",
        "azure-native:storage:StorageAccount",
        "azure-native:applicationinsights:Component",
        "azure-native:containerregistry:Registry",
        "azure-native:managedidentity:UserAssignedIdentity",
        "azure-native:authorization:RoleAssignment  acrpull",
        "docker:index/image:Image",
        "enablePurgeProtection: true",
        "adminUserEnabled: false",
        "Outputs:",
        "(known after apply)",
    ):
        assert needle in out, needle
    assert "Traceback" not in done.stderr


def test_preview_json_is_machine_readable() -> None:
    done = preview("prod", "--json")
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert data["ok"] is True and data["stack"] == "prod"
    types = {r["type"] for r in data["resources"]}
    assert "azure-native:containerregistry:Registry" in types
    assert data["outputs"]["registry"]["login_server"] == "(known after apply)"


def test_invalid_config_exits_non_zero_with_every_problem() -> None:
    done = preview("dev", "--set", "aksNodeCount=2", "--set", "aciCpu=9")
    assert done.returncode == 1
    assert "2 problem(s)" in done.stdout
    assert "mlscore:aksNodeCount" in done.stdout and ">= 12 vCPUs" in done.stdout
    assert "mlscore:aciCpu" in done.stdout
    data = json.loads(preview("dev", "--json", "--set", "aksNodeCount=2").stdout)
    assert data["ok"] is False and len(data["problems"]) == 1 and data["resources"] == []


def test_unknown_stack_and_bad_set_are_clear_errors() -> None:
    done = preview("staging")
    assert done.returncode == 2 and "no stack file Pulumi.staging.yaml" in done.stderr
    done = preview("dev", "--set", "aksNodeCount")
    assert done.returncode != 0 and "KEY=VALUE" in done.stderr


def test_a_stack_file_elsewhere_previews_with_its_own_values(tmp_path) -> None:
    stack_file = tmp_path / "Pulumi.elsewhere.yaml"
    stack_file.write_text("config:\n  mlscore:aciCpu: '9'\n")  # ACI allows at most 4 cores
    done = preview("--stack-file", str(stack_file))
    assert done.returncode == 1 and "mlscore:aciCpu" in done.stdout, done.stdout
    assert "'elsewhere'" in done.stdout  # the stack name comes from the file's name
    done = preview("--stack-file", str(tmp_path / "Pulumi.missing.yaml"))
    assert done.returncode == 2 and "no stack file" in done.stderr
    stack_file.write_text("config:\n  mlscore:noSuchKey: 1\n")
    done = preview("--stack-file", str(stack_file))
    assert done.returncode == 2 and "mlscore:noSuchKey is not declared" in done.stderr


def test_the_prod_preview_names_the_stand_ins_a_real_run_refuses(prod) -> None:
    # in-process on the shared prod run (a subprocess costs a whole program run)
    from preview.__main__ import as_json, render, stand_ins_of

    found = stand_ins_of("prod", {}, None)
    assert found == {
        "aksTlsHost": ["'scoring.mlscore.example.com'"],
        "aksTlsPfxPath": ["'certs/scoring.mlscore.example.com.pfx'"],
        "alertEmailReceivers": ["'mlscore-oncall@example.com'"],
        "deployerIpRanges": ["'203.0.113.0/24'"],
        "iotHubIpFilter": ["'198.51.100.0/24'"],
    }
    assert as_json(prod, found)["ok"] and as_json(prod, found)["stand_ins"] == found
    text = render(prod, stand_ins=found)
    assert "`pulumi up` refuses" in text and "mlscore:deployerIpRanges = '203.0.113.0/24'" in text
    assert stand_ins_of("dev", {}, None) == {}


def test_set_items_are_parsed_once_for_preview_demo_and_cost() -> None:
    from preview import engine

    assert engine.parse_overrides(["aksNodeCount=3", "mlscore:tags=a=b"]) == {
        "aksNodeCount": "3",
        "mlscore:tags": "a=b",
    }
    for bad in ("aksNodeCount", "=3"):
        with pytest.raises(engine.StackConfigError, match="--set takes KEY=VALUE"):
            engine.parse_overrides([bad])
