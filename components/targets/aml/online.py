"""Azure ML managed online endpoint with blue and green deployments (the SDK v2 successor of the
seeds' ACI/AKS web services).

What runs: the project's scoring image as a custom-container environment (``EnvironmentContainer``
+ ``EnvironmentVersion`` with the image and its inference routes: liveness ``/``, readiness
``/ready``, scoring ``/score``, all on ``scoringPort``) plus the registered model, which Azure ML
mounts into the container and points ``AZUREML_MODEL_DIR`` at. Why the image and not Azure ML's
curated environment + ``score.py``: every target runs the same image (one data plane, one set of
tests, swagger from the same host), and an image by digest is immutable, so what was tested is
what serves. The model is still attached (not only baked in) so the deployment names the
registered version and the batch endpoint scores the same bytes.

Authentication: ``authMode: Key``; clients send ``Authorization: Bearer <key>`` (the keys come
from ``listOnlineEndpointKeys`` and are exported as secrets). Azure ML checks the key, so the
scoring host's own key check is not configured here.

Traffic: live traffic (``onlineTrafficBlue`` / ``onlineTrafficGreen``, summing to 100) and the
share mirrored to green (``onlineMirrorGreen``, at most 50, only while green has no live
traffic) are set on the endpoint after both deployments exist, by ``ArmPropertiesPatch``
(Azure refuses traffic for deployments that do not exist yet, and the deployments are children of
the endpoint).

Builds: green always runs the current build. Blue runs it too, unless ``onlineBlueImage`` pins
it to an earlier one (the previous value of the stack output ``image``). Environment versions are
kept in Azure when a new build replaces them (``retain_on_delete``), so the pinned build's version
is still there.

The safe rollout of a new build: pin blue first
(``pulumi config set mlscore:onlineBlueImage "$(pulumi stack output image)"``), then deploy the
new build with ``onlineTrafficGreen: 0`` and e.g. ``onlineMirrorGreen: 10`` to shadow-test green.
Then set ``onlineMirrorGreen: 0`` with ``onlineTrafficBlue: 90`` / ``onlineTrafficGreen: 10``,
watch the metrics, and finally ``onlineTrafficBlue: 0`` / ``onlineTrafficGreen: 100``. Each
traffic step is one ``pulumi up`` that only PUTs the endpoint's traffic. Clearing
``onlineBlueImage`` at the end moves blue to the new build too. To roll back, put the traffic
back on blue. A single deployment can be called directly with the header
``azureml-model-deployment: green``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native.machinelearningservices as ml

from components.contract import (
    AUTH_AML_KEY,
    LIVENESS_PATH,
    READINESS_PATH,
    SCORE_PATH,
    Endpoint,
    ScoringDeployment,
    ScoringTarget,
)
from components.platform.cache import PredictionCache
from components.providers.arm_patch import ArmPropertiesPatch

API_VERSION = "2025-12-01"  # the Microsoft.MachineLearningServices API of azure-native v3
DEPLOYMENTS = ("blue", "green")
ENVIRONMENT = "mlscore-scoring"
MAX_REQUEST_TIMEOUT_MS = 180_000  # managed online endpoints cut requests at 180 s
# Set by Azure ML itself (model mount) or wrong here (the deployments run as the endpoint's
# system identity, not the pull identity): left out of the deployments' environment.
_NOT_FORWARDED = ("AZUREML_MODEL_DIR", "AZURE_CLIENT_ID")


@dataclass(frozen=True)
class AmlOnlineArgs:
    deployment: ScoringDeployment
    workspace_name: pulumi.Input[str]
    model_id: pulumi.Input[str]
    cache: PredictionCache | None = None  # grants the endpoint's identity access to Redis


def endpoint_name(deployment: ScoringDeployment) -> str:
    """Online endpoint names are unique per region (they are DNS labels): 3-32 characters."""
    return deployment.naming.global_dashed("score")[:32].rstrip("-")


def image_version(image_ref: str) -> str:
    """Environment version of an image: its digest's first 16 hex digits (versions are
    immutable, so a new image is a new version)."""
    tail = image_ref.rsplit("sha256:", 1)[-1] if "sha256:" in image_ref else image_ref
    digits = "".join(c for c in tail if c.isalnum())
    return digits[:16] or hashlib.sha256(image_ref.encode()).hexdigest()[:16]


def deployment_env(deployment: ScoringDeployment) -> dict[str, pulumi.Input[str]]:
    return {k: v for k, v in deployment.runtime_env().items() if k not in _NOT_FORWARDED}


def traffic(deployment: ScoringDeployment) -> dict[str, int]:
    o = deployment.settings.online
    return {"blue": o.traffic_blue, "green": o.traffic_green}


def mirror_traffic(deployment: ScoringDeployment) -> dict[str, int]:
    o = deployment.settings.online
    return {"green": o.mirror_green} if o.mirror_green else {}


class AmlOnline(ScoringTarget):
    def __init__(self, name: str, args: AmlOnlineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:target:AmlOnline", name, None, opts)
        d = args.deployment
        s = d.settings
        child = pulumi.ResourceOptions(parent=self)
        port = s.scoring.port
        common: dict[str, Any] = {
            "workspace_name": args.workspace_name,
            "resource_group_name": d.resource_group_name,
        }

        self.environment = ml.EnvironmentContainer(
            "environment",
            name=ENVIRONMENT,
            properties=ml.EnvironmentContainerPropertiesArgs(
                description="The mlscore scoring image (scoring/) as a custom container.",
                tags=dict(s.tags),
            ),
            opts=child,
            **common,
        )
        self.environment_version = ml.EnvironmentVersion(
            "environment-version",
            name=self.environment.name,
            version=pulumi.Output.from_input(d.image).apply(image_version),
            properties=ml.EnvironmentVersionPropertiesArgs(
                image=d.image,
                os_type=ml.OperatingSystemType.LINUX,
                auto_rebuild=ml.AutoRebuildSetting.DISABLED,
                inference_config=ml.InferenceContainerPropertiesArgs(
                    liveness_route=ml.RouteArgs(path=LIVENESS_PATH, port=port),
                    readiness_route=ml.RouteArgs(path=READINESS_PATH, port=port),
                    scoring_route=ml.RouteArgs(path=SCORE_PATH, port=port),
                ),
                description="Scoring host image by digest; routes on the scoring port.",
                tags=dict(s.tags),
            ),
            # Kept in Azure when a new build replaces it, so blue can stay on it (onlineBlueImage);
            # a version is a few lines of metadata, the image itself lives in the registry.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            **common,
        )
        # Green runs the current build. Blue runs it too, unless it is pinned to an earlier one:
        # that build's environment version, created when it was current and kept since.
        blue_image = s.online.blue_image
        environment_ids: dict[str, pulumi.Input[str]] = {
            "green": self.environment_version.id,
            "blue": pulumi.Output.concat(
                self.environment.id, "/versions/", image_version(blue_image)
            )
            if blue_image
            else self.environment_version.id,
        }

        public = "Enabled" if s.public_network_access else "Disabled"
        endpoint_properties = ml.OnlineEndpointPropertiesArgs(
            auth_mode=ml.EndpointAuthMode.KEY,
            public_network_access=public,
            description=f"{s.model.name} scoring (blue/green) for stack {s.stack}.",
        )
        self.online_endpoint = ml.OnlineEndpoint(
            "endpoint",
            endpoint_name=endpoint_name(d),
            location=d.location,
            # System-assigned: Azure ML grants it AcrPull on the workspace registry and read
            # access to the workspace storage (image pull and model download).
            identity=ml.ManagedServiceIdentityArgs(
                type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED
            ),
            properties=endpoint_properties,
            tags=dict(s.tags),
            opts=child,
            **common,
        )

        probe = ml.ProbeSettingsArgs(
            initial_delay="PT10S",
            period="PT10S",
            timeout="PT2S",
            failure_threshold=30,
            success_threshold=1,
        )
        timeout_s = -(-min(s.scoring.timeout_ms, MAX_REQUEST_TIMEOUT_MS) // 1000)
        # Redis with Entra ID as the endpoint's own identity, granted a data access policy here
        # (a key could only be a plain environment variable, readable in the workspace).
        self.principal_id: pulumi.Output[str] = self.online_endpoint.identity.apply(
            lambda i: i.principal_id if i else ""
        )
        self.cache_access = (
            args.cache.grant_data_access(
                "redis-endpoint-access",
                "aml-online-endpoint",
                self.principal_id,
                endpoint_name(d),
                parent=self,
            )
            if args.cache is not None
            else None
        )
        cache_env, _ = d.cache_env(signs_in_as=self.principal_id)
        env = {**deployment_env(d), **cache_env}
        deployment_opts = pulumi.ResourceOptions(
            parent=self, depends_on=[self.cache_access] if self.cache_access else []
        )
        self.deployments: dict[str, ml.OnlineDeployment] = {}
        for slot in DEPLOYMENTS:
            self.deployments[slot] = ml.OnlineDeployment(
                slot,
                deployment_name=slot,
                endpoint_name=self.online_endpoint.name,
                location=d.location,
                sku=ml.SkuArgs(name="Default", capacity=s.online.instance_count),
                properties=ml.ManagedOnlineDeploymentArgs(
                    endpoint_compute_type="Managed",
                    instance_type=s.online.instance_type,
                    model=args.model_id,
                    environment_id=environment_ids[slot],
                    environment_variables={**env, "AZUREML_DEPLOYMENT": slot},
                    app_insights_enabled=True,
                    egress_public_network_access=public,
                    liveness_probe=probe,
                    readiness_probe=probe,
                    request_settings=ml.OnlineRequestSettingsArgs(
                        request_timeout=f"PT{timeout_s}S",
                        max_concurrent_requests_per_instance=s.scoring.workers,
                        max_queue_wait="PT0.5S",
                    ),
                    scale_settings=ml.DefaultScaleSettingsArgs(scale_type="Default"),
                    description=f"{slot}: {s.model.name} {s.model.version}"
                    + (f", pinned to {blue_image}" if slot == "blue" and blue_image else ""),
                ),
                tags=dict(s.tags),
                opts=deployment_opts,
                **common,
            )

        live = traffic(d)
        mirror = mirror_traffic(d)
        # A change of the endpoint's own declared configuration (a PUT without traffic) applies
        # the traffic again.
        declared = json.dumps(
            {"auth": "Key", "public": public, "tags": dict(s.tags), "stack": s.stack},
            sort_keys=True,
        )
        self.traffic = ArmPropertiesPatch(
            "traffic",
            resource_id=self.online_endpoint.id,
            api_version=API_VERSION,
            values={"traffic": live, "mirrorTraffic": mirror},
            on_delete={"traffic": dict.fromkeys(DEPLOYMENTS, 0), "mirrorTraffic": {}},
            after=[
                *(dep.id for dep in self.deployments.values()),
                hashlib.sha256(declared.encode()).hexdigest()[:16],
            ],
            opts=child,
        )

        keys = ml.list_online_endpoint_keys_output(
            endpoint_name=self.online_endpoint.name,
            resource_group_name=d.resource_group_name,
            workspace_name=args.workspace_name,
        )
        self.primary_key = pulumi.Output.secret(keys.apply(lambda k: k.primary_key or ""))
        self.secondary_key = pulumi.Output.secret(keys.apply(lambda k: k.secondary_key or ""))
        props = self.online_endpoint.properties
        endpoint = Endpoint(
            scoring_uri=props.apply(lambda p: p.scoring_uri or ""),
            swagger_uri=props.apply(lambda p: p.swagger_uri or ""),
            health_uri=None,  # Azure ML probes the containers itself; no public health route
            auth_scheme=AUTH_AML_KEY,
            key=self.primary_key,
            extra={
                "endpoint_name": self.online_endpoint.name,
                "deployments": {
                    slot: {
                        "instance_type": s.online.instance_type,
                        "instance_count": s.online.instance_count,
                    }
                    for slot in DEPLOYMENTS
                },
                "traffic": live,
                "mirror_traffic": mirror,
                "deployment_header": "azureml-model-deployment: <blue|green>",
                "secondary_key": self.secondary_key,
                # the identity the deployments run as (e.g. for access to an existing Redis)
                "principal_id": self.principal_id,
            },
        )
        self._finish(endpoint, endpoint_name=self.online_endpoint.name, traffic=live)
