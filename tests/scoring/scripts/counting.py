"""Counts run() calls per process, so cache tests can tell a hit from a miss."""

import json
import os

calls = 0


def init():
    pass


def run(raw_data):
    global calls
    calls += 1
    data = json.loads(raw_data)
    return {"echo": data, "calls": calls, "pid": os.getpid()}
