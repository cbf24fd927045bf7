"""run() spins in pure Python until told to stop (only a timeout can end it)."""

import json


def init():
    pass


def run(raw_data):
    n = int(json.loads(raw_data).get("n", 0))
    total = 0
    i = 0
    while n == 0 or i < n:
        total += i
        i += 1
    return {"total": total}
