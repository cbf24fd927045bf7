"""Batch scoring under mocks with the real stack files: the AmlCompute cluster that scales to zero,
the code and environment versioned by content, the batch endpoint and deployment, the output;
the batch scoring script run for real on the committed model."""

from __future__ import annotations

import importlib.util

import pytest

from components.targets.aml.batch import content_hash
from preview import engine, fakes
from tests.infra.targets.aml.helpers import DYNAMIC, ML, MODEL_DIR, ROOT, arm_id, child, inputs


# --- batch ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batch(prod) -> dict[str, engine.Registered]:
    t = "mlscore:target:AmlBatch"
    return {
        "compute": child(prod, t, f"{ML}:Compute", "compute"),
        "script": child(prod, t, "azure-native:storage:Blob", "script"),
        "code": child(prod, t, f"{ML}:CodeContainer", "code"),
        "code_version": child(prod, t, f"{ML}:CodeVersion", "code-version"),
        "env_version": child(prod, t, f"{ML}:EnvironmentVersion", "environment-version"),
        "endpoint": child(prod, t, f"{ML}:BatchEndpoint", "endpoint"),
        "deployment": child(prod, t, f"{ML}:BatchDeployment", "deployment"),
        "defaults": child(prod, t, DYNAMIC, "defaults"),
    }


def test_aml_compute_scales_to_zero_on_low_priority_vms(batch) -> None:
    i = inputs(batch["compute"])
    assert i["computeName"] == "batch-cpu" and 2 <= len(i["computeName"]) <= 16
    p = i["properties"]
    assert p["computeType"] == "AmlCompute" and p["disableLocalAuth"] is True
    q = p["properties"]
    assert q["vmSize"] == "Standard_DS3_v2" and q["vmPriority"] == "LowPriority"
    assert q["scaleSettings"] == {
        "minNodeCount": 0,
        "maxNodeCount": 8,  # batchMaxNodes in prod
        "nodeIdleTimeBeforeScaleDown": "PT120S",
    }
    assert q["remoteLoginPortPublicAccess"] == "Disabled" and q["osType"] == "Linux"


def test_dedicated_vms_when_low_priority_is_off(run_stack) -> None:
    run = run_stack("dev", batchLowPriority=False, batchMaxNodes=2)
    assert run.error is None, run.error
    (compute,) = run.of_type(f"{ML}:Compute")
    q = inputs(compute)["properties"]["properties"]
    assert q["vmPriority"] == "Dedicated" and q["scaleSettings"]["maxNodeCount"] == 2


def test_batch_code_and_environment_are_versioned_by_content(prod, batch) -> None:
    script = ROOT / "aml" / "batch" / "score.py"
    digest = content_hash(script.read_bytes())
    assert inputs(batch["script"])["blobName"] == f"code/batch/{digest}/score.py"
    assert batch["script"].inputs["source"].path == str(script)
    cv = inputs(batch["code_version"])
    assert cv["version"] == digest and cv["name"] == inputs(batch["code"])["name"]
    assert cv["properties"]["codeUri"].endswith(
        f"/datastores/mlscore_models/paths/code/batch/{digest}/"
    )
    assert batch["script"].urn in batch["code_version"].dependencies
    ev = inputs(batch["env_version"])
    assert ev["properties"]["condaFile"] == (ROOT / "aml" / "batch" / "conda.yaml").read_text()
    assert ev["properties"]["image"].startswith("mcr.microsoft.com/azureml/")


def test_batch_deployment_of_the_registered_model_on_the_cluster(prod, batch) -> None:
    (version,) = prod.of_type(f"{ML}:ModelVersion")
    e = inputs(batch["endpoint"])
    assert e["properties"]["authMode"] == "AADToken"
    assert e["endpointName"].startswith("mlscore-prod-batch") and len(e["endpointName"]) <= 32
    d = inputs(batch["deployment"])
    p = d["properties"]
    assert d["deploymentName"] == "score" and d["endpointName"] == e["endpointName"]
    assert p["compute"] == arm_id(prod, batch["compute"])
    assert p["model"] == {"referenceType": "Id", "assetId": arm_id(prod, version)}
    assert p["codeConfiguration"] == {
        "codeId": arm_id(prod, batch["code_version"]),
        "scoringScript": "score.py",
    }
    assert p["environmentId"] == arm_id(prod, batch["env_version"])
    assert p["resources"] == {"instanceCount": 1}
    assert p["outputAction"] == "AppendRow" and p["outputFileName"] == "predictions.csv"
    assert p["miniBatchSize"] == 10 and p["errorThreshold"] == -1
    assert p["retrySettings"] == {"maxRetries": 3, "timeout": "PT5M"}
    df = inputs(batch["defaults"])
    assert df["values"] == {"defaults": {"deploymentName": "score"}}
    assert df["resource_id"] == arm_id(prod, batch["endpoint"])
    assert arm_id(prod, batch["deployment"]) in df["after"]


def test_batch_output_has_the_invocation_uri_and_documents_inputs_and_outputs(prod, batch) -> None:
    out = prod.outputs["batch"]
    name = inputs(batch["endpoint"])["endpointName"]
    assert out["invocation_uri"] == f"https://{name}.westeurope.inference.ml.azure.com/jobs"
    assert out["endpoint_name"] == name and out["deployment"] == "score"
    assert out["auth"] == {"scheme": "entra-token", "scope": "https://ml.azure.com/.default"}
    assert "CSV" in out["input"] and "predictions.csv" in out["output"]
    assert out["compute"]["min_nodes"] == 0 and out["compute"]["max_nodes"] == 8


def test_batch_off_leaves_nothing(run_stack) -> None:
    run = run_stack("dev", batchEnabled=False)
    assert run.error is None, run.error
    assert "batch" not in run.outputs
    assert [r for r in run.resources if r.type == "mlscore:target:AmlBatch"] == []
    for t in ("Compute", "BatchEndpoint", "BatchDeployment", "CodeVersion"):
        assert run.of_type(f"{ML}:{t}") == []


# --- the batch scoring script, run for real on the committed model -------------------------------
def test_batch_script_scores_csv_files_with_the_committed_model(tmp_path, monkeypatch) -> None:
    import joblib  # scoring/requirements.txt, installed by .ci/run

    spec = importlib.util.spec_from_file_location("aml_batch_score", ROOT / "aml/batch/score.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(ROOT / "aml" / "model"))
    module.init()
    a = tmp_path / "a.csv"
    a.write_text("1,2,3,4,5,6,7,8,9,10\n10,9,8,7,6,5,4,3,2,1\n")
    b = tmp_path / "b.csv"
    b.write_text("0,0,0,0,0,0,0,0,0,0\n")
    lines = module.run([str(a), str(b)])
    assert [line.split(",")[:2] for line in lines] == [
        ["a.csv", "0"],
        ["a.csv", "1"],
        ["b.csv", "0"],
    ]
    model = joblib.load(MODEL_DIR / "model.joblib")
    expected = model.predict([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])[0]
    assert float(lines[0].split(",")[2]) == pytest.approx(expected, abs=1e-5)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="3 columns"):
        module.run([str(bad)])


def test_the_cluster_pulls_and_reads_as_its_own_identity(prod, batch) -> None:
    """The registry has no admin user and the datastore no credentials: the cluster's managed
    identity pulls the environment's image (AcrPull on the registry) and reads the model (Storage
    Blob Data Reader on the workspace storage)."""
    compute = batch["compute"]
    assert inputs(compute)["identity"] == {"type": "SystemAssigned"}
    principal = compute.outputs["identity"]["principalId"]
    t = "mlscore:target:AmlBatch"
    registry = prod.one("azure-native:containerregistry:Registry").azure_name
    storage = [
        r.azure_name
        for r in prod.of_type("azure-native:storage:StorageAccount")
        if r.parent == prod.one("mlscore:platform:MlWorkspace").urn
    ]
    rg = prod.one("azure-native:resources:ResourceGroup").azure_name
    base = f"/subscriptions/{fakes.SUBSCRIPTION}/resourceGroups/{rg}/providers"
    roles = "/providers/Microsoft.Authorization/roleDefinitions/"
    grants = {
        "compute-acr-pull": (
            "7f951dda-4ed3-4680-a7ca-43fe172d538d",
            f"{base}/Microsoft.ContainerRegistry/registries/{registry}",
        ),
        "compute-blob-reader": (
            "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
            f"{base}/Microsoft.Storage/storageAccounts/{storage[0]}",
        ),
    }
    for name, (role, scope) in grants.items():
        grant = inputs(child(prod, t, "azure-native:authorization:RoleAssignment", name))
        assert grant["principalId"] == principal and grant["principalType"] == "ServicePrincipal"
        assert grant["roleDefinitionId"].endswith(roles + role) and grant["scope"] == scope
