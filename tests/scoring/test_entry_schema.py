"""The host's quick conversion of numpy schema inputs gives what inference-schema's does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import _deserialize_input_argument

from scoring.entry import _numpy_rows

SAMPLE = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], dtype=np.float64)

INPUTS = [
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1.5]],
    [],
    [[]],
    [1, 2, 3],
    [[[1] * 10]],
    [[1, 2, 3]],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [1, 2]],
    [["a"] * 10],
    [[None] * 10],
    [["1"] * 10],
    "not an array",
    {"a": 1},
    7,
    None,
    np.array([[1.0] * 10]),
]

PARAM_TYPES = {
    "default": NumpyParameterType(SAMPLE),
    "untyped": NumpyParameterType(SAMPLE, enforce_column_type=False),
    "any-shape": NumpyParameterType(SAMPLE, enforce_shape=False),
    "int32": NumpyParameterType(np.array([[1, 2]], dtype=np.int32)),
    "one-dim": NumpyParameterType(np.array([1.0, 2.0])),
}


def _outcome(fn: Any, value: Any) -> tuple[str, Any]:
    try:
        out = fn(value)
    except Exception as exc:
        return "raised", (type(exc), str(exc))
    return "value", (out.dtype, out.shape, repr(out.tolist()))  # repr: nan == nan


@pytest.mark.parametrize("name", sorted(PARAM_TYPES))
@pytest.mark.parametrize("index", range(len(INPUTS)))
def test_same_array_or_same_error_as_inference_schema(name: str, index: int) -> None:
    param_type = PARAM_TYPES[name]
    fast = _numpy_rows(param_type)
    assert fast is not None

    def theirs(v: Any) -> Any:
        return _deserialize_input_argument(v, param_type, "data")

    value = INPUTS[index]
    copy = value.copy() if hasattr(value, "copy") else value
    assert _outcome(fast, copy) == _outcome(theirs, value)


def test_dtypes_it_does_not_cover_keep_inference_schemas_conversion() -> None:
    structured = np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])
    dates = np.array(["2026-12-01"], dtype="datetime64[D]")
    durations = np.array([1], dtype="timedelta64[s]")

    class Subclass(NumpyParameterType):
        pass

    for param_type in (
        NumpyParameterType(structured),
        NumpyParameterType(dates),
        NumpyParameterType(durations),
        Subclass(SAMPLE),
    ):
        assert _numpy_rows(param_type) is None


def test_a_second_schema_script_in_one_process_gets_its_own_schema(tmp_path) -> None:
    """Both scripts import as ``entry_module``; inference-schema's process-wide registry refused
    the second one ("output schema already defined": the Functions tests after the batch
    driver's, in one worker) until the loader forgot the first one's entries."""
    from pathlib import Path

    from inference_schema.schema_util import get_input_schema

    from scoring.entry import UserScript

    first = UserScript(Path(__file__).parent / "scripts" / "c_schema_default.py")
    second_path = tmp_path / "score.py"
    second_path.write_text(
        "from inference_schema.parameter_types.standard_py_parameter_type import "
        "StandardPythonParameterType\n"
        "from inference_schema.schema_decorators import input_schema, output_schema\n"
        "def init():\n    pass\n"
        "@input_schema('rows', StandardPythonParameterType([[0.5]]))\n"
        "@output_schema(StandardPythonParameterType([1.0]))\n"
        "def run(rows):\n    return [sum(r) for r in rows]\n"
    )
    second = UserScript(second_path)
    assert first.module is not second.module
    assert set(get_input_schema(second.run)["properties"]) == {"rows"}
    assert second.run([[1.0, 2.0]]) == [3.0]
