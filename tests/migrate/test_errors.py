"""Bad v1 files exit 2 naming the file and the field; an invalid stack exits 1 with the program's
problems; a stack file is never overwritten without --force."""

from __future__ import annotations

from dataclasses import replace

import pytest

from components.config.reader import schema
from migrate import table
from migrate.rules import Maps, same
from tests.migrate.v1_docs import ACI_JSON, AKS_JSON, INFERENCE_JSON, SEEDS_MYENV, project

AKS_HTTP = AKS_JSON.replace('"authEnabled": true,', '"authEnabled": true, "sslEnabled": false,')


@pytest.mark.parametrize(
    ("name", "text", "field", "problem"),
    [
        ("aks.json", '{"computeType": "aks", }', "line 1", "not valid JSON"),
        ("aks.yml", "computeType: [aks", "line 1", "not valid YAML (expected ',' or ']'"),
        ("aks.json", '["aks"]', "(document)", "expected an object"),
        ("aks.json", '{"autoScaler": {"minReplicas": 1}}', "computeType", "missing"),
        ("aks.json", '{"computeType": "aml"}', "computeType", "'aml' is not a v1 compute type"),
        (
            "aks.json",
            '{"computeType": "aks", "autoScaler": {"minReplicas": "one"}}',
            "autoScaler.minReplicas",
            "expected a whole number, got 'one'",
        ),
        ("aks.json", '{"computeType": "aks", "autoScaler": 3}', "autoScaler", "expected an object"),
        (
            "aci.json",
            '{"computeType": "aci", "containerResourceRequirements": {"cpu": "lots"}}',
            "containerResourceRequirements.cpu",
            "expected a number",
        ),
        (
            "aks.json",
            '{"computeType": "aks", "authEnabled": "yes"}',
            "authEnabled",
            "true or false",
        ),
        (
            "aks.json",
            '{"computeType": "aks", "authEnabled": true, "tokenAuthEnabled": true}',
            "authEnabled, tokenAuthEnabled",
            "both true",
        ),
        (
            "aks.json",
            '{"computeType": "aks", "numReplicas": 1, "NUMREPLICAS": 2}',
            "NUMREPLICAS",
            "given twice",
        ),
    ],
)
def test_a_bad_deployment_config_exits_2_naming_file_and_field(
    migrate, tmp_path, name, text, field, problem
):
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON, name: text})
    done = migrate(v1 / "i.json", v1 / name)
    assert done.code == 2
    assert f"{v1 / name}: {field}: " in done.err and problem in done.err, done.err
    assert not done.stack_file.exists()


@pytest.mark.parametrize(
    ("inference", "field", "problem"),
    [
        ('{"runtime": "python"}', "entryScript", "missing"),
        ('{"entryScript": "nope.py"}', "entryScript", "no such file 'nope.py'"),
        ('{"entryScript": "score.py", "condaFile": "env.yml"}', "condaFile", "no such file"),
        (
            '{"entryScript": "score.py", "sourceDirectory": "src"}',
            "sourceDirectory",
            "no such folder",
        ),
        ('{"entryScript": "score.py", "enableGpu": 1}', "enableGpu", "true or false"),
        ('{"entryScript": "score.py", "environment": "AzureML-Minimal"}', "environment", "object"),
    ],
)
def test_a_bad_inference_config_exits_2_naming_file_and_field(
    migrate, tmp_path, inference, field, problem
):
    v1 = project(tmp_path / "v1", {"i.json": inference, "aci.json": ACI_JSON})
    done = migrate(v1 / "i.json", v1 / "aci.json")
    assert done.code == 2
    assert f"{v1 / 'i.json'}: {field}: " in done.err and problem in done.err, done.err


def test_an_unreadable_file_exits_2(migrate, tmp_path):
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON})
    done = migrate(v1 / "i.json", v1 / "missing.json")
    assert done.code == 2 and f"{v1 / 'missing.json'}: (file): unreadable" in done.err


def test_two_aks_configs_cannot_share_a_stack(migrate, tmp_path):
    v1 = project(
        tmp_path / "v1", {"i.json": INFERENCE_JSON, "a.json": AKS_JSON, "b.json": AKS_JSON}
    )
    done = migrate(v1 / "i.json", v1 / "a.json", v1 / "b.json")
    assert done.code == 2 and "b.json: computeType: a second aks deployment config" in done.err


def test_an_existing_stack_file_is_never_overwritten_without_force(migrate, tmp_path):
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON, "aci.json": ACI_JSON})
    out = tmp_path / "Pulumi.v1.yaml"
    out.write_text("config: {}\n")
    done = migrate(v1 / "i.json", v1 / "aci.json", out=out)
    assert done.code == 2 and "exists; pass --force" in done.err
    assert out.read_text() == "config: {}\n"
    done = migrate(v1 / "i.json", v1 / "aci.json", out=out, extra=("--force",))
    assert done.code == 0 and done.values["aciCpu"] == "0.5"


def test_an_aks_below_12_vcpus_is_refused_by_the_programs_validation(
    migrate, tmp_path, monkeypatch
):
    """v1 deployment configs carry no cluster size: the stack gets Pulumi.yaml's user pool
    (3 x Standard_D4s_v5 = 12 vCPUs). With a 2-node default, as a project that lowered it, the
    program's 12-vCPU rule comes back through the migration: printed, and exit 1."""
    spec = schema()["aksNodeCount"]
    monkeypatch.setitem(schema(), "aksNodeCount", replace(spec, default=2))
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON, "aks.json": AKS_HTTP})
    done = migrate(v1 / "i.json", v1 / "aks.json")
    assert done.code == 1
    assert "INVALID, 1 problem(s)" in done.out
    assert "mlscore:aksNodeCount, mlscore:aksVmSize" in done.out
    assert "2 x Standard_D4s_v5 = 8 vCPUs" in done.out and ">= 12 vCPUs" in done.out
    assert done.values["aksEnabled"] is True  # written all the same, for the user to fix


def test_the_seeds_python_36_environment_is_refused_with_the_programs_fix(migrate, tmp_path):
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON, "aci.json": ACI_JSON})
    (v1 / "myenv.yml").write_text(SEEDS_MYENV)
    done = migrate(v1 / "i.json", v1 / "aci.json")
    assert done.code == 1
    assert "mlscore:dependenciesFile" in done.out and "the images run Python 3.11" in done.out


def test_a_key_the_program_does_not_declare_yet_is_reported_not_written(
    migrate, tmp_path, monkeypatch
):
    future = Maps("bool", ("modelDataCollectionV3",), same)
    monkeypatch.setitem(table.AKS, "dataCollection.storageEnabled", future)
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON, "aks.json": AKS_HTTP})
    done = migrate(v1 / "i.json", v1 / "aks.json")
    out = " ".join(done.out.split())
    assert "dataCollection.storageEnabled = true not yet supported by this program" in out
    assert "mlscore:modelDataCollectionV3 is not declared in Pulumi.yaml" in out
    assert done.code == 3 and not done.stack_file.exists()  # a v1 part not carried over
    accepted = migrate(v1 / "i.json", v1 / "aks.json", extra=("--accept-losses",))
    assert "modelDataCollectionV3" not in accepted.values and accepted.code == 0
