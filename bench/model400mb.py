"""Entry script with a 400 MB "model" (MODEL_MB): init() fills a numpy array, so every page
is written, as a loaded model's are (for bench/overload.py's memory table)."""

import os

import numpy as np

model = None


def init():
    global model
    model = np.ones(int(os.environ.get("MODEL_MB", "400")) * 1024 * 1024 // 8)


def run(raw_data):
    return {"sum": float(model[:1000].sum())}
