"""What the Azure ML components share: the ARM API version and the workspace every resource of
theirs lives in."""

from __future__ import annotations

from typing import Any

import pulumi

API_VERSION = "2025-12-01"  # the Microsoft.MachineLearningServices API of azure-native v3


def workspace_scope(
    workspace_name: pulumi.Input[str], resource_group_name: pulumi.Input[str]
) -> dict[str, Any]:
    """The workspace inputs every Azure ML resource of a component takes (``**`` into each)."""
    return {"workspace_name": workspace_name, "resource_group_name": resource_group_name}
