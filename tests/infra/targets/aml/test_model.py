"""The registered model under mocks with the real stack files: its files in a private container of
the workspace storage, the identity-based datastore, the model container and version."""

from __future__ import annotations

from pathlib import Path

from preview import fakes
from tests.infra.targets.aml.helpers import ML, MODEL_DIR, arm_id, child, inputs, under


# --- model registration ---------------------------------------------------------------------------
def test_model_files_go_to_a_private_container_of_the_workspace_storage(prod) -> None:
    container = child(
        prod, "mlscore:platform:AmlModel", "azure-native:storage:BlobContainer", "container"
    )
    i = inputs(container)
    assert i["containerName"] == "aml-models" and i["publicAccess"] == "None"
    (account,) = [
        r for r in prod.of_type("azure-native:storage:StorageAccount") if r.name == "storage"
    ]
    assert i["accountName"] == account.azure_name
    blobs = [
        r for r in under(prod, "mlscore:platform:AmlModel") if r.type == "azure-native:storage:Blob"
    ]
    files = sorted(p.name for p in MODEL_DIR.iterdir())
    # The folder "1" (modelPath) under <name>/<version>/, as AZUREML_MODEL_DIR holds it.
    assert sorted(inputs(b)["blobName"] for b in blobs) == [
        f"diabetes-ridge/1/1/{f}" for f in files
    ]
    for b in blobs:
        i = inputs(b)
        assert i["containerName"] == "aml-models" and i["type"] == "Block"
        assert i["accountName"] == account.azure_name
        source = b.inputs["source"]
        assert type(source).__name__ == "FileAsset"
        # the scoring image's build context: the bytes the image carries, the same as modelPath's
        assert Path(source.path).parent.parent.name == "model"
        assert Path(source.path).read_bytes() == (MODEL_DIR / Path(source.path).name).read_bytes()


def test_identity_based_datastore_points_at_the_container(prod) -> None:
    ds = child(prod, "mlscore:platform:AmlModel", f"{ML}:Datastore", "datastore")
    i = inputs(ds)
    p = i["properties"]
    assert i["name"] == "mlscore_models"
    assert p["datastoreType"] == "AzureBlob" and p["containerName"] == "aml-models"
    assert p["credentials"] == {"credentialsType": "None"}
    assert p["serviceDataAccessAuthIdentity"] == "WorkspaceSystemAssignedIdentity"
    assert p["protocol"] == "https" and p["endpoint"] == "core.windows.net"
    assert i["workspaceName"] == prod.outputs["workspace"]["name"]


def test_model_version_points_at_the_uploaded_folder_and_waits_for_the_files(prod) -> None:
    model = child(prod, "mlscore:platform:AmlModel", f"{ML}:ModelContainer", "model")
    version = child(prod, "mlscore:platform:AmlModel", f"{ML}:ModelVersion", "version")
    assert inputs(model)["name"] == "diabetes-ridge"
    i = inputs(version)
    ws = prod.outputs["workspace"]["name"]
    rg = prod.outputs["resource_group"]
    assert i["name"] == "diabetes-ridge" and i["version"] == "1"
    assert i["properties"]["modelType"] == "custom_model"
    assert i["properties"]["modelUri"] == (
        f"azureml://subscriptions/{fakes.SUBSCRIPTION}/resourcegroups/{rg}/workspaces/{ws}"
        "/datastores/mlscore_models/paths/diabetes-ridge/1/1/"
    )
    blobs = [
        r.urn
        for r in under(prod, "mlscore:platform:AmlModel")
        if r.type == "azure-native:storage:Blob"
    ]
    assert set(blobs) <= set(version.dependencies)


def test_model_version_comes_from_config_and_is_in_the_outputs(run_stack) -> None:
    run = run_stack("dev", modelVersion="2")
    assert run.error is None, run.error
    (version,) = run.of_type(f"{ML}:ModelVersion")
    assert inputs(version)["version"] == "2"
    assert inputs(version)["properties"]["modelUri"].endswith("/paths/diabetes-ridge/2/1/")
    names = {inputs(b)["blobName"] for b in run.of_type("azure-native:storage:Blob")}
    assert "diabetes-ridge/2/1/model.joblib" in names
    assert run.outputs["model"]["name"] == "diabetes-ridge"
    assert run.outputs["model"]["version"] == "2"
    assert run.outputs["model"]["id"] == arm_id(run, version)


def test_model_is_registered_in_every_stack(each_stack) -> None:
    assert len(each_stack.of_type(f"{ML}:ModelVersion")) == 1
    assert set(each_stack.outputs["model"]) == {"name", "version", "id"}
