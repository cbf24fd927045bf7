"""A @rawhttp script that uses Flask's own API, as scripts written for azmlinfsrv may."""

import os

from azureml.contrib.services.aml_request import rawhttp
from flask import Response, jsonify
from flask import request as flask_request


def init():
    global app_root
    app_root = os.environ["AML_APP_ROOT"]


@rawhttp
def run(request):
    if request.method == "POST":
        return Response(request.get_data()[::-1], status=201, mimetype="text/plain")
    return jsonify(
        method=request.method,
        flask_request_is_request=flask_request.get_data() == request.get_data(),
        args=flask_request.args.to_dict(),
        app_root=app_root,
    )
