"""What the Azure ML tests share: the resource types, and finding a component's children in a
run under mocks."""

from __future__ import annotations

from typing import Any

from components import PROJECT_ROOT
from preview import engine, fakes

ROOT = PROJECT_ROOT
ML = "azure-native:machinelearningservices"
DYNAMIC = "pulumi-python:dynamic:Resource"
MODEL_DIR = ROOT / "aml" / "model" / "diabetes-ridge" / "1"


def inputs(r: engine.Registered) -> dict[str, Any]:
    return engine.reveal(r.inputs)


def under(run: engine.Run, component_type: str) -> list[engine.Registered]:
    (component,) = [r for r in run.resources if r.type == component_type]
    return run.children(component.urn)


def child(run: engine.Run, component_type: str, type_: str, name: str) -> engine.Registered:
    (found,) = [r for r in under(run, component_type) if r.type == type_ and r.name == name]
    return found


def arm_id(run: engine.Run, r: engine.Registered) -> str:
    return r.outputs["id"] if "id" in r.outputs else fakes.arm_id(r.type, r.azure_name)
