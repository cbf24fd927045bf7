"""An undecorated run(raw_data) for the direct path's tests: echoes its input's length, answers
None, raises, or streams, as the body asks."""

import time


def init():
    pass


def _chunks(n):
    for i in range(n):
        yield f"chunk {i}\n"
        time.sleep(0.05)


def run(raw_data):
    if raw_data == "none":
        return None
    if raw_data == "raise":
        raise RuntimeError("asked to")
    if raw_data.startswith("stream"):
        return _chunks(int(raw_data[len("stream") :] or 3))
    return {"length": len(raw_data), "head": raw_data[:20]}
