"""The list of targets ``__main__.py`` walks, in the order they are declared.

Adding a target: its folder under ``components/targets/`` (its settings, its component with
``interfaces()``, and a ``TARGET`` entry), its keys in ``Pulumi.yaml``, and one line here.
"""

from __future__ import annotations

from components.contract import TargetEntry
from components.platform.bundle import Platform
from components.targets.aci import target as aci
from components.targets.aks import target as aks
from components.targets.aml import target as aml
from components.targets.app_service import target as app_service
from components.targets.container_apps import target as container_apps
from components.targets.functions import target as functions
from components.targets.iot import target as iot

TARGETS: tuple[TargetEntry[Platform], ...] = (
    app_service.TARGET,  # Linux web app
    functions.TARGET,  # HTTP, Blob and Service Bus triggers
    aci.TARGET,  # Container Instances (dev/test)
    container_apps.TARGET,  # HTTPS, scale to zero on concurrent requests, serverless GPU
    aml.TARGET,  # the model in the workspace, online (blue/green) and batch endpoints
    iot.TARGET,  # IoT Hub, edge device, scoring module
    aks.TARGET,  # cluster, HTTPS ingress, KEDA, accelerator
)
