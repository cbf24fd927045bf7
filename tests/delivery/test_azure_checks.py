"""checkov's Azure rules on the prod program, offline: the program's resources as an ARM template.

``preview/arm.py`` converts what the mock engine recorded (deploy mode, the real stack files)
into a ``deploymentTemplate``; ``checkov --framework arm`` scans it. Every check prod fails must
be justified in ``policy/azure_checks.py`` (the table of ``docs/security.md`` is generated from
it), and every justification must still be needed. checkov is found or installed as in
``test_security_checks.py``. By hand::

    .venv/bin/python -m preview.arm prod -o /tmp/prod.json
    .local/checkov/bin/checkov --framework arm -f /tmp/prod.json --compact --skip-download
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from policy import azure_checks
from policy.hygiene import ZONES_REMEDIATION
from preview import arm, engine
from tests.delivery.test_security_checks import checkov as checkov  # the fixture
from tests.delivery.test_security_checks import run_checkov

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prod_template(prod: engine.Run) -> dict[str, Any]:
    return arm.from_run(prod)


def _scan(checkov: str, template: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template, indent=2))
    return run_checkov(checkov, "arm", "-f", str(path))


@pytest.fixture(scope="module")
def prod_report(
    checkov: str,
    prod_template: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    return _scan(checkov, prod_template, tmp_path_factory.mktemp("arm"))


def _pulumi_names(template: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """checkov's resource id (``<ARM type>.<ARM name>``) -> (Pulumi type, logical name)."""
    return {
        f"{r['type']}.{r['name']}": (
            r["metadata"]["pulumi"]["type"],
            r["metadata"]["pulumi"]["name"],
        )
        for r in template["resources"]
    }


def _failures(report: dict[str, Any], template: dict[str, Any]) -> list[tuple[str, str, str]]:
    names = _pulumi_names(template)
    return [(c["check_id"], *names[c["resource"]]) for c in report["results"]["failed_checks"]]


# --- the converter -------------------------------------------------------------------------------
def test_every_azure_resource_of_prod_becomes_an_arm_resource(
    prod: engine.Run, prod_template: dict[str, Any]
) -> None:
    azure = [r for r in prod.resources if r.custom and r.type.startswith("azure-native:")]
    data_plane = [r for r in azure if r.type == "azure-native:storage:Blob"]
    assert len(prod_template["resources"]) == len(azure) - len(data_plane) > 50
    left_out = arm.skipped(
        arm.Resource(r.type, r.name, r.inputs) for r in prod.resources if r.custom
    )
    assert all(not s.startswith("azure-native:") or "storage:Blob" in s for s in left_out)


def test_arm_names_are_unique_per_type(prod_template: dict[str, Any]) -> None:
    ids = [(r["type"], r["name"]) for r in prod_template["resources"]]
    assert len(ids) == len(set(ids))  # checkov keys resources by type and name


def test_every_type_in_the_table_is_in_the_installed_sdk() -> None:
    for token in arm.ARM_TYPES:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", arm.api_version(token)), token


def test_an_unknown_azure_type_is_refused() -> None:
    with pytest.raises(arm.UnknownType, match="ARM_TYPES"):
        arm.template([arm.Resource("azure-native:cdn:Profile", "cdn", {})])


def _arm(template: dict[str, Any], pulumi_type: str, name: str) -> dict[str, Any]:
    (found,) = [
        r
        for r in template["resources"]
        if r["metadata"]["pulumi"] == {"type": pulumi_type, "name": name}
    ]
    return found


def test_resources_take_arm_s_shape(prod: engine.Run, prod_template: dict[str, Any]) -> None:
    account = _arm(prod_template, "azure-native:storage:StorageAccount", "storage")
    assert account["type"] == "Microsoft.Storage/storageAccounts"
    assert account["sku"] == {"name": "Standard_GZRS"} and account["kind"] == "StorageV2"
    # azure-native's names for these properties are not ARM's
    assert account["properties"]["supportsHttpsTrafficOnly"] is True
    assert account["properties"]["networkAcls"]["bypass"] == "AzureServices"
    assert "enableHttpsTrafficOnly" not in account["properties"]
    secret = _arm(prod_template, "azure-native:keyvault:Secret", "scoring-key-primary-secret")
    vault = prod.one("azure-native:keyvault:Vault").azure_name
    assert secret["name"] == f"{vault}/scoring-key-primary"
    assert secret["properties"]["attributes"]["exp"] > 0
    assert secret["properties"]["contentType"]
    (plan,) = [r for r in prod_template["resources"] if r["name"] == "mlscore-prod-func-plan"]
    assert plan["type"] == "Microsoft.Web/serverfarms"
    assert plan["properties"]["zoneRedundant"] is True
    assert plan["apiVersion"] == arm.api_version("web:AppServicePlan")
    assert plan["apiVersion"][:4].isdigit()


# --- checkov on prod -----------------------------------------------------------------------------
def test_checkov_scans_every_resource(
    prod_report: dict[str, Any], prod_template: dict[str, Any]
) -> None:
    summary = prod_report["summary"]
    assert summary["resource_count"] == len(prod_template["resources"])
    assert summary["parsing_errors"] == 0 and summary["passed"] > 50


def test_prod_fails_only_justified_checks(
    prod_report: dict[str, Any], prod_template: dict[str, Any]
) -> None:
    unjustified = [
        f"{check} {type_} {name}"
        for check, type_, name in _failures(prod_report, prod_template)
        if azure_checks.exemption(check, type_, name) is None
    ]
    assert unjustified == [], "fix these, or justify them in policy/azure_checks.py"


def test_every_justification_is_still_needed(
    prod_report: dict[str, Any], prod_template: dict[str, Any]
) -> None:
    failures = _failures(prod_report, prod_template)
    stale = [
        f"{e.check} {e.type} {e.names}"
        for e in azure_checks.EXEMPTIONS
        if not any(e.covers(*f) for f in failures)
    ]
    assert stale == [], "prod passes these now: drop them from policy/azure_checks.py"


def test_the_checks_this_work_fixed_pass_on_prod(prod_report: dict[str, Any]) -> None:
    passed = {c["check_id"] for c in prod_report["results"]["passed_checks"]}
    failed = {c["check_id"] for c in prod_report["results"]["failed_checks"]}
    fixed = {"CKV_AZURE_206", "CKV_AZURE_225", "CKV_AZURE_114", "CKV_AZURE_41", "CKV_AZURE_36"}
    assert fixed <= passed and not fixed & failed


def test_checkov_fails_a_template_with_those_settings_broken(
    checkov: str,
    prod_template: dict[str, Any],
    tmp_path: Path,
) -> None:
    broken = copy.deepcopy(prod_template)
    for r in broken["resources"]:
        if r["type"] == "Microsoft.Storage/storageAccounts":
            r["sku"] = {"name": "Standard_LRS"}
        elif r["type"] == "Microsoft.KeyVault/vaults/secrets":
            r["properties"].pop("contentType")
            r["properties"]["attributes"].pop("exp")
        elif r["type"] == "Microsoft.Web/serverfarms":
            r["properties"]["zoneRedundant"] = False
    # A checkov run of its own, not one with prod's template: checkov joins a run's ARM files in
    # one graph that links resources by bare name (this copy has prod's names), and the report's
    # resource_count is the run's, not a file's (test_checkov_scans_every_resource reads it).
    failed = {c["check_id"] for c in _scan(checkov, broken, tmp_path)["results"]["failed_checks"]}
    assert {"CKV_AZURE_206", "CKV_AZURE_114", "CKV_AZURE_41", "CKV_AZURE_225"} <= failed


# --- one list of reasons -------------------------------------------------------------------------
def test_docs_security_md_shows_the_generated_tables() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    assert azure_checks.markdown_table() in text, "regenerate: python -m policy.azure_checks"
    assert azure_checks.not_scanned_table() in text


def test_every_justification_says_why_and_network_ones_point_at_issue_18() -> None:
    for e in azure_checks.EXEMPTIONS:
        assert len(e.reason) > 40 and e.status in azure_checks.STATUSES
        if e.status == azure_checks.ISSUE_18:
            assert "issue 18" in e.reason


def test_what_stays_public_says_why() -> None:
    """The network checks prod still fails are the scoring endpoints (public by design, as the
    policy pack lists them) and the allow-list mode's public endpoints (default deny)."""
    from policy.network import PUBLIC_BY_DESIGN

    web = azure_checks.exemption("CKV_AZURE_222", "azure-native:web:WebApp", "app")
    assert web is not None and web.status == azure_checks.BY_DESIGN
    assert "public by design" in web.reason and "azure-native:web:WebApp" in PUBLIC_BY_DESIGN
    for check, type_, name in (
        ("CKV_AZURE_139", "azure-native:containerregistry:Registry", "acr"),
        ("CKV_AZURE_59", "azure-native:storage:StorageAccount", "storage"),
    ):
        e = azure_checks.exemption(check, type_, name)
        assert e is not None and e.status == azure_checks.BY_DESIGN, check
        assert "denies by default" in e.reason and "deployerIpRanges" in e.reason, check


def test_the_policy_pack_gives_the_same_reason_where_it_has_a_rule() -> None:
    assert azure_checks.reason("CKV_AZURE_212") in ZONES_REMEDIATION
