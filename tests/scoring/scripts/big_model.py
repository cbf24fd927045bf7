"""init() loads a "model" of BIG_MODEL_MB megabytes (numpy, every page written) and appends its
process id to INIT_LOG; INIT_THREAD=true makes it start a thread too (not fork-safe)."""

import os
import threading
import time

import numpy as np

model = None


def init():
    global model
    with open(os.environ["INIT_LOG"], "a") as f:
        f.write(f"{os.getpid()}\n")
    model = np.ones(int(os.environ.get("BIG_MODEL_MB", "64")) * 1024 * 1024 // 8)
    if os.environ.get("INIT_THREAD") == "true":
        threading.Thread(target=time.sleep, args=(3600,), name="poller", daemon=True).start()


def run(raw_data):
    return {"sum": float(model[:1000].sum()), "pid": os.getpid()}
