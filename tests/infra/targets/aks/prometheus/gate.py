"""run() blocks until the file named in the request (``{"gate": path}``) exists: the caller
decides how many requests are in flight and when they finish."""

import json
import os
import time


def init():
    pass


def run(raw_data):
    gate = json.loads(raw_data)["gate"]
    deadline = time.monotonic() + 30  # never hang a test run
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"released": os.path.exists(gate)}
