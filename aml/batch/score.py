"""Azure ML batch scoring script for the registered diabetes-ridge model (batch endpoint).

Input: a folder (uri_folder) of CSV files, each row 10 numbers (the model's features), no header.
Output: with ``output_action: append_row`` Azure ML appends every returned row to
``predictions.csv`` in the job's output folder: ``<file name>,<row index>,<prediction>``.

``init()`` loads the model once per worker from ``AZUREML_MODEL_DIR`` (Azure ML mounts the
registered model there); ``run(mini_batch)`` gets a list of file paths and returns one line per row.
Unreadable files raise: Azure ML retries the mini batch and counts it against ``error_threshold``.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np

model = None
FEATURES = 10


def _model_path() -> Path:
    root = Path(os.getenv("AZUREML_MODEL_DIR", "."))
    found = sorted(root.rglob("model.joblib"))
    if not found:
        raise FileNotFoundError(f"no model.joblib under AZUREML_MODEL_DIR={root}")
    return found[0]


def init() -> None:
    global model
    model = joblib.load(_model_path())


def score_file(path: str) -> list[str]:
    rows = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    if rows.size == 0:
        return []
    if rows.shape[1] != FEATURES:
        raise ValueError(f"{path}: {rows.shape[1]} columns, the model takes {FEATURES}")
    assert model is not None, "init() was not called"
    name = Path(path).name
    return [f"{name},{i},{p:.6f}" for i, p in enumerate(model.predict(rows))]


def run(mini_batch: list[str]) -> list[str]:
    results: list[str] = []
    for path in mini_batch:
        results.extend(score_file(path))
    return results
