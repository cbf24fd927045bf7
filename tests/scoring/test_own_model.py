"""The test that would have caught the crash-loop: for every container target, the environment
the program renders for it (mock run), applied to the image's file layout as its Dockerfile
builds it from the program's build context; the host starts, loads the model and scores.

With the sample, and with a second model that is not the sample (an iris classifier with a
dependency of its own, scipy, and a module of its own), once with a requirements file and once
with a conda file. No Docker engine: the layout is rebuilt in a temp dir
(components/platform/image_layout.py) and run by this interpreter, which has the packages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _image_support import clean_env, serve
from _scoring_support import REPO, SEED_PAYLOAD

from components.platform.build_context import BuildContext
from components.platform.image_layout import rebuild
from preview import engine
from scoring.demo import target_envs

OWN = "tests/models/iris_centroid"
IRIS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.3, 1.3]]}
MODELS: dict[str, dict[str, Any]] = {
    "sample": {},
    "own-requirements": {
        "modelName": "iris-centroid",
        "modelVersion": "2",
        "modelPath": f"{OWN}/model",
        "entryScript": f"{OWN}/code/score.py",
        "dependenciesFile": f"{OWN}/requirements.txt",
    },
    "own-conda": {
        "modelName": "iris-centroid",
        "modelVersion": "2",
        "modelPath": f"{OWN}/model",
        "entryScript": f"{OWN}/code/score.py",
        "dependenciesFile": f"{OWN}/environment.yml",
    },
}
CONTAINER_TARGETS = ("app_service", "aci", "container_apps", "aks", "iot_edge", "aml_online")


@pytest.fixture(scope="module", params=list(MODELS))
def rendered(request: pytest.FixtureRequest, run_stack: Any) -> tuple[str, engine.Run]:
    overrides = {**MODELS[request.param], "onlineEndpointEnabled": True, "iotEdgeDeviceHost": ""}
    run = run_stack("dev", **overrides)
    assert run.error is None, run.error
    return request.param, run


def _context(run: engine.Run, image: str) -> BuildContext:
    """The build context the program declared for ``image`` (its path and build arguments)."""
    (resource,) = [r for r in run.of_type("docker:index/image:Image") if r.name == image]
    build = engine.reveal(resource.inputs)["build"]
    path = Path(build["context"])
    return BuildContext(
        path.name.split("-")[0], path, build["args"]["CONTEXT_DIGEST"], build["args"]
    )


def _check_answer(model: str, answer: Any) -> None:
    if model == "sample":
        assert isinstance(answer, list) and len(answer) == 2
        assert all(isinstance(x, float) for x in answer)
    else:
        assert answer == {"labels": ["setosa", "virginica", "versicolor"]}


@pytest.mark.parametrize("target", CONTAINER_TARGETS)
def test_every_container_target_serves_the_model_with_the_programs_environment(
    rendered: tuple[str, engine.Run], target: str, tmp_path: Path
) -> None:
    model, run = rendered
    envs = target_envs(run)
    assert target in envs, sorted(envs)
    env = dict(envs[target])
    ctx = _context(run, "scoring-image")
    if target == "aml_online":  # Azure ML sets it: its mount of the registered model
        name, version = ctx.build_args["MODEL_NAME"], ctx.build_args["MODEL_VERSION"]
        env["AZUREML_MODEL_DIR"] = f"/var/azureml-app/azureml-models/{name}/{version}"
    layout = rebuild(ctx, tmp_path / "image")
    host = serve(layout, env, tmp_path)
    try:
        host.wait_ready()
        r = host.client.post("/score", json=SEED_PAYLOAD if model == "sample" else IRIS)
        assert r.status_code == 200, r.text
        _check_answer(model, r.json())
        status = host.client.get("/status").json()
        assert status["model"] == {
            "name": ctx.build_args["MODEL_NAME"],
            "version": ctx.build_args["MODEL_VERSION"],
        }
        assert status["entry_script"] == str(layout.local("/var/azureml-app/code/score.py"))
    finally:
        # Killed, not stopped: these environments collect data to a storage account this
        # machine cannot reach, and a graceful stop spends ~8 s failing to sign in to flush it.
        # Shutdown with storage down is test_collector.py's; this test is about the start.
        host.kill()


def test_the_function_image_serves_the_model_with_the_programs_settings(
    rendered: tuple[str, engine.Run], tmp_path: Path
) -> None:
    model, run = rendered
    ctx = _context(run, "functions-image")
    layout = rebuild(ctx, tmp_path / "image")
    assert (layout.workdir / "function_app.py").is_file()
    payload = SEED_PAYLOAD if model == "sample" else IRIS
    code = (
        "import asyncio, json, sys; sys.path.insert(0, '.'); import function_app as f; "
        f"r = asyncio.run(f.score_body({json.dumps(json.dumps(payload))}.encode())); "
        "print(r.status); print(r.body.decode())"
    )
    env = clean_env() | layout.with_env(target_envs(run)["functions"])
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=layout.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-2:]
    assert status == "200", result.stdout + result.stderr
    _check_answer(model, json.loads(body))


def test_the_old_program_environment_would_have_crash_looped(
    dev: engine.Run, tmp_path: Path
) -> None:
    """The harness sees the bug this issue fixed: the entry script path the program used to set
    does not exist in the image, and the host exits instead of serving."""
    layout = rebuild(_context(dev, "scoring-image"), tmp_path / "image")
    old = {
        "AZUREML_ENTRY_SCRIPT": "sample_model/score.py",
        "AZUREML_MODEL_DIR": "/var/azureml-app/models",
    }
    host = serve(layout, target_envs(dev)["aci"] | old, tmp_path)
    try:
        assert host.proc.wait(60) != 0
        assert "entry script" in host.log() and "score.py" in host.log()
    finally:
        host.stop()


def test_the_layout_is_the_dockerfiles(run_stack: Any, tmp_path: Path) -> None:
    """The rebuilt image has what the Dockerfile's COPY lines put there, at those paths."""
    run = run_stack("dev", **MODELS["own-conda"])
    layout = rebuild(_context(run, "scoring-image"), tmp_path / "image")
    assert (layout.root / "app" / "scoring" / "app.py").is_file()
    assert (layout.root / "var/azureml-app/code/centroid.py").is_file()
    model_dir = Path(layout.env["AZUREML_MODEL_DIR"])
    assert model_dir == layout.root / "var/azureml-app/azureml-models/iris-centroid/2"
    assert (model_dir / "model" / "centroids.json").read_bytes() == (
        REPO / OWN / "model" / "centroids.json"
    ).read_bytes()
    assert layout.workdir == layout.root / "var" / "azureml-app"
    assert layout.env["PYTHONPATH"] == str(layout.root / "app")


def _aks_pod_env(run: engine.Run) -> dict[str, str]:
    """The scoring pod's environment as the kubelet builds it: the plain values, each
    ``secretKeyRef`` resolved the way the CSI driver fills the synced Secret (the
    SecretProviderClass' object -> the Key Vault secret's value in the graph), and ``$(VAR)``
    expanded. Without the cache (no Redis here)."""
    deployment = run.one("kubernetes:apps/v1:Deployment", "deployment")
    env = engine.reveal(deployment.inputs["spec"]["template"]["spec"]["containers"][0]["env"])
    (spc,) = [engine.reveal(r.inputs) for r in run.resources if r.type.endswith("ProviderClass")]
    objects = {
        (o["secretName"], d["key"]): d["objectName"]
        for o in spc["spec"]["secretObjects"]
        for d in o["data"]
    }
    vault = {
        s.azure_name: str(engine.reveal(s.inputs["properties"])["value"])
        for s in run.of_type("azure-native:keyvault:Secret")
    }
    resolved: dict[str, str] = {}
    for e in env:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            resolved[e["name"]] = vault[objects[(ref["name"], ref["key"])]]
        else:
            value = str(e["value"])
            for name, known in resolved.items():
                value = value.replace(f"$({name})", known)
            resolved[e["name"]] = value
    return {k: v for k, v in resolved.items() if not k.startswith("REDIS_")}


def test_the_aks_pods_start_with_telemetry_and_keys_from_their_synced_secret(
    dev: engine.Run, tmp_path: Path
) -> None:
    """Issue 31.2: the AKS pods' environment (Key Vault -> CSI driver -> Secret -> env) turns the
    host's Application Insights telemetry on, ingesting as the pull identity."""
    run = dev
    env = _aks_pod_env(run)
    assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"].startswith("InstrumentationKey=")
    layout = rebuild(_context(run, "scoring-image"), tmp_path / "image")
    host = serve(layout, env, tmp_path)
    try:
        host.wait_ready()
        primary = engine.reveal(run.outputs["endpoints"]["aks"]["auth"]["key"])
        assert host.client.post("/score", json=SEED_PAYLOAD).status_code == 401
        scored = host.client.post(
            "/score", json=SEED_PAYLOAD, headers={"Authorization": f"Bearer {primary}"}
        )
        assert scored.status_code == 200, scored.text
        status = host.client.get("/status", headers={"Authorization": f"Bearer {primary}"})
        telemetry = status.json()["telemetry"]
        assert telemetry["enabled"] is True and telemetry["error"] is None
        assert telemetry["entra_id"] is True  # APPLICATIONINSIGHTS_AUTHENTICATION_STRING
        assert "telemetry on" in host.log()
    finally:
        host.kill()  # as above: its stop would try to flush to Azure, unreachable here
