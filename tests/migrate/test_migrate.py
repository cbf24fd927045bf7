"""The v1 examples of Microsoft's documentation become these stack keys, and nothing else."""

from __future__ import annotations

from pathlib import Path

from migrate.paths import stack_path
from tests.migrate.v1_docs import (
    ACI_JSON,
    ACI_YAML,
    AKS_JSON,
    AKS_YAML,
    INFERENCE_JSON,
    INFERENCE_YAML,
    MODEL,
    project,
)

SWITCHED_OFF = {
    "appServiceEnabled": False,
    "containerAppsEnabled": False,
    "functionsEnabled": False,
    "acceleratorEnabled": False,
    "iotEnabled": False,
    "onlineEndpointEnabled": False,
    "batchEnabled": False,
}


def _model_and_code(root: Path) -> dict[str, object]:
    return {
        "modelName": "diabetes-ridge",
        "modelVersion": "1",
        "modelPath": stack_path(MODEL),
        "entryScript": stack_path(root / "score.py"),
        "dependenciesFile": stack_path(root / "myenv.yml"),
    }


def test_the_documented_aks_and_aci_configs_write_every_key_they_describe(migrate, tmp_path):
    v1 = project(
        tmp_path / "v1",
        {"inferenceconfig.json": INFERENCE_JSON, "aks.json": AKS_JSON, "aci.json": ACI_JSON},
    )
    done = migrate(v1 / "inferenceconfig.json", v1 / "aks.json", v1 / "aci.json")
    assert done.values == {
        **_model_and_code(v1),
        # aks.json: autoscaling 1-3 at 70%, data collection, 0.5 CPU / 1 GB per pod
        "aksEnabled": True,
        "autoscaleEnabled": True,
        "autoscaleMinReplicas": 1,
        "autoscaleMaxReplicas": 3,
        "autoscaleTargetUtilization": 70,
        "dataCollectionEnabled": True,
        "aksCpuMillicores": 500,
        "aksMemoryMib": 1024,
        # aci.json: 0.5 CPU, 1 GB
        "aciEnabled": True,
        "aciCpu": "0.5",
        "aciMemoryGb": "1",
        **SWITCHED_OFF,
    }
    rows = done.out
    for field in (
        "runtime = python",
        "autoScaler.refreshPeriodInSeconds = 1",
        "authEnabled = true",
        "sslEnabled = false",
        "appInsightsEnabled = false",
        "enableGpu = false",
    ):
        assert f"  {field}\n" in rows, field
    assert "the aks endpoint always checks a key" in rows
    assert "telemetry is always on" in rows
    assert "Fields: 16 mapped, 5 built in, 2 no equivalent" in rows


def test_the_aks_endpoint_needs_its_tls_host_the_v1_files_cannot_give(migrate, tmp_path):
    """v1's documented AKS config has no TLS; the program's AKS endpoint is HTTPS by default, so
    the program's own validation asks for the host and certificate, and the exit is 1."""
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON, "aks.json": AKS_JSON})
    done = migrate(v1 / "i.json", v1 / "aks.json")
    assert done.code == 1
    assert "INVALID, 2 problem(s)" in done.out
    assert "mlscore:aksTlsHost" in done.out and "mlscore:aksTlsCertificateName" in done.out
    assert done.stack_file.exists()  # written, so the two keys can be added to it


def test_plain_http_as_v1_served_it_is_a_valid_stack(migrate, tmp_path):
    aks = AKS_JSON.replace('"authEnabled": true,', '"authEnabled": true, "sslEnabled": false,')
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON, "aks.json": aks, "aci.json": ACI_JSON})
    done = migrate(v1 / "i.json", v1 / "aks.json", v1 / "aci.json")
    assert done.code == 0, done.out
    assert (done.values["aksTlsEnabled"], done.values["aksAllowHttp"]) == (False, True)
    assert "valid." in done.out and "key crosses the network in the clear" in done.out


def test_the_yaml_form_the_cli_took(migrate, tmp_path):
    v1 = project(
        tmp_path / "v1",
        {"inferenceConfig.yml": INFERENCE_YAML, "aks.yml": AKS_YAML, "aci.yml": ACI_YAML},
    )
    done = migrate(v1 / "inferenceConfig.yml", v1 / "aks.yml", v1 / "aci.yml")
    assert done.values == {
        **_model_and_code(v1),
        "scoringTimeoutMs": 1000,
        "aksEnabled": True,
        "autoscaleEnabled": True,
        "autoscaleMinReplicas": 1,
        "autoscaleMaxReplicas": 3,
        "autoscaleTargetUtilization": 70,
        "maxConcurrentRequestsPerContainer": 2,
        "maxRequestWaitTimeMs": 1000,
        "aksCpuMillicores": 1000,
        "aksMemoryMib": 512,
        "aksTlsEnabled": False,
        "aksAllowHttp": True,
        "aciEnabled": True,
        "aciCpu": "1",
        "aciMemoryGb": "1",
        **SWITCHED_OFF,
    }
    words = " ".join(done.out.split())
    assert "maxQueueWaitMs = 1000 -> maxRequestWaitTimeMs: 1000" in words
    assert done.code == 0, done.out


def test_numreplicas_is_a_fixed_count_without_autoscaling(migrate, tmp_path):
    aks = '{"computeType": "aks", "numReplicas": 2, "sslEnabled": false}'
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON, "aks.json": aks})
    done = migrate(v1 / "i.json", v1 / "aks.json")
    values = done.values
    assert (values["autoscaleEnabled"], values["autoscaleMinReplicas"]) == (False, 2)
    assert values["autoscaleMaxReplicas"] == 2 and values["aciEnabled"] is False


def test_paths_are_relative_to_source_directory_and_a_wider_one_is_reported(migrate, tmp_path):
    v1 = project(
        tmp_path / "v1" / "src" / "scoring",
        {"../utils/features.py": "X = 1\n", "steps.txt": "RUN apt-get install -y libgomp1\n"},
    ).parent.parent
    (v1 / "i.json").write_text(
        '{"entryScript": "scoring/score.py", "condaFile": "scoring/myenv.yml",'
        ' "sourceDirectory": "src", "extraDockerfileSteps": "scoring/steps.txt"}'
    )
    (v1 / "aci.json").write_text(ACI_JSON)
    done = migrate(v1 / "i.json", v1 / "aci.json", extra=("--accept-losses",))
    assert done.values["entryScript"] == stack_path(v1 / "src" / "scoring" / "score.py")
    out = done.out
    assert "Not carried over: 2 part(s)" in out and "Written anyway" in out
    assert "only part of it reaches the image" in out and "utils/features.py" in out
    assert "from scoring.score import init, run" in out
    assert "      | RUN apt-get install -y libgomp1" in out  # the steps are shown, not applied


def test_files_next_to_the_inference_config_are_found_from_any_directory(
    migrate, tmp_path, monkeypatch
):
    v1 = project(tmp_path / "v1", {"i.json": INFERENCE_JSON, "aci.json": ACI_JSON})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    done = migrate(v1 / "i.json", v1 / "aci.json")
    assert done.code == 0, done.out + done.err
    assert done.values["entryScript"] == stack_path(v1 / "score.py")


def test_the_runtime_row_says_which_pythons_the_images_run() -> None:
    """v1's runtime "python" (and "spark-py", refused): the images run 3.10-3.13 as the user's
    environment says (issue 28), not one Python."""
    from components.platform.settings import DEFAULT_PYTHON, PYTHON_VERSIONS
    from migrate.explain import runtime

    python = runtime("python", None)  # type: ignore[arg-type]  # the context is not read
    assert python.built_in and not python.lost
    assert "3.10, 3.11, 3.12 or 3.13" in python.why and set(PYTHON_VERSIONS) == {
        "3.10", "3.11", "3.12", "3.13"}  # fmt: skip
    assert "python=" in python.why and "mlscore:pythonVersion" in python.why
    assert f"else {DEFAULT_PYTHON}" in python.why and "Python 3.11 (" not in python.why
    spark = runtime("spark-py", None)  # type: ignore[arg-type]
    assert spark.lost and spark.why.startswith("no spark-py runtime: the images run the Python")
