"""The Azure ML batch driver (``scoring/batch_driver.py``): input files read as Azure ML hands
them over, the user's script called as the HTTP host calls it, one output row per request; a file
with a failed request left out of what Azure ML counts as processed, its rows written beside the
job's output and each failure logged."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import pytest

from scoring import batch_driver
from scoring.batch_driver import Request, csv_rows, requests_of, settings
from scoring.entry import EntryScriptError

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
SAMPLE = ROOT / "scoring" / "sample_model" / "score.py"
MODEL = ROOT / "aml" / "model" / "diabetes-ridge" / "1"
ROWS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]


def drive(
    script: Path, files: list[Path], model: Path | None = None, output: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m scoring.batch_driver FILE...`` (init() then run(files), as Azure ML calls
    them) in a process of its own, as each worker of a batch job is; ``output``: the job's
    output folder (``AZUREML_BI_OUTPUT_PATH``)."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "SCORING_BATCH_ENTRY_SCRIPT": str(script),
        "AML_APP_ROOT": str(script.parent),
    }
    if model is not None:
        env["AZUREML_MODEL_DIR"] = str(model)
    if output is not None:
        env["AZUREML_BI_OUTPUT_PATH"] = str(output)
    return subprocess.run(
        [sys.executable, "-m", "scoring.batch_driver", *map(str, files)],
        env=env,
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rows_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def errors_of(output: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of each failed input file, by the name of its file under errors/."""
    return {f.name: rows_of(f.read_text()) for f in sorted((output / "errors").glob("*.jsonl"))}


def test_each_file_kind_becomes_its_requests(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"data": ROWS}, indent=2))  # one document over several lines
    lines = tmp_path / "lines.json"
    lines.write_text('{"data": [[1]]}\n\n{"data": [[2]]}\n')  # one document a line
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"a": 1}\n{"a": 2}\n')
    table = tmp_path / "t.csv"
    table.write_text("age,sex\n1,2.5\n3,4\n")
    image = tmp_path / "p.png"
    image.write_bytes(b"\x89PNG\r\n")
    assert [r.content_type for r in requests_of(one)] == ["application/json"]
    assert [json.loads(r.body) for r in requests_of(one)] == [{"data": ROWS}]
    assert [json.loads(r.body) for r in requests_of(lines)] == [{"data": [[1]]}, {"data": [[2]]}]
    assert [json.loads(r.body) for r in requests_of(jsonl)] == [{"a": 1}, {"a": 2}]
    assert [json.loads(r.body) for r in requests_of(table)] == [{"data": [[1, 2.5], [3, 4]]}]
    assert list(requests_of(image)) == [Request(b"\x89PNG\r\n", "image/png")]


def test_csv_rows_keep_text_cells_and_a_header_only_above_numbers() -> None:
    assert csv_rows("1,2\n3,4\n") == [[1, 2], [3, 4]]
    assert csv_rows("a,b\n1,2\n") == [[1, 2]]
    assert csv_rows("x,1\ny,2\n") == [["x", 1], ["y", 2]]  # no header: text data


def test_one_row_per_request_with_the_models_own_answer(tmp_path) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"data": ROWS}))
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps({"data": ROWS[:1]}) + "\n" + json.dumps({"data": ROWS[1:]}) + "\n")
    c = tmp_path / "c.csv"
    c.write_text("1,2,3,4,5,6,7,8,9,10\n")
    proc = drive(SAMPLE, [a, b, c], MODEL, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    direct = joblib.load(MODEL / "model.joblib").predict(ROWS).tolist()
    assert rows_of(proc.stdout) == [
        {"file": "a.json", "index": 0, "status": 200, "answer": direct},
        {"file": "b.jsonl", "index": 0, "status": 200, "answer": direct[:1]},
        {"file": "b.jsonl", "index": 1, "status": 200, "answer": direct[1:]},
        {"file": "c.csv", "index": 0, "status": 200, "answer": direct[:1]},
    ]
    assert not (tmp_path / "out" / "errors").exists()


def test_azure_ml_counts_one_element_per_file_answered_in_full(tmp_path, monkeypatch) -> None:
    """What run() returns is what Azure ML counts as processed files: a file with a failed
    request is left out (a failed file for error_threshold), its rows and the reason recorded
    beside the job's output, and logged; a good neighbour in the same mini batch still counts."""
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"data": ROWS[:1]}) + "\n" + json.dumps({"data": ROWS[1:]}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"data": ROWS[:1]}) + "\n" + json.dumps({"data": "no rows"}) + "\n")
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xff\xfe\x00not text")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    output = tmp_path / "out"
    monkeypatch.setenv("SCORING_BATCH_ENTRY_SCRIPT", str(SAMPLE))
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(MODEL))
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(output))
    monkeypatch.setattr(batch_driver, "_scorer", None)
    monkeypatch.setattr(batch_driver.log, "handlers", [])  # init() adds its own: undone after
    monkeypatch.setattr(batch_driver.log, "propagate", True)
    batch_driver.init()
    elements = batch_driver.run([str(good), str(bad), str(broken), str(empty)])
    (only,) = elements  # one processed file of four
    assert [(r["file"], r["index"]) for r in rows_of(only)] == [
        ("good.jsonl", 0),
        ("good.jsonl", 1),
    ]
    errors = errors_of(output)
    assert sorted(n.split("-")[0] for n in errors) == ["bad.jsonl", "broken.csv", "empty.jsonl"]
    (bad_rows,) = [v for n, v in errors.items() if n.startswith("bad.jsonl-")]
    assert [r["status"] for r in bad_rows] == [200, 400]  # the whole file, answers and errors
    assert "does not match the input schema" in bad_rows[1]["error"]
    (broken_rows,) = [v for n, v in errors.items() if n.startswith("broken.csv-")]
    assert broken_rows[0]["status"] is None and broken_rows[0]["error"].startswith("unreadable")
    (empty_rows,) = [v for n, v in errors.items() if n.startswith("empty.jsonl-")]
    assert empty_rows == [
        {"file": "empty.jsonl", "index": None, "status": None, "error": "no request in the file"}
    ]
    assert batch_driver.run([str(bad)]) == [] and len(errors_of(output)) == 3  # retried: rewritten


def test_each_failure_is_a_logged_line_and_the_command_says_so(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": "no rows"}))
    proc = drive(SAMPLE, [bad], MODEL)
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR scoring.batch")]
    logged = json.loads(line.split("input file failed: ", 1)[1])
    assert logged["file"] == str(bad) and logged["index"] == 0 and logged["status"] == 400
    assert "does not match the input schema" in logged["error"]


def test_run_before_init_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(batch_driver, "_scorer", None)
    with pytest.raises(RuntimeError, match="init"):
        batch_driver.run([])


def test_rawhttp_scripts_get_the_files_bytes_and_binary_answers_stay_whole(tmp_path) -> None:
    f = tmp_path / "blob.bin"
    f.write_bytes(bytes(range(256)))
    refused = tmp_path / "no.txt"
    refused.write_bytes(b"fail")
    proc = drive(SCRIPTS / "raw.py", [f, refused], output=tmp_path / "out")
    assert proc.returncode == 1
    (out,) = rows_of(proc.stdout)
    assert out["status"] == 200 and out["content_type"] == "application/octet-stream"
    assert base64.b64decode(out["answer_base64"]) == bytes(range(256))[::-1]
    ((name, [no]),) = errors_of(tmp_path / "out").items()
    assert (
        name.startswith("no.txt-") and no["status"] == 503 and no["error"] == "the script says no"
    )


def test_the_driver_never_loads_itself_as_the_entry_script() -> None:
    with pytest.raises(EntryScriptError, match="SCORING_BATCH_ENTRY_SCRIPT"):
        settings({"AZUREML_ENTRY_SCRIPT": batch_driver.__file__})
