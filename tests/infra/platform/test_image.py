"""The images under mocks with the real stack files: built from the context the program
assembles, tagged with its digest, with the model Azure ML registers byte for byte the one the
images carry, and no target overriding where the image put the script and the model."""

from __future__ import annotations

import shutil
from pathlib import Path

from components import PROJECT_ROOT
from preview import engine

OWN = PROJECT_ROOT / "tests" / "models" / "iris_centroid"
DOCKER_IMAGE = "docker:index/image:Image"


def _images(run: engine.Run) -> dict[str, dict]:
    return {r.name: engine.reveal(r.inputs) for r in run.of_type(DOCKER_IMAGE)}


def _own_config(root: Path) -> dict[str, str]:
    return {
        "modelName": "iris-centroid",
        "modelVersion": "3",
        "modelPath": str(root / "model"),
        "entryScript": str(root / "code" / "score.py"),
        "dependenciesFile": str(root / "environment.yml"),
    }


def test_both_images_build_from_an_assembled_context_tagged_with_its_digest(dev) -> None:
    images = _images(dev)
    assert set(images) == {"scoring-image", "functions-image"}
    for name, i in images.items():
        build = i["build"]
        context = Path(build["context"])
        assert context.parent == PROJECT_ROOT / ".local" / "build"
        assert Path(build["dockerfile"]) == context / "Dockerfile"
        digest = build["args"]["CONTEXT_DIGEST"]
        assert context.name == f"{context.name.split('-')[0]}-{digest[:16]}"
        assert build["args"]["MODEL_NAME"] == "diabetes-ridge"
        assert build["args"]["ENTRY_SCRIPT"] == "score.py"
        assert build["args"]["MODEL_SOURCE"] == "aml/model/diabetes-ridge/1"
        assert build["args"]["ENTRY_SCRIPT_SOURCE"] == "scoring/sample_model/score.py"
        assert i["imageName"].endswith(f":diabetes-ridge-1-{digest[:12]}"), (name, i["imageName"])
        assert build["platform"] == "linux/amd64" and i["buildOnPreview"] is False
    assert (
        images["scoring-image"]["build"]["args"]["CONTEXT_DIGEST"]
        != (images["functions-image"]["build"]["args"]["CONTEXT_DIGEST"])
    )


def test_two_runs_give_the_same_tag_and_one_changed_byte_a_new_one(tmp_path) -> None:
    own = tmp_path / "iris"
    shutil.copytree(OWN, own, ignore=shutil.ignore_patterns("__pycache__"))

    def run_stack(stack: str, **overrides: str) -> engine.Run:  # a fresh run each time: the
        return engine.run(stack, overrides, preview=False)  # files change between the runs

    first, second = run_stack("dev", **_own_config(own)), run_stack("dev", **_own_config(own))
    assert first.error is None and second.error is None, first.error or second.error
    tags = [{n: i["imageName"] for n, i in _images(r).items()} for r in (first, second)]
    assert tags[0] == tags[1] and ":iris-centroid-3-" in tags[0]["scoring-image"]
    model = own / "model" / "centroids.json"
    model.write_bytes(model.read_bytes().replace(b"5.006", b"5.007"))
    third = run_stack("dev", **_own_config(own))
    changed = {n: i["imageName"] for n, i in _images(third).items()}
    assert changed["scoring-image"] != tags[0]["scoring-image"]
    assert changed["functions-image"] != tags[0]["functions-image"]


def test_azure_ml_registers_the_bytes_the_image_carries(run_stack, tmp_path) -> None:
    own = tmp_path / "iris"
    shutil.copytree(OWN, own, ignore=shutil.ignore_patterns("__pycache__"))
    run = run_stack("dev", **_own_config(own))
    assert run.error is None, run.error
    context = Path(_images(run)["scoring-image"]["build"]["context"])
    blobs = run.of_type("azure-native:storage:Blob")
    model_blobs = [b for b in blobs if b.inputs["blobName"].startswith("iris-centroid/3/")]
    assert [b.inputs["blobName"] for b in model_blobs] == ["iris-centroid/3/model/centroids.json"]
    source = Path(model_blobs[0].inputs["source"].path)
    assert source == context / "model" / "model" / "centroids.json"
    assert source.read_bytes() == (own / "model" / "centroids.json").read_bytes()
    (version,) = run.of_type("azure-native:machinelearningservices:ModelVersion")
    props = engine.reveal(version.inputs)["properties"]
    assert props["modelUri"].endswith(
        "/paths/iris-centroid/3/model/"
    )  # the folder, as in the image
    assert str(own / "model") in props["description"]


def test_a_model_file_is_registered_as_that_file(run_stack) -> None:
    run = run_stack("dev", modelPath="aml/model/diabetes-ridge/1/model.joblib")
    assert run.error is None, run.error
    (version,) = run.of_type("azure-native:machinelearningservices:ModelVersion")
    uri = engine.reveal(version.inputs)["properties"]["modelUri"]
    assert uri.endswith("/paths/diabetes-ridge/1/model.joblib")


def test_no_target_overrides_where_the_image_put_the_script_and_the_model(dev, prod) -> None:
    for run in (dev, prod):
        for r in run.resources:
            text = repr(engine.reveal(r.inputs))
            assert "AZUREML_ENTRY_SCRIPT" not in text, (r.type, r.name)
            if r.type != DOCKER_IMAGE:
                assert "AZUREML_MODEL_DIR" not in text, (r.type, r.name)
