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
    assert "errors/<file>-<hash>.jsonl" in out["output"]
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


# --- the batch runtime in the scoring image ------------------------------------------------------
BATCH_REQUIREMENTS = Path(DRIVER).parent / "requirements-batch.txt"


def test_the_batch_runtime_is_what_azure_ml_says_batch_deployments_need() -> None:
    """ "The packages azureml-core and azureml-dataset-runtime[fuse] are required by batch
    deployments" (https://learn.microsoft.com/azure/machine-learning/
    how-to-use-batch-model-deployments)."""
    from packaging.requirements import Requirement

    reqs = [
        Requirement(line)
        for line in BATCH_REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {(r.name, tuple(r.extras)) for r in reqs} == {
        ("azureml-core", ()),
        ("azureml-dataset-runtime", ("fuse",)),
    }


def test_the_image_carries_the_batch_runtime_only_with_batch_on(prod, run_stack) -> None:
    def build_args(run: engine.Run) -> dict[str, str]:
        return inputs(run.one("docker:index/image:Image", "scoring-image"))["build"]["args"]

    off = run_stack("dev", batchEnabled=False)
    assert off.error is None, off.error
    assert build_args(prod)["BATCH_RUNTIME"] == "true"
    assert build_args(off)["BATCH_RUNTIME"] == "false"


@pytest.mark.parametrize("batch", [True, False])
def test_the_install_step_resolves_the_batch_runtime_with_the_rest(batch, tmp_path) -> None:
    """The Dockerfile's build stage (as scoring/localenv.py runs it for the local run) installs
    scoring/requirements-batch.txt in its one ``pip install`` when BATCH_RUNTIME is true, and
    not otherwise: a ``pip`` on PATH that records its arguments stands for pip."""
    from dataclasses import replace

    from components.platform.build_context import assemble
    from scoring.localenv import _install_step

    model = replace(settings_of("dev").model, batch_runtime=batch)
    ctx = assemble(model, root=tmp_path / "ctx")
    command, _ = _install_step(ctx)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pip").write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$PIP_ARGS"\n')
    (bin_dir / "pip").chmod(0o755)
    args = tmp_path / "args"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PIP_ARGS": str(args)}
    subprocess.run(["/bin/sh", "-c", command], env=env, check=True, timeout=30)
    install, check = args.read_text().splitlines()
    files = [ctx.path / "scoring" / "requirements.txt", ctx.path / "user-requirements.txt"]
    if batch:
        files.insert(1, ctx.path / "scoring" / "requirements-batch.txt")
    assert install == "install " + " ".join(f"-r {f}" for f in files) and check == "check"


def test_a_user_pin_against_the_batch_runtime_is_refused_by_file_and_line(tmp_path) -> None:
    """azureml-core caps ``packaging`` (<26 in 1.60+, uv pip compile): a user's
    ``packaging>=26`` would fail the image build of a stack with batch on, so the pre-deploy
    resolution refuses it, naming the file and the line; with batch off it is fine."""
    from components.config.reader import Reader
    from components.platform.settings import read_model

    deps = tmp_path / "requirements.txt"
    sample = (Path(DRIVER).parent / "sample_model" / "requirements.txt").read_text()
    deps.write_text(sample + "packaging>=26\n")
    line = len(sample.splitlines()) + 1
    config, _ = engine.stack_config("dev")
    values = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("mlscore:")}
    values["dependenciesFile"] = str(deps)

    def problems(batch: bool) -> list[str]:
        r = Reader({**values, "batchEnabled": batch}.get)
        read_model(r)
        return [str(p) for p in r.problems]

    (refused,) = problems(True)
    assert refused.startswith("mlscore:dependenciesFile")
    assert f"requirements.txt line {line} ('packaging>=26')" in refused
    assert "azureml-core" in refused
    assert problems(False) == []


def test_the_test_models_resolve_with_the_batch_runtime() -> None:
    """The sample model's requirements resolve with it (the dev and prod stacks, batch on, run
    that resolution); the iris test model's too, for the image's Python."""
    from components.config import user_env

    iris = user_env.read(
        Path(DRIVER).parents[1] / "tests" / "models" / "iris_centroid" / "requirements.txt"
    )
    res = user_env.resolve(iris.lines, "3.11", extra=user_env.batch_files(True))
    assert res.status == "ok", res.detail
    pins = dict(ln.split("==", 1) for ln in res.pins.split() if "==" in ln)
    assert "azureml-core" in pins and "azureml-dataset-runtime" in pins and "scipy" in pins


def test_a_python_the_batch_runtime_lacks_is_refused_naming_batch_and_python(monkeypatch) -> None:
    """azureml-dataprep-native (under azureml-dataset-runtime) has no cp313 wheel, so with batch
    on Python 3.13 cannot resolve whatever the user's lines say (uv pip compile takes ~25 s to
    say so: its explanation, which names none of the user's lines, stands in here). The refusal
    names batchEnabled and pythonVersion, not the user's file."""
    from components.config import user_env
    from components.config.reader import Reader
    from components.platform.settings import read_model

    seen: list[tuple[Path, ...]] = []

    def resolve(lines, python, extra=(), **_):
        seen.append(extra)
        why = "azureml-dataprep-native==41.0.0 has no wheels with a matching Python ABI tag"
        return user_env.Resolution("failed", why) if extra else user_env.Resolution("ok")

    monkeypatch.setattr(user_env, "resolve", resolve)
    config, _ = engine.stack_config("dev")
    values = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("mlscore:")}
    r = Reader({**values, "pythonVersion": "3.13"}.get)
    read_model(r)
    (problem,) = [str(p) for p in r.problems]
    assert problem.startswith("mlscore:batchEnabled, mlscore:pythonVersion = 'true, Python 3.13'")
    assert (
        "no wheels with a matching Python ABI tag" in problem and "batchEnabled to false" in problem
    )
    assert seen == [(BATCH_REQUIREMENTS,)]
