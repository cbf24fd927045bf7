"""inference-schema run() with a default for its second parameter."""

from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", StandardPythonParameterType([1, 2, 3]))
@input_schema("scale", StandardPythonParameterType(1))
@output_schema(StandardPythonParameterType({"total": 6}))
def run(data, scale=10):
    return {"total": sum(data) * scale}
