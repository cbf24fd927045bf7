"""Azure ML batch deployment driver: the user's own entry script scores every file of a job.

Azure ML calls a batch deployment's scoring script with ``init()`` once per worker process and
``run(mini_batch)`` with a list of file paths, and with ``output_action: append_row`` appends
every element ``run()`` returns to the job's output file
(https://learn.microsoft.com/azure/machine-learning/how-to-batch-scoring-script). This file is
that scoring script; it runs in the scoring image every other target runs, so the user's
``init()``/``run()`` are loaded exactly as the HTTP host loads them (``scoring.service``:
``@rawhttp``, ``inference-schema`` decorators, plain ``run(raw_data)``):

* ``init()`` loads ``SCORING_BATCH_ENTRY_SCRIPT`` (the batch deployment sets it; else
  ``AZUREML_ENTRY_SCRIPT``, the image's) and calls its ``init()`` once;
  ``AZUREML_MODEL_DIR`` is where Azure ML mounts the registered model (the same bytes the
  image carries);
* each input file becomes one or more requests, each POSTed to ``run()`` as the host would:

  - ``.json``: one JSON document (the seeds' ``{"data": [[...], ...]}``), or JSON lines;
  - ``.jsonl`` / ``.ndjson``: one JSON document per non-empty line;
  - ``.csv``: its rows as one ``{"data": rows}`` (numbers parsed; a header row, one whose cells
    are not all numbers above rows that are, is left out);
  - anything else: the file's bytes as one request, with the content type of its extension
    (``@rawhttp`` scripts: images, audio, text);

* each request becomes one row, ``{"file", "index", "status", "answer"}`` (a JSON answer as
  JSON, a text one as text; a binary one as ``"answer_base64"`` with its ``"content_type"``),
  or ``"error"`` instead of ``"answer"`` when the script refused or failed that request. One bad
  request does not stop its neighbours.

What ``run()`` returns is what Azure ML counts. "Each returned output element indicates one
successful run of an input element in the input mini_batch. For file or folder data assets, each
returned row/element represents a single file processed", and everything returned is "written to
the output file as-is" (https://learn.microsoft.com/azure/machine-learning/
how-to-batch-scoring-script); the deployment's ``error_threshold`` counts input files: "For
FileDataset, this value is the count of file failures" (BatchDeploymentProperties.ErrorThreshold,
https://learn.microsoft.com/dotnet/api/azure.resourcemanager.machinelearning.models.
machinelearningbatchdeploymentproperties.errorthreshold). So:

* an input file every request of which was answered (2xx) is one returned element: its rows, one
  JSON line each (``predictions.jsonl`` keeps one line per request);
* an input file with a failed request (or that cannot be read) is left out: Azure ML counts it
  as a failed file, against ``error_threshold`` and in the job's per-node logs ("the number of
  successfully processed items, and the number of failed items", logs/sys/node/,
  https://learn.microsoft.com/azure/machine-learning/how-to-troubleshoot-batch-endpoints). Its
  rows, answers and errors, go to ``errors/<file>-<hash>.jsonl`` in the job's output folder
  (``AZUREML_BI_OUTPUT_PATH``, which every worker may write to at once, so one file per input:
  https://learn.microsoft.com/azure/machine-learning/how-to-deploy-model-custom-output), and each
  failed request is logged as one ``ERROR`` line naming file, index, status and reason (Python
  logging lands in logs/user/stdout/<node>/process<N>.stdout.txt, same troubleshooting page).

``run()`` raises only when the driver itself cannot score (``init()`` not called), so Azure ML
retries a mini batch (``retry_settings``) for a crash or a timeout, never for an input the
script refuses every time.

``python -m scoring.batch_driver FILE...`` runs the same on this machine (the entry script and
model from the same environment variables): it prints what Azure ML would append, logs each
failure on stderr, and exits 1 when an input file failed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import io
import json
import logging
import mimetypes
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.config import Settings
from scoring.entry import EntryScriptError
from scoring.service import ScoreRequest, ScoreResponse, ScoringService

log = logging.getLogger("scoring.batch")

JSON = "application/json"
JSON_LINES = (".jsonl", ".ndjson")
ENTRY_VARIABLE = "SCORING_BATCH_ENTRY_SCRIPT"


@dataclass(frozen=True)
class Request:
    """One request read from an input file: its body and content type."""

    body: bytes
    content_type: str


class BatchScorer:
    """The user's entry script behind the host's scoring core, called synchronously."""

    def __init__(self, settings: Settings) -> None:
        self.service = ScoringService(settings)
        self.service.init_sync()  # the script's init(), once
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()  # one event loop: one call at a time

    def score(self, request: Request) -> ScoreResponse:
        req = ScoreRequest(
            "POST",
            body=request.body,
            headers=[
                ("content-type", request.content_type),
                ("content-length", str(len(request.body))),
            ],
        )
        with self._lock:
            return self._loop.run_until_complete(self.service.score(req))

    def rows(self, path: Path) -> list[dict[str, Any]]:
        """One row per request of ``path``; a file unreadable or without a request is one error
        row (a failed input, not an empty line in the predictions)."""
        try:
            requests = list(requests_of(path))
        except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
            return [_file_error(path, f"unreadable: {e}")]
        if not requests:
            return [_file_error(path, "no request in the file")]
        return [row(path.name, i, self.score(r)) for i, r in enumerate(requests)]


def _file_error(path: Path, why: str) -> dict[str, Any]:
    return {"file": path.name, "index": None, "status": None, "error": why}


def requests_of(path: Path) -> Iterator[Request]:
    """The requests an input file holds (see the module docstring)."""
    suffix = path.suffix.lower()
    data = path.read_bytes()
    if suffix in JSON_LINES:
        yield from _json_lines(data)
    elif suffix == ".json":
        try:
            json.loads(data)
        except ValueError:  # several documents, one a line
            yield from _json_lines(data)
        else:
            yield Request(data, JSON)
    elif suffix == ".csv":
        yield Request(json.dumps({"data": csv_rows(data.decode("utf-8-sig"))}).encode(), JSON)
    else:
        yield Request(data, mimetypes.guess_type(path.name)[0] or "application/octet-stream")


def _json_lines(data: bytes) -> Iterator[Request]:
    for line in data.splitlines():
        if line.strip():
            yield Request(line.strip(), JSON)


def _number(cell: str) -> int | float | str:
    text = cell.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return cell


def csv_rows(text: str) -> list[list[Any]]:
    """A CSV file's rows, numbers parsed; a header row above numeric rows left out."""
    rows = [[_number(c) for c in r] for r in csv.reader(io.StringIO(text)) if r]

    def numeric(r: list[Any]) -> bool:
        return all(not isinstance(c, str) for c in r)

    if len(rows) > 1 and not numeric(rows[0]) and numeric(rows[1]):
        return rows[1:]
    return rows


def row(file: str, index: int, resp: ScoreResponse) -> dict[str, Any]:
    """The output row of one request: its answer, or why there is none."""
    out: dict[str, Any] = {"file": file, "index": index, "status": resp.status}
    body = resp.body + b"".join(resp.stream or ())
    ok = 200 <= resp.status < 300
    mime = resp.content_type.split(";", 1)[0].strip().lower()
    if mime == JSON or mime.endswith("+json"):
        try:
            value: Any = json.loads(body)
        except ValueError:
            value = body.decode("utf-8", errors="replace")
    elif (mime.startswith("text/") or not ok) and _utf8(body):
        value = body.decode("utf-8")
    else:  # an image, audio, any bytes (whatever type they claim): kept whole
        out["content_type"] = resp.content_type
        out["answer_base64"] = base64.b64encode(body).decode()
        return out
    if ok:
        out["answer"] = value
    else:
        out["error"] = value.get("message", value) if isinstance(value, dict) else value
    return out


def failed(r: Mapping[str, Any]) -> bool:
    """Whether a row is a failed request: no 2xx answer (an error, or a file not read)."""
    status = r.get("status")
    return not (isinstance(status, int) and 200 <= status < 300)


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- the Azure ML batch scoring script interface -----------------------------------------------
_scorer: BatchScorer | None = None


def settings(env: Mapping[str, str]) -> Settings:
    """The host's settings from ``env``, the entry script from ``SCORING_BATCH_ENTRY_SCRIPT``
    (the batch deployment sets it) before ``AZUREML_ENTRY_SCRIPT`` (the image's)."""
    env = dict(env)
    if env.get(ENTRY_VARIABLE):
        env["AZUREML_ENTRY_SCRIPT"] = env[ENTRY_VARIABLE]
    found = Settings.from_env(env)
    if found.entry_script.resolve() == Path(__file__).resolve():
        raise EntryScriptError(
            f"the entry script is the batch driver itself: set {ENTRY_VARIABLE} to the "
            "user's entry script"
        )
    return found


OUTPUT_VARIABLE = "AZUREML_BI_OUTPUT_PATH"  # the job's output folder (see the docstring)
ERRORS_DIR = "errors"


def init() -> None:
    """Azure ML calls this once per worker process: load the entry script, run its init()."""
    global _scorer
    if not log.handlers:  # failures as lines of this process's own log (see the docstring)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    _scorer = BatchScorer(settings(os.environ))


def run(mini_batch: list[str]) -> list[str]:
    """Azure ML calls this per mini batch (a list of file paths): one element per input file
    answered in full, its rows as JSON lines; a file with a failed request is left out, recorded
    and logged (see the docstring)."""
    if _scorer is None:
        raise RuntimeError("init() was not called")
    out: list[str] = []
    for name in mini_batch:
        path = Path(name)
        rows = _scorer.rows(path)
        if any(failed(r) for r in rows):
            record_failure(path, rows, os.environ.get(OUTPUT_VARIABLE))
        else:
            out.append("\n".join(json.dumps(r, default=str) for r in rows))
    return out


def record_failure(path: Path, rows: list[dict[str, Any]], output: str | None) -> Path | None:
    """Log each failed request of ``path``; write all its rows beside the job's output."""
    for r in rows:
        if failed(r):
            log.error(
                "input file failed: %s",
                json.dumps(
                    {"file": str(path), **{k: r.get(k) for k in ("index", "status", "error")}}
                ),
            )
    if not output:
        return None
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    target = Path(output) / ERRORS_DIR / f"{path.name}-{digest}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")  # a retried mini batch rewrites it
    tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    os.replace(tmp, target)
    log.error("input file failed: %s: its rows are in %s", path.name, target)
    return target


def main(argv: list[str] | None = None) -> int:
    files = sys.argv[1:] if argv is None else argv
    if not files:
        print("usage: python -m scoring.batch_driver FILE...", file=sys.stderr)
        return 2
    with contextlib.redirect_stdout(sys.stderr):  # the script's own prints and logs: not rows
        init()
        answered = run(files)
    for element in answered:
        print(element)
    return 0 if len(answered) == len(files) else 1


if __name__ == "__main__":
    sys.exit(main())
