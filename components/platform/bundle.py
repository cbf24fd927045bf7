"""What the platform hands every target besides the :class:`ScoringDeployment`.

Most targets need only the deployment; some need the platform's parts themselves (Azure ML the
workspace and the model's bytes, AKS the registry and Log Analytics, Functions the registry to
push its own image to). ``__main__.py`` declares the platform and bundles it here once; each
target's entry in ``components/targets/all.py`` takes what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.platform.build_context import BuildContext
from components.platform.cache import PredictionCache
from components.platform.monitoring import Monitoring
from components.platform.registry import Registry
from components.platform.workspace import MlWorkspace


@dataclass(frozen=True)
class Platform:
    subscription_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    deployer_object_id: pulumi.Input[str]  # who runs `pulumi up` (its grants on AKS, the registry)
    registry: Registry
    workspace: MlWorkspace
    monitoring: Monitoring
    cache: PredictionCache | None
    context: BuildContext  # the scoring image's build context: the model's bytes, its source
