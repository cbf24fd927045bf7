"""A v1 entry script as the Azure ML v1 documentation wrote them: init() loads the model from
AZUREML_MODEL_DIR, run() takes the raw JSON body ({"data": [[...10 numbers...], ...]})."""

import json
import os

import joblib
import numpy as np

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR", "."), "model.joblib"))


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    return model.predict(data).tolist()
