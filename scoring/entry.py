"""Loading an Azure ML entry script and working out how its ``run()`` wants to be called.

Same rules as Microsoft's ``azmlinfsrv``:

* ``@rawhttp`` ``run(request)`` gets an ``AMLRequest`` and may return an ``AMLResponse``;
* ``run()`` decorated with ``inference-schema``'s ``@input_schema`` gets the JSON body's
  top-level keys as keyword arguments (converted by the decorators);
* an undecorated ``run(raw_data)`` gets the body as a string;
* a ``request_headers`` parameter, when declared, receives the request headers;
* ``AML_APP_ROOT``, ``AML_APP_ROOT/AZUREML_SOURCE_DIRECTORY`` and the script's folder are
  importable, so a script's helper modules import;
* a ``@rawhttp`` ``run()`` is called inside a Flask request context whose request is the
  ``AMLRequest`` (when Flask is installed), so ``flask.request`` and ``jsonify`` work.

We add one thing: schema-decorated inputs are converted *before* ``run()`` is called, so a body
the schema rejects is the client's fault (400), not a failure of ``run()`` (500).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

from .api.aml_request import is_rawhttp

log = logging.getLogger("scoring.entry")


class EntryScriptError(Exception):
    """The entry script cannot be served (missing file, missing init/run, bad signature)."""


class InputKind(Enum):
    RAW = "rawhttp"
    SCHEMA = "schema"
    STRING = "string"


@dataclass(frozen=True)
class SchemaParam:
    name: str
    param_type: Any
    convert: bool
    optional: bool
    fast: Callable[[Any], Any] | None = None  # the same conversion, quicker (_numpy_rows)


def _numpy_rows(param_type: Any) -> Callable[[Any], Any] | None:
    """``NumpyParameterType.deserialize_input`` (inference-schema 1.x) for a plain dtype.

    Its first step, ``_preprocess_json_input`` per row, returns every row unchanged unless the
    dtype is structured or a date or duration, yet costs about 2 µs a row (a dtype name
    lookup); this is the rest of it, line for line, with the same errors
    (``tests/scoring/test_entry_schema.py`` compares the two)."""
    try:
        from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    except ImportError:  # pragma: no cover - inference-schema is in requirements.txt
        return None
    if type(param_type) is not NumpyParameterType:
        return None
    import numpy as np

    sample = param_type.sample_input
    dtype = sample.dtype
    if len(dtype) > 0 or dtype.name.lower().startswith(("datetime", "timedelta")):
        return None
    typed = bool(param_type.enforce_column_type)
    expected = sample.shape if param_type.enforce_shape else None

    def convert(input_data: Any) -> Any:
        if isinstance(input_data, np.ndarray):
            return input_data
        if not isinstance(input_data, list):
            raise ValueError("Invalid input format: expected an array of items.")
        array = np.array(input_data, dtype=dtype) if typed else np.array(input_data)
        if expected is not None:
            shape = array.shape
            if len(shape) != len(expected):
                raise ValueError(
                    f"Invalid input array: an array with {len(expected)} dimensions is "
                    f"expected; input has {len(shape)} [shape {shape}]"
                )
            for dim in range(1, len(expected)):
                if shape[dim] != expected[dim]:
                    raise ValueError(
                        f"Invalid input array: array has size {shape[dim]} on dimension "
                        f"#{dim}, while expected value is {expected[dim]}"
                    )
        return array

    return convert


class BadInput(Exception):
    """The request does not fit what run() accepts (400)."""


def _schema_params(run: Callable[..., Any]) -> list[SchemaParam]:
    """The ``@input_schema`` declarations on ``run``, read from inference-schema's wrappers."""
    params: list[SchemaParam] = []
    fn: Any = run
    seen = 0
    while fn is not None and seen < 64:
        seen += 1
        wrapper = getattr(fn, "_self_wrapper", None)
        code = getattr(wrapper, "__code__", None)
        if code is not None and wrapper.__closure__ and "param_type" in code.co_freevars:
            cells = dict(zip(code.co_freevars, wrapper.__closure__, strict=True))
            with contextlib.suppress(KeyError, ValueError):  # other inference-schema versions
                param_type = cells["param_type"].cell_contents
                params.append(
                    SchemaParam(
                        name=cells["param_name"].cell_contents,
                        param_type=param_type,
                        convert=bool(cells["convert_to_provided_type"].cell_contents),
                        optional=bool(cells["optional"].cell_contents),
                        fast=_numpy_rows(param_type),
                    )
                )
        fn = getattr(fn, "__wrapped__", None)
    return params


ENTRY_MODULE = "entry_module"


def _forget_schemas(module_name: str) -> None:
    """inference-schema keeps one registry per process, keyed ``<module>.<function>``, and its
    decorators refuse a name already there ("output schema already defined"). Every entry script
    is imported as ``entry_module``, so a process that loads a second one (the batch driver, the
    Functions host, a test session) would refuse it, or lend a plain ``run()`` the first one's
    schema. Forget the previous script's entries: the new script's decorators register its own,
    as in a fresh process."""
    util = sys.modules.get("inference_schema.schema_util")
    registry = getattr(util, "__functions_schema__", None) if util else None
    if isinstance(registry, dict):
        for key in [k for k in registry if str(k).startswith(module_name + ".")]:
            del registry[key]


class UserScript:
    """An entry script loaded from a file: its ``init()``, ``run()`` and calling convention."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise EntryScriptError(f"entry script not found: {self.path}")
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.module = self._import()
        init = getattr(self.module, "init", None)
        run = getattr(self.module, "run", None)
        if not callable(init):
            raise EntryScriptError(f"{self.path} has no init() function")
        if not callable(run):
            raise EntryScriptError(f"{self.path} has no run() function")
        driver = getattr(self.module, "driver_module", None)
        if isinstance(driver, ModuleType) and callable(getattr(driver, "run", None)):
            run = driver.run  # Azure ML SDK driver scripts forward to the real score script
        self.init: Callable[[], Any] = init
        self.run: Callable[..., Any] = run
        self._analyse()

    def _import(self) -> ModuleType:
        import scoring  # noqa: F401 - registers the azureml.contrib.services shims

        from .api import aml_request

        aml_request._rawHttpRequested = False

        for folder in _import_folders(self.path):
            if folder not in sys.path:
                sys.path.append(folder)
        spec = importlib.util.spec_from_file_location(ENTRY_MODULE, self.path)
        if spec is None or spec.loader is None:
            raise EntryScriptError(f"cannot import entry script {self.path}")
        module = importlib.util.module_from_spec(spec)
        _forget_schemas(ENTRY_MODULE)
        sys.modules[ENTRY_MODULE] = module
        spec.loader.exec_module(module)
        return module

    def _analyse(self) -> None:
        try:
            params = list(inspect.signature(self.run).parameters.values())
        except (TypeError, ValueError) as exc:
            raise EntryScriptError(f"cannot inspect run(): {exc}") from None
        allowed = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        if any(p.kind not in allowed for p in params):
            raise EntryScriptError("run() cannot take positional-only arguments, *args or **kwargs")
        self.wants_headers = any(p.name == "request_headers" for p in params)
        self.params = [p for p in params if p.name != "request_headers"]
        if not self.params:
            raise EntryScriptError("run() needs an argument for its input data")
        self.schema_params = _schema_params(self.run)
        self.schema_decorated = _is_schema_decorated(self.run)
        if self.schema_params:
            from inference_schema.schema_decorators import _deserialize_input_argument

            self._deserialize = _deserialize_input_argument
        from .api import aml_request

        rawhttp = is_rawhttp(self.run) or aml_request._rawHttpRequested or _legacy_rawhttp_flag()
        if rawhttp and self.schema_decorated:
            raise EntryScriptError("run() cannot be decorated with both @rawhttp and @input_schema")
        if rawhttp:
            self.kind = InputKind.RAW
        elif self.schema_decorated:
            self.kind = InputKind.SCHEMA
        else:
            self.kind = InputKind.STRING
        log.info("entry script %s: run() input is %s", self.path, self.kind.value)

    # -- building run() arguments -------------------------------------------------------------

    def arguments_from_object(self, body: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for a schema-decorated run() from a JSON object (or query)."""
        kwargs: dict[str, Any] = {}
        for p in self.params:
            if p.name in body:
                kwargs[p.name] = body[p.name]
            elif p.default is inspect.Parameter.empty:
                raise BadInput(f"A value is not provided for the {p.name!r} parameter.")
            else:
                kwargs[p.name] = p.default  # as azmlinfsrv: the decorators see the default
        deserialize = self._deserialize
        for sp in self.schema_params:
            if not sp.convert or sp.name not in body:
                continue
            if sp.optional and not kwargs[sp.name]:
                continue
            try:
                value = kwargs[sp.name]
                fast = sp.fast
                kwargs[sp.name] = (
                    fast(value) if fast else deserialize(value, sp.param_type, sp.name)
                )
            except RecursionError:
                raise BadInput(f"{sp.name!r} is nested too deeply") from None
            except Exception as exc:
                raise BadInput(f"{sp.name!r} does not match the input schema: {exc}") from None
        return kwargs

    def call(self, kwargs: dict[str, Any], headers: dict[str, str]) -> Any:
        if self.kind is InputKind.RAW and _flask_app() is not None:
            return self._call_in_flask(kwargs, headers)
        if self.wants_headers:
            return self.run(**kwargs, request_headers=headers)
        return self.run(**kwargs)

    def _call_in_flask(self, kwargs: dict[str, Any], headers: dict[str, str]) -> Any:
        from flask.ctx import RequestContext

        request = next(iter(kwargs.values()))
        with RequestContext(_flask_app(), request.environ, request=request):  # type: ignore[arg-type]
            if self.wants_headers:
                return self.run(**kwargs, request_headers=headers)
            return self.run(**kwargs)


def _import_folders(path: Path) -> list[str]:
    """What azmlinfsrv puts on sys.path (the app root and its source directory), then the
    script's own folder."""
    root = os.environ.get("AML_APP_ROOT") or os.getcwd()
    folders = [root]
    source = os.environ.get("AZUREML_SOURCE_DIRECTORY")
    if source:
        folders.append(os.path.join(root, source))
    folders.append(str(path.parent))
    return folders


_FLASK: list[Any] = []


def _flask_app() -> Any:
    """A bare Flask app whose contexts @rawhttp calls run in; None without Flask."""
    if not _FLASK:
        try:
            import flask
        except ImportError:  # pragma: no cover - Flask is in requirements.txt
            _FLASK.append(None)
        else:
            _FLASK.append(flask.Flask("scoring"))
    return _FLASK[0]


def _is_schema_decorated(run: Callable[..., Any]) -> bool:
    try:
        from inference_schema.schema_util import is_schema_decorated
    except ImportError:
        return False
    return bool(is_schema_decorated(run))


def _legacy_rawhttp_flag() -> bool:
    """Scripts that imported azmlinfsrv's own module set its global flag instead of ours."""
    mod = sys.modules.get("azureml_inference_server_http.api.aml_request")
    return bool(getattr(mod, "_rawHttpRequested", False))
