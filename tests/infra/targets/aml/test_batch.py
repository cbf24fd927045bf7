"""Batch scoring under mocks with the real stack files: the AmlCompute cluster that scales to zero
(no public IP under network isolation), the batch driver versioned by content, the scoring image
as the environment, the batch endpoint and deployment, the output; the driver run for real in
the image's layout on the committed model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from components.platform import image_layout
from components.targets.aml.batch import DRIVER, content_hash
from components.targets.aml.online import image_version
from preview import engine, fakes
from tests.infra.targets.aml.helpers import DYNAMIC, ML, MODEL_DIR, arm_id, child, inputs


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


def test_batch_nodes_get_no_public_ip_under_network_isolation(prod, run_stack) -> None:
    """prod is network-isolated: its nodes live in the workspace's managed network, without
    public IPs; dev has no VNet and its nodes reach Azure ML over their public IPs."""
    q = inputs(child(prod, "mlscore:target:AmlBatch", f"{ML}:Compute", "compute"))
    assert q["properties"]["properties"]["enableNodePublicIp"] is False
    dev = run_stack("dev")
    (compute,) = dev.of_type(f"{ML}:Compute")
    assert inputs(compute)["properties"]["properties"]["enableNodePublicIp"] is True


def test_batch_code_is_the_driver_versioned_by_content(batch) -> None:
    digest = content_hash(DRIVER.read_bytes())
    assert inputs(batch["script"])["blobName"] == f"code/batch/{digest}/batch_driver.py"
    assert batch["script"].inputs["source"].path == str(DRIVER)
    cv = inputs(batch["code_version"])
    assert cv["version"] == digest and cv["name"] == inputs(batch["code"])["name"]
    assert cv["properties"]["codeUri"].endswith(
        f"/datastores/mlscore_models/paths/code/batch/{digest}/"
    )
    assert batch["script"].urn in batch["code_version"].dependencies


def test_batch_environment_is_the_scoring_image_by_digest_with_nothing_to_build(
    prod, batch
) -> None:
    ev = inputs(batch["env_version"])
    image = prod.outputs["image"]  # what every other target runs
    assert "@sha256:" in image
    assert ev["properties"]["image"] == image
    assert ev["version"] == image_version(image)
    assert "condaFile" not in ev["properties"] and "build" not in ev["properties"]


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
        "scoringScript": "batch_driver.py",
    }
    assert p["environmentId"] == arm_id(prod, batch["env_version"])
    # The entry script the driver runs: where the image has it (its Dockerfile's ENV).
    assert p["environmentVariables"] == {"SCORING_BATCH_ENTRY_SCRIPT": image_entry_script(prod)}
    assert p["resources"] == {"instanceCount": 1}
    assert p["outputAction"] == "AppendRow" and p["outputFileName"] == "predictions.jsonl"
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
    assert ".json" in out["input"] and ".csv" in out["input"]
    assert out["output"].startswith("predictions.jsonl: one JSON line per request")
    assert out["compute"]["min_nodes"] == 0 and out["compute"]["max_nodes"] == 8


def test_batch_off_leaves_nothing(run_stack) -> None:
    run = run_stack("dev", batchEnabled=False)
    assert run.error is None, run.error
    assert "batch" not in run.outputs
    assert [r for r in run.resources if r.type == "mlscore:target:AmlBatch"] == []
    for t in ("Compute", "BatchEndpoint", "BatchDeployment", "CodeVersion"):
        assert run.of_type(f"{ML}:{t}") == []


# --- the driver in the image, run for real -------------------------------------------------------
def image_entry_script(run: engine.Run) -> str:
    """``AZUREML_ENTRY_SCRIPT`` as the stack's scoring image sets it (its Dockerfile's final
    stage with the build arguments the program passes)."""
    image = run.one("docker:index/image:Image", "scoring-image")
    build = inputs(image)["build"]
    stage = image_layout.parse(Path(build["dockerfile"]).read_text(), build["args"])
    return stage.env["AZUREML_ENTRY_SCRIPT"]


def test_the_driver_scores_a_job_folder_inside_the_image_layout(dev, tmp_path) -> None:
    """The dev stack's build context laid out as its Dockerfile lays out the image, the batch
    deployment's environment variables on top, ``AZUREML_MODEL_DIR`` where Azure ML mounts the
    registered model: the driver loads the user's script from where the deployment says and
    scores a job's files (what a batch job on the cluster runs)."""
    from components.platform.build_context import assemble

    (deployment,) = dev.of_type(f"{ML}:BatchDeployment")
    env = inputs(deployment)["properties"]["environmentVariables"]
    s = settings_of("dev")
    layout = image_layout.rebuild(assemble(s.model), tmp_path / "image")
    run_env = layout.with_env(env) | {"PATH": os.environ["PATH"]}
    job = tmp_path / "job"
    job.mkdir()
    (job / "a.json").write_text(json.dumps({"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]}))
    (job / "b.csv").write_text("1,2,3,4,5,6,7,8,9,10\n10,9,8,7,6,5,4,3,2,1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "scoring.batch_driver", str(job / "a.json"), str(job / "b.csv")],
        cwd=layout.workdir,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    model = joblib.load(MODEL_DIR / "model.joblib")
    direct = model.predict([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]])
    assert [(r["file"], r["index"], r["status"]) for r in rows] == [
        ("a.json", 0, 200),
        ("b.csv", 0, 200),
    ]
    assert rows[0]["answer"] == pytest.approx([direct[0]], rel=1e-9)
    assert rows[1]["answer"] == pytest.approx(list(direct), rel=1e-9)


def settings_of(stack: str):
    from components.settings import load

    config, _ = engine.stack_config(stack)
    return load(lambda k: config.get(f"mlscore:{k}"), project="mlscore", stack=stack)


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
