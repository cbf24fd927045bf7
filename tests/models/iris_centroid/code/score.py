"""Entry script of the second test model (not the sample): an iris nearest-centroid classifier.

It uses a dependency of its own (scipy, listed in requirements.txt and environment.yml, not in
the scoring host's requirements) and imports a module from its own folder (``centroid.py``).
``AZUREML_MODEL_DIR`` is the folder holding the registered model's files: the model was
registered as the folder ``model/``, so its file is ``$AZUREML_MODEL_DIR/model/centroids.json``.
"""

import json
import os
from pathlib import Path

from centroid import NearestCentroid
from inference_schema.parameter_types.standard_py_parameter_type import (
    StandardPythonParameterType,
)
from inference_schema.schema_decorators import input_schema, output_schema

classifier = None


def init():
    global classifier
    path = Path(os.environ["AZUREML_MODEL_DIR"]) / "model" / "centroids.json"
    classifier = NearestCentroid.from_json(json.loads(path.read_text()))


@input_schema("data", StandardPythonParameterType([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]))
@output_schema(StandardPythonParameterType({"labels": ["setosa", "virginica"]}))
def run(data):
    return {"labels": classifier.predict(data)}
