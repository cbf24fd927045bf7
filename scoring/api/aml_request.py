"""``AMLRequest`` and ``@rawhttp``, importable as ``azureml.contrib.services.aml_request``.

``AMLRequest`` is a ``werkzeug`` request (what Flask's request is too), so scripts written for
Azure ML (``request.method``, ``request.get_data()``, ``request.args``, ``request.files``,
``request.full_path``, ...) work unchanged. werkzeug is imported only when a script asks for the
class, so the scoring host does not pay for it otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

RAWHTTP_ATTR = "__aml_rawhttp__"

# Azure ML's server keeps a module-level flag; keep it for scripts or tools that read it.
_rawHttpRequested = False


def rawhttp(func: F) -> F:
    """Mark ``run()`` as wanting the raw HTTP request (an ``AMLRequest``)."""
    global _rawHttpRequested
    _rawHttpRequested = True
    with contextlib.suppress(AttributeError, TypeError):  # builtins, slotted callables
        setattr(func, RAWHTTP_ATTR, True)
    return func


def is_rawhttp(func: Callable[..., Any]) -> bool:
    return bool(getattr(func, RAWHTTP_ATTR, False))


def __getattr__(name: str) -> Any:
    if name == "AMLRequest":
        from ._werkzeug_types import AMLRequest

        return AMLRequest
    raise AttributeError(name)


__all__ = ["AMLRequest", "rawhttp"]  # noqa: F822 - AMLRequest: see __getattr__
