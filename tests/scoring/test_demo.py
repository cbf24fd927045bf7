"""The local run (python -m scoring.demo): what a stack deploys, served here and scored.

It assembles the build context ``pulumi up`` would, lays it out as the Dockerfile does, starts
the host with the environment the program gives the target, and prints the answers whatever
their status: for the sample (the seed payload), a model of one's own (the sample input of its
schema) and payload files of any bytes. A local run never talks to Azure: collected data goes
to a local folder in Azure ML's layout, telemetry nowhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from _scoring_support import REPO

from client.reference import image_environment
from migrate.__main__ import main as migrate
from scoring.demo import choose_target, main, target_envs
from scoring.demo_http import Answer, read_payload, shown
from tests.migrate.v1_docs import MODEL

OWN = "tests/models/iris_centroid"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "AZUREML_"))}


def _demo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scoring.demo", *args],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _answers(stdout: str, label: str = "") -> list[tuple[str, str]]:
    """(status, body) of each ``POST /score`` line (for payload ``label``)."""
    found = re.findall(rf"^POST /score{label} #\d -> (.+?) \(cache: \w+\) (.*)$", stdout, re.M)
    assert found, stdout
    return found


def test_the_sample_scores_in_a_few_lines_and_collects_data_in_a_local_folder(
    tmp_path: Path,
) -> None:
    result = _demo("--stack", "dev", "--out", str(tmp_path))
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    lines = out.splitlines()
    assert re.match(r"stack dev: \d+ resources in \d+ components; ", lines[0]), lines[0]
    assert "(the whole plan: python -m preview dev)" in lines[0]
    assert "app_service's environment; model diabetes-ridge:1" in lines[1]
    (first, body), (second, again) = _answers(out)
    assert first == second == "200 OK" and body == again and len(json.loads(body)) == 2
    assert len(lines) <= 10, out  # no plan, no banner: the host's output is in its log
    log = tmp_path / "host.log"
    assert f"host log: {log}" in out and "Azure ML Inferencing HTTP server" in log.read_text()
    assert "telemetry off, data collection on" in log.read_text()
    # Azure ML's layout, in the folder it names; no storage account, no sign-in attempted
    folder = tmp_path / "modeldata" / "modelDataCollector" / "app_service" / "diabetes-ridge-1"
    assert f"collected data (Azure ML's layout): {tmp_path / 'modeldata'}" in out
    inputs = list((folder / "model_inputs").glob("????/??/??/??/*.jsonl"))
    assert len(inputs) == 1, out
    records = [json.loads(line) for line in inputs[0].read_text().splitlines()]
    assert [r["type"] for r in records] == ["azureml.inference.model_inputs"] * 2
    assert records[0]["data"][0] == {str(i): i + 1 for i in range(10)}
    assert "Credential" not in log.read_text() + out + result.stderr


def test_an_own_model_from_a_stack_file_anywhere_is_served_with_its_schemas_sample_input(
    tmp_path: Path,
) -> None:
    stack_file = tmp_path / "Pulumi.mine.yaml"
    shutil.copy(REPO / "Pulumi.dev.yaml", stack_file)
    result = _demo(
        "--stack-file", str(stack_file), "--target", "aks", "--out", str(tmp_path / "out"),
        "--set", f"modelPath={OWN}/model",
        "--set", f"entryScript={OWN}/code/score.py",
        "--set", f"dependenciesFile={OWN}/environment.yml",
        "--set", "modelName=iris-centroid",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("stack mine: ")
    assert "aks's environment; model iris-centroid:1" in result.stdout
    assert [json.loads(b) for _, b in _answers(result.stdout)] == [
        {"labels": ["setosa", "virginica"]}
    ] * 2


def test_binary_payloads_and_error_answers_are_printed_and_keep_stays_up(tmp_path: Path) -> None:
    """The seeds' @rawhttp script: bytes in, bytes out; b"fail" answers 503 with a body."""
    (tmp_path / "image.bin").write_bytes(bytes(range(250, 256)) + b"\x00\x01")
    (tmp_path / "fail.dat").write_bytes(b"fail")
    demo = subprocess.Popen(
        [sys.executable, "-m", "scoring.demo", "--keep", "--out", str(tmp_path / "out"),
         "--set", "entryScript=tests/scoring/scripts/raw.py",
         "--data", str(tmp_path / "image.bin"), "--data", str(tmp_path / "fail.dat"),
         "--content-type", "application/octet-stream"],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        seen = []
        assert demo.stdout is not None
        for line in demo.stdout:
            seen.append(line)
            if line.startswith("serving "):
                break
        out = "".join(seen)
        assert (
            _answers(out, " image.bin")
            == [("200 OK", "<8 bytes, application/octet-stream> 01 00 ff fe fd fc fb fa")] * 2
        )
        assert _answers(out, " fail.dat") == [("503 Service Unavailable", "the script says no")] * 2
        url = out.splitlines()[-1].split()[1]  # serving URL until Ctrl-C
        assert demo.poll() is None  # still serving after the 503s
        request = urllib.request.Request(url, data=b"abc", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.read() == b"cba"
    finally:
        demo.send_signal(signal.SIGINT)
        _, err = demo.communicate(timeout=60)
    assert demo.returncode == 1  # an answer was not 2xx
    assert "Traceback" not in err, err


def test_mistakes_are_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*argv: str) -> str:
        with pytest.raises(SystemExit) as exc:
            main(list(argv))
        assert exc.value.code not in (0, None)
        return str(exc.value.code)

    assert "mlscore:entryScript" in refused("--set", "entryScript=nope/score.py")
    assert "no stack file Pulumi.nope.yaml; stacks here: dev" in refused("--stack", "nope")
    assert f"no stack file {tmp_path}/Pulumi.x.yaml" in refused(
        "--stack-file", str(tmp_path / "Pulumi.x.yaml")
    )
    assert "is not Pulumi.<stack>.yaml" in refused("--stack-file", str(tmp_path / "x.yaml"))
    assert "--data" in refused("--data", str(tmp_path / "missing.json"))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    assert "no docker command" in refused("--docker")
    assert "POST /score" not in capsys.readouterr().out


def test_docker_mode_refuses_without_its_daemon(tmp_path: Path, monkeypatch) -> None:
    if shutil.which("docker") is None:  # the missing command is checked above
        return
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(SystemExit, match="Docker daemon is not reachable"):
        main(["--docker"])


def test_a_target_is_one_the_stack_deploys() -> None:
    envs = {"aks": {}, "iot_edge": {}, "functions": {}}
    assert choose_target(envs, None, "s") == "aks"
    assert choose_target(envs, "iot_edge", "s") == "iot_edge"
    with pytest.raises(
        SystemExit, match="--target aci is not deployed by stack s; pick one of aks"
    ):
        choose_target(envs, "aci", "s")
    with pytest.raises(SystemExit, match="no container target in stack s"):
        choose_target({"functions": {}}, None, "s")


def test_the_aks_environment_is_the_scoring_deployments_with_tls_on(
    prod, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With AKS TLS on, the graph has a second Deployment, tls-sync (the certificate's sync pod),
    in an order the engine's concurrent registrations do not fix: prod, and what python -m
    migrate writes for a v1 AKS config with sslEnabled and a cname. The scoring one is taken."""
    from preview import engine

    v1 = tmp_path / "v1"
    shutil.copytree(REPO / "examples" / "v1" / "source", v1)
    (v1 / "i.json").write_text('{"entryScript": "score.py", "condaFile": "myenv.yml"}')
    aks = '{"computeType": "aks", "sslEnabled": true, "cname": "scoring.contoso.com"}'
    (v1 / "aks.json").write_text(aks)
    out = tmp_path / "Pulumi.v1tls.yaml"
    argv = ["--inference-config", str(v1 / "i.json"), "--deployment-config", str(v1 / "aks.json")]
    argv += ["--model", str(MODEL), "--model-name", "m", "--model-version", "1"]
    assert migrate([*argv, "--stack", "v1tls", "--out", str(out)]) == 1, capsys.readouterr().out
    migrated = engine.run(
        "v1tls", {"aksTlsCertificateName": "scoring-tls"}, preview=False, stack_file=out
    )
    assert migrated.error is None, migrated.error
    for run, model in ((prod, "diabetes-ridge"), (migrated, "m")):
        names = [r.name for r in run.of_type("kubernetes:apps/v1:Deployment")]
        assert sorted(names) == ["deployment", "tls-sync"], names
        env = target_envs(run)["aks"]
        assert env["MODEL_NAME"] == model and env["SCORING_ENDPOINT_NAME"], env


def test_payload_files_are_bytes_with_a_content_type_and_answers_print_as_text_or_bytes(
    tmp_path: Path,
) -> None:
    for name, body, expected in (
        ("a.json", b'{"data": [1]}', "application/json"),
        ("a.png", b"\x89PNG\r\n", "image/png"),
        ("payload", b"[1, 2]", "application/json"),
        ("payload.raw", b"\xff\x00", "application/octet-stream"),
    ):
        (tmp_path / name).write_bytes(body)
        payload = read_payload(tmp_path / name)
        assert (payload.body, payload.content_type, payload.label) == (body, expected, name)
    assert read_payload(tmp_path / "a.json", "text/csv").content_type == "text/csv"
    text = Answer(422, "Unprocessable Entity", {"content-type": "application/json"}, b'{"e": 1}')
    assert shown(text) == '{"e": 1}'
    binary = Answer(200, "OK", {"Content-Type": "image/png"}, b"\x89PNG\r\n" * 10)
    assert shown(binary).startswith("<60 bytes, image/png> 89 50 4e 47 0d 0a") and "..." in shown(
        binary
    )


PROBE = """
import importlib.util, json, os, sys

def init():
    pass

def run(raw):  # the body as a string, as Azure ML passes it
    return {
        "python": sys.executable, "version": "%d.%d" % sys.version_info[:2],
        "home": os.environ.get("HOME"), "cwd": os.getcwd(),
        "importable": [m for m in json.loads(raw) if importlib.util.find_spec(m) is not None],
    }
"""


def test_the_host_runs_in_the_images_environment_never_the_dev_venv(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Issue 28 item 4: the image's Python with what its Dockerfile installs (nothing of the dev
    venv: no pulumi, no pytest), the image's HOME and WORKDIR; the second start reuses it."""
    from client.reference import stack_build
    from scoring.demo import _serve_layout, _stop, wait_ready

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text(PROBE)
    ctx = stack_build("dev", {"entryScript": str(tmp_path / "code" / "score.py")}).context
    dockerfile = ctx.dockerfile.read_text()
    port, work = _free_port(), tmp_path / "work"
    with open(tmp_path / "host.log", "wb") as log:
        proc = _serve_layout(ctx, {}, port, work, log, verbose=False)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, log=tmp_path / "host.log")
        modules = ["pulumi", "pytest", "pulumi_azure_native", "uvicorn", "sklearn"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/score",
            data=json.dumps(modules).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            seen = json.loads(answer.read())
    finally:
        _stop(proc)
    # the sample's dependencies and the host's, none of the dev venv's
    assert seen["importable"] == ["uvicorn", "sklearn"], seen
    assert seen["version"] == ctx.build_args.get("PYTHON_VERSION", "3.11"), seen
    python = Path(seen["python"])
    assert not python.is_relative_to(REPO) and Path(sys.prefix) not in python.parents, python
    workdir = re.findall(r"^WORKDIR (\S+)", dockerfile, re.M)[-1]
    home = re.search(r"--home-dir (\S+)", dockerfile)
    assert home is not None
    image = work / "image"
    assert (seen["cwd"], seen["home"]) == (
        str(image / workdir.lstrip("/")),
        str(image / home.group(1).lstrip("/")),
    )
    built = (python.parent.parent / "pyvenv.cfg").stat().st_mtime_ns
    capfd.readouterr()
    again, _, _ = image_environment(ctx, tmp_path / "again")
    assert again == python  # the same venv, not rebuilt
    assert (python.parent.parent / "pyvenv.cfg").stat().st_mtime_ns == built
    assert "building the image's environment" not in capfd.readouterr().err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_local_folder_sink_takes_an_absolute_folder_and_no_other_sink() -> None:
    from scoring.observability.settings import DataCollectionSettings

    def problem(**env: str) -> str | None:
        full = {"DATA_COLLECTION_ENABLED": "true", **env}
        return DataCollectionSettings.from_env(full).problem

    assert problem(DATA_COLLECTION_FOLDER="/tmp/modeldata") is None
    assert "expected an absolute path" in (problem(DATA_COLLECTION_FOLDER="modeldata") or "")
    both = problem(DATA_COLLECTION_FOLDER="/tmp/m", DATA_COLLECTION_BLOB_URL="https://a/c")
    assert "DATA_COLLECTION_BLOB_URL and DATA_COLLECTION_FOLDER are both set" in (both or "")
