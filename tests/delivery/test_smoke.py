"""``python -m client smoke`` against the REAL scoring host (``python -m scoring`` with bearer
keys, standing in for every deployed target) and against broken ones: a wrong key, an answer
that differs from the local run, a target that does not listen. The local run is the stack's own
build context (model, entry script and dependencies of its config, ``--set`` overrides and
``--stack-file`` included), started by the command itself; the table names its model."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from _scoring_support import _launch

from client.outputs import StackOutputs
from client.reference import check_deployed_model, local_host, stack_build
from client.smoke import SAMPLE_PAYLOAD, Row, reference_answer, run_smoke, same_answer, table
from preview import engine

from .conftest import GOOD_KEY, json_body

ROOT = Path(__file__).resolve().parents[2]


def pointed_at(dev_outputs: dict[str, Any], base: str, key: str) -> dict[str, Any]:
    """The real dev outputs with every endpoint pointed at ``base`` with a bearer key."""
    out = copy.deepcopy(dev_outputs)
    for entry in out["endpoints"].values():
        entry["scoring_uri"] = f"{base}/score"
        entry["auth"] = {"scheme": "bearer-key", "key": key}
    return out


IRIS = "tests/models/iris_centroid"
IRIS_BUILD = {  # a user's own model: its own script, model folder and dependency (scipy)
    "modelName": "iris-centroid",
    "modelVersion": "2",
    "modelPath": f"{IRIS}/model",
    "entryScript": f"{IRIS}/code/score.py",
    "dependenciesFile": f"{IRIS}/requirements.txt",
}
SAMPLE_REFERENCE = (
    "reference: local run of model diabetes-ridge:1 (aml/model/diabetes-ridge/1), entry script "
    "scoring/sample_model/score.py, dependencies scoring/sample_model/requirements.txt; "
    "stack dev's build context "
)


def smoke_cli(
    tmp_path: Path,
    outputs: dict[str, Any],
    *extra: str,
    stack: tuple[str, ...] = ("--stack", "dev"),
) -> subprocess.CompletedProcess:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return subprocess.run(
        [sys.executable, "-m", "client", "smoke", "--outputs", str(path), *stack, *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_target_green_against_the_local_host(keyed_host, dev_outputs, tmp_path: Path):
    proc = smoke_cli(tmp_path, pointed_at(dev_outputs, keyed_host.url, GOOD_KEY))
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(SAMPLE_REFERENCE)  # the model the answers were compared with
    assert lines[1].split() == ["target", "status", "latency", "match", "result"]
    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert set(rows) == set(dev_outputs["endpoints"])
    for cells in rows.values():
        assert cells[1] == "200" and cells[3] == "ms" and cells[4] == "yes" and cells[5] == "ok"
    n = len(dev_outputs["endpoints"])
    assert lines[-1] == f"{n}/{n} targets ok"


def test_a_broken_deploy_exits_non_zero_and_says_which_target_and_why(
    keyed_host, dev_outputs, scripted, tmp_path: Path
):
    outputs = pointed_at(dev_outputs, keyed_host.url, GOOD_KEY)
    eps = outputs["endpoints"]
    eps["aks"]["auth"]["key"] = "rotated-away"  # the host refuses it: 401
    wrong = scripted((200, {"Content-Type": "application/json"}, json_body([1.0, 2.0])))
    eps["app_service"]["scoring_uri"] = f"{wrong.url}/score"  # another model answers
    eps["aci"]["scoring_uri"] = f"http://127.0.0.1:{closed_port()}/score"  # nothing listens

    proc = smoke_cli(tmp_path, outputs, "--timeout", "10")
    print(proc.stdout)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[2:-1]}
    assert (
        "401" in rows["aks"]
        and "FAIL: " in rows["aks"]
        and "refused the credentials" in rows["aks"]
    )
    assert (
        " no " in rows["app_service"] and "answered [1.0, 2.0], local run [" in rows["app_service"]
    )
    assert "FAIL: cannot connect" in rows["aci"]
    ok = [name for name, line in rows.items() if line.endswith(" ok")]
    assert set(ok) == set(eps) - {"aks", "app_service", "aci"}
    assert proc.stdout.splitlines()[-1].endswith(", 3 failed")


def test_a_payload_the_build_rejects_is_a_client_error(dev_outputs, tmp_path: Path):
    data = tmp_path / "bad.json"
    data.write_text(json.dumps({"data": "not rows"}))
    proc = smoke_cli(tmp_path, dev_outputs, "--data", str(data))
    assert proc.returncode == 2
    assert "the local reference" in proc.stderr and "answered 400" in proc.stderr


def test_the_local_run_is_the_stacks_build(keyed_host):
    build = stack_build("org/mlscore/dev")  # as deploy.yml passes it
    assert build.stack == "dev" and build.model == "diabetes-ridge:1"
    assert build.entry_script == "scoring/sample_model/score.py"
    assert build.model_source == "aml/model/diabetes-ridge/1"
    assert (build.context.path / "model" / "1" / "model.joblib").is_file()  # the image's bytes
    with local_host(build) as url:
        local = reference_answer(url, SAMPLE_PAYLOAD)
    deployed = keyed_host.client.post(
        "/score", json=SAMPLE_PAYLOAD, headers={"Authorization": f"Bearer {GOOD_KEY}"}
    ).json()
    assert same_answer(local, deployed) and len(local) == 2


# --- a user's own model: the reference is its build, not the sample's ---------------------------
@pytest.fixture(scope="module")
def iris_deployed(run_stack, tmp_path_factory: pytest.TempPathFactory):
    """dev deployed with the iris model (the program's real outputs for that config), every
    endpoint served by the real host running the iris script and model with bearer keys."""
    outputs = engine.to_json(run_stack("dev", **IRIS_BUILD).outputs, show_secrets=True)
    host = _launch(
        ROOT / IRIS / "code" / "score.py",
        ROOT / IRIS,  # AZUREML_MODEL_DIR: the registered folder model/ is under it
        {"SCORING_AUTH_KEYS": GOOD_KEY},
        tmp_path_factory.mktemp("iris-host"),
        True,
    )
    yield pointed_at(outputs, host.url, GOOD_KEY)
    host.stop()


def test_a_deploy_of_the_users_model_is_compared_with_its_own_build(iris_deployed, tmp_path):
    sets = [a for k, v in IRIS_BUILD.items() for a in ("--set", f"{k}={v}")]
    proc = smoke_cli(tmp_path, iris_deployed, *sets)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith(
        "reference: local run of model iris-centroid:2 (tests/models/iris_centroid/model), "
        "entry script tests/models/iris_centroid/code/score.py, dependencies "
        "tests/models/iris_centroid/requirements.txt; stack dev's build context "
    )
    n = len(iris_deployed["endpoints"])
    assert proc.stdout.splitlines()[-1] == f"{n}/{n} targets ok"


def test_outputs_of_another_model_than_the_build_are_refused(iris_deployed, tmp_path):
    """The sample's build against a deploy of the iris model: the outputs name the model they
    registered, and the smoke says which stack to pass instead of reporting every target FAIL."""
    proc = smoke_cli(tmp_path, iris_deployed)
    assert proc.returncode == 2
    assert "deployed with model iris-centroid:2, the build of stack dev has diabetes-ridge:1" in (
        proc.stderr
    )


def test_outputs_alone_do_not_say_which_build_to_compare_with(dev_outputs, tmp_path):
    proc = smoke_cli(tmp_path, dev_outputs, stack=())
    assert proc.returncode == 2 and "Pass --stack NAME" in proc.stderr


def test_the_build_follows_the_stack_file(tmp_path):
    stack_file = tmp_path / "Pulumi.mine.yaml"  # dev's file, the iris model in it
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    config["config"] |= {f"mlscore:{k}": v for k, v in IRIS_BUILD.items()}
    stack_file.write_text(yaml.safe_dump(config))
    build = stack_build("mine", stack_file=stack_file)
    assert build.model == "iris-centroid:2" and build.stack == "mine"
    assert (build.context.path / "user-requirements.txt").read_text().count("scipy") == 1
    with pytest.raises(Exception, match="deployed with model diabetes-ridge:1"):
        check_deployed_model(build, {"model": {"name": "diabetes-ridge", "version": "1"}})


def test_run_smoke_needs_an_endpoint():
    from client.errors import ClientError

    with pytest.raises(ClientError, match="exports no endpoint"):
        run_smoke(StackOutputs({"endpoints": {}}, "f"), SAMPLE_PAYLOAD, [1.0])


def test_answers_compare_as_json_with_float_noise():
    assert same_answer([1.0, {"a": 2}], [1.0 + 1e-12, {"a": 2.0}])
    assert not same_answer([1.0], [1.1]) and not same_answer([1.0], [1.0, 2.0])
    assert not same_answer({"a": 1}, {"b": 1}) and not same_answer(True, 1)


def test_table_marks_failures_and_names_the_reference():
    text = table([Row("a", "200", 12.3, True), Row("b", "503", 40.0, False, "busy")], "model m:1")
    assert text.splitlines()[0] == "reference: model m:1"
    assert text.splitlines()[2].endswith("ok") and "FAIL: busy" in text.splitlines()[3]
    assert text.splitlines()[-1] == "1/2 targets ok, 1 failed"


# --- the workflows run it, and check drift ------------------------------------------------------
def _workflow(name: str) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_the_deploy_workflow_smoke_tests_each_stack_right_after_its_up():
    jobs = _workflow("deploy.yml")["jobs"]
    for job, stack in ((jobs["dev"], "dev"), (jobs["prod"], "prod")):
        steps = job["steps"]
        up = next(i for i, s in enumerate(steps) if s.get("with", {}).get("command") == "up")
        smoke = steps[up + 1]
        assert smoke["run"] == '.venv/bin/python -m client smoke --stack "$STACK"'
        assert smoke["env"]["STACK"].endswith(f"/mlscore/{stack}")
        assert steps[up]["with"]["stack-name"] == smoke["env"]["STACK"]


def test_the_drift_workflow_previews_each_stack_with_refresh_and_no_changes_expected():
    import re

    wf = _workflow("drift.yml")
    assert "schedule" in wf["on"] and wf["on"]["schedule"][0]["cron"]
    assert wf["permissions"] == {}
    (job,) = wf["jobs"].values()
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job.get("environment") != "production"  # a scheduled run must not wait for a reviewer
    (preview,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    args = preview["with"]
    assert args["command"] == "preview"
    assert args["refresh"] is True and args["expect-no-changes"] is True
    assert args["stack-name"].endswith("/mlscore/${{ matrix.stack }}")
    text = (ROOT / ".github" / "workflows" / "drift.yml").read_text()
    for ref in re.findall(r"uses:\s*(\S+)", text):
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
    assert "secrets." not in text


# --- binary payloads (@rawhttp scripts) -----------------------------------------------------------
def test_a_binary_payload_is_sent_as_it_is_and_answers_compared_byte_for_byte(
    dev_outputs, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
):
    """`--data FILE --content-type TYPE`: the bytes go as they are; the reversing @rawhttp script
    of the seeds answers bytes, compared with the local run's bytes."""
    raw = ROOT / "tests" / "scoring" / "scripts" / "raw.py"
    host = _launch(raw, None, {"SCORING_AUTH_KEYS": GOOD_KEY}, tmp_path_factory.mktemp("raw"), True)
    local = _launch(raw, None, None, tmp_path_factory.mktemp("raw-local"), True)
    try:
        data = tmp_path / "blob.bin"
        data.write_bytes(bytes(range(256)))
        outputs = pointed_at(dev_outputs, host.url, GOOD_KEY)
        args = ("--data", str(data), "--content-type", "application/octet-stream")
        proc = smoke_cli(tmp_path, outputs, *args, "--local", local.url, stack=())
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.splitlines()[0] == f"reference: model model:0 at {local.url}"
        assert proc.stdout.splitlines()[-1].endswith("targets ok")
    finally:
        host.stop()
        local.stop()
