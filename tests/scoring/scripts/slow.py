"""run() sleeps for the requested seconds; init() sleeps for SLOW_INIT_SECONDS."""

import json
import os
import time


def init():
    time.sleep(float(os.environ.get("SLOW_INIT_SECONDS", "0")))


def run(raw_data):
    seconds = float(json.loads(raw_data).get("sleep", 0))
    time.sleep(seconds)
    return {"slept": seconds}
