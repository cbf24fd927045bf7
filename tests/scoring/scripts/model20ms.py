"""A model that takes 20 ms per call (the cache benchmark's and tests' slow model)."""

import json
import time


def init():
    pass


def run(raw_data):
    time.sleep(0.02)
    data = json.loads(raw_data)["data"]
    return [sum(row) for row in data]
