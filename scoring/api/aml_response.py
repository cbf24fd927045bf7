"""``AMLResponse``, importable as ``azureml.contrib.services.aml_response``."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "AMLResponse":
        from ._werkzeug_types import AMLResponse

        return AMLResponse
    raise AttributeError(name)


__all__ = ["AMLResponse"]  # noqa: F822 - see __getattr__
