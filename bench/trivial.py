"""Entry script whose run() costs next to nothing: what is left is each server's own overhead."""

import json


def init():
    pass


def run(raw_data):
    return [sum(row) for row in json.loads(raw_data)["data"]]
