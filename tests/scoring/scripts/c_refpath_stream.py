"""A @rawhttp script written against the reference's own module path, streaming its answer."""

import time

from azureml_inference_server_http.api.aml_request import AMLRequest, rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    pass


def generate(n, pause):
    for i in range(n):
        yield f"chunk {i}\n"
        time.sleep(pause)


@rawhttp
def run(request: AMLRequest):
    if request.method == "OPTIONS":
        return AMLResponse("options seen", 200, {"Allow": "GET, POST, OPTIONS"})
    if request.method == "HEAD":
        return AMLResponse("head body", 200, {"X-Method": "HEAD"})
    if request.method == "GET":
        n = int(request.args.get("n", "3"))
        return AMLResponse(generate(n, float(request.args.get("pause", "0.5"))), 200)
    if request.get_data() == b"none":
        return None
    return AMLResponse(request.get_data(), 200)
