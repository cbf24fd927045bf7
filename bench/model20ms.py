"""Entry script whose run() takes 20 ms (for the cache benchmark)."""

import json
import time


def init():
    pass


def run(raw_data):
    time.sleep(0.02)
    return [sum(row) for row in json.loads(raw_data)["data"]]
