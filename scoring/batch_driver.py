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

* ``run()`` returns one JSON line per request: ``{"file", "index", "status", "answer"}`` (a
  JSON answer as JSON, a text one as text; a binary one as ``"answer_base64"`` with its
  ``"content_type"``), or ``"error"`` instead of ``"answer"`` when the script refused or failed
  that request. One bad request does not fail its neighbours.

``python -m scoring.batch_driver FILE...`` runs the same on this machine (the entry script and
model from the same environment variables) and prints the rows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
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

    def rows(self, path: Path) -> list[str]:
        """One JSON line per request of ``path``."""
        return [
            json.dumps(row(path.name, i, self.score(r)), default=str)
            for i, r in enumerate(requests_of(path))
        ]


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
        log.error("%s #%d: run() answered %d: %s", file, index, resp.status, out["error"])
    return out


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


def init() -> None:
    """Azure ML calls this once per worker process: load the entry script, run its init()."""
    global _scorer
    _scorer = BatchScorer(settings(os.environ))


def run(mini_batch: list[str]) -> list[str]:
    """Azure ML calls this per mini batch (a list of file paths): one row per request."""
    if _scorer is None:
        raise RuntimeError("init() was not called")
    out: list[str] = []
    for path in mini_batch:
        out.extend(_scorer.rows(Path(path)))
    return out


def main(argv: list[str] | None = None) -> int:
    files = sys.argv[1:] if argv is None else argv
    if not files:
        print("usage: python -m scoring.batch_driver FILE...", file=sys.stderr)
        return 2
    with contextlib.redirect_stdout(sys.stderr):  # the script's own prints: logs, not rows
        init()
        rows = run(files)
    for line in rows:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
