"""The seeds' @rawhttp example, imported the Azure ML way."""

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    assert isinstance(request, AMLRequest)
    if request.method == "GET":
        return AMLResponse(str.encode(request.full_path), 200)
    if request.method == "POST":
        body = request.get_data(False)
        if body == b"fail":
            return AMLResponse("the script says no", 503)
        resp = AMLResponse(body[::-1], 200, {"Content-Type": "application/octet-stream"})
        resp.headers["Access-Control-Allow-Origin"] = "http://www.example.com"
        resp.headers["X-Seen-Header"] = request.headers.get("X-Custom", "")
        return resp
    return AMLResponse("bad request", 500)
