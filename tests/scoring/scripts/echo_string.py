"""Undecorated run(raw_data) that also asks for the request headers."""


def init():
    pass


def run(raw_data, request_headers):
    return {
        "raw": raw_data,
        "type": type(raw_data).__name__,
        "header": request_headers.get("X-Custom"),
    }
