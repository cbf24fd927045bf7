"""Scoring host for Azure ML entry scripts (``init()`` / ``run()``).

Importing this package registers ``azureml.contrib.services.aml_request`` and
``azureml.contrib.services.aml_response`` in ``sys.modules`` (the way Microsoft's
``azureml-inference-server-http`` does), so entry scripts written for Azure ML import them
unchanged. Only those two module names are registered; no ``azureml`` parent package is created,
so a real installed ``azureml`` namespace keeps working.
"""

from __future__ import annotations

import sys

__version__ = "1.0.0"


def _register_azureml_shims() -> None:
    from .api import aml_request, aml_response

    sys.modules.setdefault("azureml.contrib.services.aml_request", aml_request)
    sys.modules.setdefault("azureml.contrib.services.aml_response", aml_response)


_register_azureml_shims()
