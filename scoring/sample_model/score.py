"""Sample Azure ML entry script for the diabetes Ridge model.

``init()`` loads the model once per worker from ``AZUREML_MODEL_DIR``; ``run(data)`` returns
one prediction per row. The ``inference-schema`` decorators describe the input (rows of 10
numbers) and output for ``/swagger.json``, and let the host reject a malformed body with 400.
Errors are raised, never returned as results: the host turns them into a 500 JSON message and
logs the traceback.
"""

import os
from pathlib import Path

import joblib
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema

model = None

input_sample = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], dtype=np.float64)
output_sample = np.array([5021.23])


def _model_path() -> Path:
    """``AZUREML_MODEL_DIR`` is the folder holding the registered model's files: the file
    itself, or (a registered folder) ``<folder>/model.joblib``, as in every image."""
    root = Path(os.getenv("AZUREML_MODEL_DIR", "."))
    found = sorted(root.rglob("model.joblib"))
    if not found:
        raise FileNotFoundError(f"no model.joblib under AZUREML_MODEL_DIR={root}")
    return found[0]


def init():
    global model
    model = joblib.load(_model_path())


@input_schema("data", NumpyParameterType(input_sample))
@output_schema(NumpyParameterType(output_sample))
def run(data):
    if data.shape[0] == 0:
        return []
    return model.predict(data).tolist()
