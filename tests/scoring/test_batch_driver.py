"""The Azure ML batch driver (``scoring/batch_driver.py``): input files read as Azure ML hands
them over, the user's script called as the HTTP host calls it, one output row per request."""

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


def drive(script: Path, files: list[Path], model: Path | None = None) -> list[dict[str, Any]]:
    """``python -m scoring.batch_driver FILE...`` (init() then run(files), as Azure ML calls
    them) in a process of its own, as each worker of a batch job is: its output rows."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "SCORING_BATCH_ENTRY_SCRIPT": str(script),
        "AML_APP_ROOT": str(script.parent),
    }
    if model is not None:
        env["AZUREML_MODEL_DIR"] = str(model)
    proc = subprocess.run(
        [sys.executable, "-m", "scoring.batch_driver", *map(str, files)],
        env=env,
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


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
    b.write_text(json.dumps({"data": ROWS[:1]}) + "\n" + json.dumps({"data": "no rows"}) + "\n")
    c = tmp_path / "c.csv"
    c.write_text("1,2,3,4,5,6,7,8,9,10\n")
    rows = drive(SAMPLE, [a, b, c], MODEL)
    direct = joblib.load(MODEL / "model.joblib").predict(ROWS).tolist()
    assert rows[0] == {"file": "a.json", "index": 0, "status": 200, "answer": direct}
    assert rows[1] == {"file": "b.jsonl", "index": 0, "status": 200, "answer": direct[:1]}
    assert rows[2]["file"] == "b.jsonl" and rows[2]["index"] == 1 and rows[2]["status"] == 400
    assert "does not match the input schema" in rows[2]["error"]
    assert rows[3] == {"file": "c.csv", "index": 0, "status": 200, "answer": direct[:1]}


def test_run_before_init_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(batch_driver, "_scorer", None)
    with pytest.raises(RuntimeError, match="init"):
        batch_driver.run([])


def test_rawhttp_scripts_get_the_files_bytes_and_binary_answers_stay_whole(tmp_path) -> None:
    f = tmp_path / "blob.bin"
    f.write_bytes(bytes(range(256)))
    refused = tmp_path / "no.txt"
    refused.write_bytes(b"fail")
    out, no = drive(SCRIPTS / "raw.py", [f, refused])
    assert out["status"] == 200 and out["content_type"] == "application/octet-stream"
    assert base64.b64decode(out["answer_base64"]) == bytes(range(256))[::-1]
    assert no["status"] == 503 and no["error"] == "the script says no"


def test_the_driver_never_loads_itself_as_the_entry_script() -> None:
    with pytest.raises(EntryScriptError, match="SCORING_BATCH_ENTRY_SCRIPT"):
        settings({"AZUREML_ENTRY_SCRIPT": batch_driver.__file__})
