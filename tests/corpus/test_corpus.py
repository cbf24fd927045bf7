"""Real public Azure ML entry scripts, written by others, driven end to end (issue 29.6).

For each example of ``examples.py`` (read from its source, unchanged, with its model retrained):

1. preview: the dev stack pointed at it (``entryScript``, ``modelPath``, ``modelName``) runs
   offline under mocks; the image is built from its script and the model is registered;
2. local run: ``client.reference`` serves that stack's build context (the script's folder, the
   model, the dependencies, laid out as the image) and scores the example's own sample request;
   the answer is the one the model gives when called directly;
3. smoke: ``run_smoke`` with the stack's real outputs, every endpoint pointed at that local run,
   against the direct answer;
4. batch: ``scoring/batch_driver.py`` on a file of the same requests, with the entry script the
   batch deployment of that stack names, in the same layout and interpreter.

An example whose script cannot run on a current stack (``fails``) must fail the local run and the
batch with that cause in the log, after a clean preview. Each test records its row of the corpus
table (``conftest.py`` prints it at the end of the run, and writes ``.local/corpus/table.md``).
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from client.errors import ClientError
from client.outputs import StackOutputs
from client.reference import image_environment, local_host, stack_build
from client.smoke import Raw, reference_answer, run_smoke, same_answer
from preview import engine
from tests.corpus.conftest import record
from tests.corpus.examples import EXAMPLES, Example

ML = "azure-native:machinelearningservices"
# Two container targets and batch: enough to smoke and to batch, quick to run under mocks.
TARGETS = {
    "aksEnabled": False,
    "iotEnabled": False,
    "functionsEnabled": False,
    "containerAppsEnabled": False,
    "appServiceEnabled": True,
    "aciEnabled": True,
    "batchEnabled": True,
}


def materialise(example: Example, work: Path) -> tuple[dict[str, Any], Path]:
    """The example's script in a folder of its own and its model retrained: the stack overrides
    that point at them, and the model's pickle."""
    name, text = example.script()  # copied into a folder of its own: its folder is the image's
    script = work / "code" / name
    script.parent.mkdir(parents=True)
    script.write_text(text)
    model_path, pickle = example.model.write(work / "models")
    overrides = {
        "entryScript": str(script),
        "modelPath": str(model_path),
        "modelName": example.registered,
        "modelVersion": "1",
        **TARGETS,
    }
    if example.dependencies is not None:
        overrides["dependenciesFile"] = str(example.dependencies)
    return overrides, pickle


def preview_cell(example: Example, run: engine.Run) -> str:
    assert run.error is None, run.error
    image = run.one("docker:index/image:Image", "scoring-image")
    args = engine.reveal(image.inputs)["build"]["args"]
    assert args["MODEL_NAME"] == example.registered
    assert args["ENTRY_SCRIPT"] == example.script()[0]
    assert len(run.of_type(f"{ML}:ModelVersion")) == 1  # the model is registered
    return f"ok ({len(run.resources)} resources)"


def refused_cells(example: Example, run: engine.Run) -> dict[str, str]:
    """The program refuses the stack before any resource, naming the dependencies file."""
    assert run.error is not None and not run.resources, "the stack was not refused"
    said = [str(p) for p in run.problems] or [str(run.error)]
    assert any(example.refused in p and "dependenciesFile" in p for p in said), said
    nothing = "- (refused before deploy)"
    cell = f"refused as expected: mlscore:dependenciesFile = '{example.refused}'…"
    return {"preview": cell} | dict.fromkeys(("local run", "smoke", "batch"), nothing)


def payload_of(example: Example) -> Any:
    return Raw(example.body(), example.content_type) if example.raw else json.loads(example.body())


def smoke_cell(outputs: dict[str, Any], url: str, payload: Any, direct: Any) -> str:
    pointed = copy.deepcopy(outputs)
    for entry in pointed["endpoints"].values():
        entry["scoring_uri"] = f"{url}/score"
    rows = run_smoke(StackOutputs(pointed, "corpus"), payload, direct, timeout=(5.0, 60.0))
    failed = [f"{r.target}: {r.detail}" for r in rows if not r.ok]
    assert not failed, failed
    return f"ok ({len(rows)}/{len(rows)} targets)"


def batch(example: Example, build: Any, entry: str, work: Path) -> subprocess.CompletedProcess:
    """The batch driver on a file of the example's requests, as a job's worker runs it."""
    # The entry script as the batch deployment names it (an image path, mapped like the rest).
    target = {"SCORING_BATCH_ENTRY_SCRIPT": entry}
    python, env, workdir = image_environment(build.context, work / "batch-image", target)
    job = work / "job"
    job.mkdir()
    if example.raw:  # one raw request, its content type from its extension
        suffix = ".txt" if example.content_type.startswith("text/") else ".bin"
        (job / f"request{suffix}").write_bytes(example.body())
    else:  # the sample file as it is, and as JSON lines
        (job / "request.json").write_bytes(example.body())
        line = json.dumps(json.loads(example.body()))
        (job / "requests.jsonl").write_text(f"{line}\n{line}\n")
    files = [str(f) for f in sorted(job.iterdir())]
    return subprocess.run(
        [str(python), "-m", "scoring.batch_driver", *files],
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


def batch_cell(example: Example, proc: subprocess.CompletedProcess, direct: Any) -> str:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows and all(r["status"] == 200 for r in rows), rows
    for r in rows:
        answer = r["answer"] if "answer" in r else _b64(r["answer_base64"])
        if isinstance(answer, str) and isinstance(direct, bytes):  # a text answer, as text
            answer = answer.encode()
        assert same_answer(answer, direct), (answer, direct)
    return f"ok ({len(rows)} rows)"


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_public_entry_script_end_to_end(example: Example, run_stack, tmp_path: Path) -> None:
    row = {"example": example.name, "shape": example.shape, "source": example.source}
    row |= {"url": example.url, "licence": example.licence}
    try:
        overrides, pickle = materialise(example, tmp_path)
        if example.refused:
            row |= refused_cells(example, run_stack("dev", preview=True, **overrides))
            return
        row["preview"] = preview_cell(example, run_stack("dev", preview=True, **overrides))
        deployed = run_stack("dev", **overrides)
        assert deployed.error is None, deployed.error
        (batch_deployment,) = deployed.of_type(f"{ML}:BatchDeployment")
        entry = engine.reveal(batch_deployment.inputs)["properties"]["environmentVariables"]
        build = stack_build("dev", overrides)
        if example.fails:
            with pytest.raises(ClientError, match=example.fails), local_host(build):
                pass
            row["local run"] = f"fails as expected: {example.fails}…"
            row["smoke"] = "- (nothing to compare with)"
            proc = batch(example, build, entry["SCORING_BATCH_ENTRY_SCRIPT"], tmp_path)
            assert proc.returncode != 0 and example.fails in proc.stderr.decode()
            row["batch"] = "fails as expected (init)"
            return
        python, _, _ = image_environment(build.context, tmp_path / "direct")
        direct = example.direct(pickle, python)
        payload = payload_of(example)
        with local_host(build) as url:
            local = reference_answer(url, payload)
            assert same_answer(local, direct), (local, direct)
            row["local run"] = "ok = direct answer"
            outputs = engine.to_json(deployed.outputs, show_secrets=True)
            row["smoke"] = smoke_cell(outputs, url, payload, direct)
        proc = batch(example, build, entry["SCORING_BATCH_ENTRY_SCRIPT"], tmp_path)
        row["batch"] = batch_cell(example, proc, direct)
    finally:
        record(row)
