"""An entry script whose helpers live in its source directory (AZUREML_SOURCE_DIRECTORY)."""

import os

import helpers  # in <AML_APP_ROOT>/src


def init():
    global root
    root = os.environ["AML_APP_ROOT"]


def run(raw_data):
    return {"shout": helpers.shout(raw_data), "app_root": root, "port": os.environ["SERVER_PORT"]}
