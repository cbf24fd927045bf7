"""Scoring host for Azure ML entry scripts (``init()`` / ``run()``).

Importing this package registers ``azureml.contrib.services.aml_request`` and
``azureml.contrib.services.aml_response`` in ``sys.modules`` (the way Microsoft's
``azureml-inference-server-http`` does), and the same two modules under that server's own path,
``azureml_inference_server_http.api.aml_request`` / ``aml_response`` (its samples import them
so), so entry scripts written for either import them unchanged. No ``azureml`` parent package is
created, so a real installed ``azureml`` namespace keeps working; ``azureml_inference_server_http``
and its ``api`` are registered as plain modules unless the real server was imported first.
"""

from __future__ import annotations

import sys
import types

__version__ = "1.0.0"


def _register_azureml_shims() -> None:
    from . import api
    from .api import aml_request, aml_response

    sys.modules.setdefault("azureml.contrib.services.aml_request", aml_request)
    sys.modules.setdefault("azureml.contrib.services.aml_response", aml_response)
    if "azureml_inference_server_http" in sys.modules:
        return  # the real server is loaded: leave it alone
    root = types.ModuleType("azureml_inference_server_http", "scoring's stand-in for azmlinfsrv")
    root.__path__ = []  # a package: its submodules come from sys.modules only
    root.api = api  # type: ignore[attr-defined]
    sys.modules["azureml_inference_server_http"] = root
    sys.modules["azureml_inference_server_http.api"] = api
    sys.modules["azureml_inference_server_http.api.aml_request"] = aml_request
    sys.modules["azureml_inference_server_http.api.aml_response"] = aml_response


_register_azureml_shims()
