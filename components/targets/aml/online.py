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

Model data collection (``dataCollectionEnabled``): Azure ML's own data collector on each
deployment (``dataCollector``, https://learn.microsoft.com/azure/machine-learning/concept-data-collection),
not the host's blob writer (``DATA_COLLECTION_ENABLED=false`` here: the deployments run as the
endpoint's identity, which holds no grant on the ``modeldata`` container). Azure ML writes to the
workspace blob store under ``modelDataCollector/<endpoint>/<deployment>/<collection>/yyyy/MM/dd/HH``
at the stack's ``dataCollectionSamplingRate``. Collections: ``request`` and ``response`` are
payload logging (the HTTP bodies, captured by Azure ML itself, nothing needed from the image);
``model_inputs`` and ``model_outputs`` are custom logging ("Collection request and response are
reserved for payload logging, others are for custom logging", DataCollector.collections in the
REST API), filled only by a scoring script that logs through ``azureml-ai-monitoring``'s
``Collector(name="model_inputs")``; they are declared so that such a script works unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

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
from components.platform.cache import AccessAssignment, PredictionCache
from components.providers.arm_patch import ArmPropertiesPatch
from components.targets.aml.common import API_VERSION, workspace_scope

DEPLOYMENTS = ("blue", "green")
ENVIRONMENT = "mlscore-scoring"
MAX_REQUEST_TIMEOUT_MS = 180_000  # managed online endpoints cut requests at 180 s
# Wrong here (the deployments run as the endpoint's system identity, not the pull identity): left
# out of the deployments' environment. AZUREML_MODEL_DIR is not in the runtime environment at all:
# Azure ML sets it to its mount of the registered model, the same path and files the image has.
_NOT_FORWARDED = ("AZURE_CLIENT_ID",)
PAYLOAD_COLLECTIONS = ("request", "response")  # Azure ML captures these itself
CUSTOM_COLLECTIONS = ("model_inputs", "model_outputs")  # written by azureml-ai-monitoring


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


def data_collector(deployment: ScoringDeployment) -> ml.DataCollectorArgs | None:
    """Azure ML's data collector, hourly folders, the stack's sampling rate; None when off."""
    o = deployment.settings.observability
    if not o.data_collection:
        return None
    collection = ml.CollectionArgs(
        data_collection_mode=ml.DataCollectionMode.ENABLED, sampling_rate=o.sampling_rate
    )
    return ml.DataCollectorArgs(
        collections=dict.fromkeys((*PAYLOAD_COLLECTIONS, *CUSTOM_COLLECTIONS), collection),
        rolling_rate=ml.RollingRateType.HOUR,
    )


def traffic(deployment: ScoringDeployment) -> dict[str, int]:
    o = deployment.settings.online
    return {"blue": o.traffic_blue, "green": o.traffic_green}


def mirror_traffic(deployment: ScoringDeployment) -> dict[str, int]:
    o = deployment.settings.online
    return {"green": o.mirror_green} if o.mirror_green else {}


def public_access(deployment: ScoringDeployment) -> str:
    return "Enabled" if deployment.settings.public_network_access else "Disabled"


def probe_settings() -> ml.ProbeSettingsArgs:
    return ml.ProbeSettingsArgs(
        initial_delay="PT10S",
        period="PT10S",
        timeout="PT2S",
        failure_threshold=30,
        success_threshold=1,
    )


def request_settings(deployment: ScoringDeployment) -> ml.OnlineRequestSettingsArgs:
    """No ``maxQueueWait``: "(Deprecated for Managed Online Endpoints) ... Now increase
    request_timeout_ms to account for any networking/queue delays" (OnlineRequestSettings,
    https://learn.microsoft.com/javascript/api/@azure/arm-machinelearning/onlinerequestsettings).
    A dict, not ``OnlineRequestSettingsArgs``: that class fills in ``max_queue_wait='PT0.5S'``."""
    scoring = deployment.settings.scoring
    timeout_s = -(-min(scoring.timeout_ms, MAX_REQUEST_TIMEOUT_MS) // 1000)
    settings: ml.OnlineRequestSettingsArgsDict = {
        "request_timeout": f"PT{timeout_s}S",
        "max_concurrent_requests_per_instance": scoring.workers,
    }
    return cast(ml.OnlineRequestSettingsArgs, settings)  # the SDK takes both forms


def deployment_description(deployment: ScoringDeployment, slot: str) -> str:
    s = deployment.settings
    blue_image = s.online.blue_image
    return f"{slot}: {s.model.name} {s.model.version}" + (
        f", pinned to {blue_image}" if slot == "blue" and blue_image else ""
    )


def declared_hash(deployment: ScoringDeployment) -> str:
    """Hash of the endpoint's own declared configuration: when it changes (a PUT without
    traffic), the traffic is applied again."""
    s = deployment.settings
    declared = json.dumps(
        {
            "auth": "Key",
            "public": public_access(deployment),
            "tags": dict(s.tags),
            "stack": s.stack,
        },
        sort_keys=True,
    )
    return hashlib.sha256(declared.encode()).hexdigest()[:16]


class AmlOnline(ScoringTarget):
    def __init__(self, name: str, args: AmlOnlineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:target:AmlOnline", name, None, opts)
        d = args.deployment
        child = pulumi.ResourceOptions(parent=self)
        scope = workspace_scope(args.workspace_name, d.resource_group_name)

        self.environment = self._environment(d, scope, child)
        self.environment_version = self._environment_version(d, scope)
        self.online_endpoint = self._endpoint(d, scope, child)
        # Redis with Entra ID as the endpoint's own identity, granted a data access policy here
        # (a key could only be a plain environment variable, readable in the workspace).
        self.principal_id: pulumi.Output[str] = self.online_endpoint.identity.apply(
            lambda i: i.principal_id if i else ""
        )
        self.cache_access = self._cache_access(args)
        self.deployments: dict[str, ml.OnlineDeployment] = self._deployments(args, scope)
        live = traffic(d)
        mirror = mirror_traffic(d)
        self.traffic = self._traffic(d, live, mirror, child)

        self.primary_key, self.secondary_key = self._keys(args)
        endpoint = self._contract(d, live, mirror)
        self._finish(endpoint, endpoint_name=self.online_endpoint.name, traffic=live)

    def _environment(
        self, d: ScoringDeployment, scope: dict[str, Any], child: pulumi.ResourceOptions
    ) -> ml.EnvironmentContainer:
        return ml.EnvironmentContainer(
            "environment",
            name=ENVIRONMENT,
            properties=ml.EnvironmentContainerPropertiesArgs(
                description="The mlscore scoring image (scoring/) as a custom container.",
                tags=dict(d.settings.tags),
            ),
            opts=child,
            **scope,
        )

    def _environment_version(
        self, d: ScoringDeployment, scope: dict[str, Any]
    ) -> ml.EnvironmentVersion:
        port = d.settings.scoring.port
        return ml.EnvironmentVersion(
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
                tags=dict(d.settings.tags),
            ),
            # Kept in Azure when a new build replaces it, so blue can stay on it (onlineBlueImage);
            # a version is a few lines of metadata, the image itself lives in the registry.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            **scope,
        )

    def _environment_id(self, d: ScoringDeployment, slot: str) -> pulumi.Input[str]:
        """Green runs the current build. Blue runs it too, unless it is pinned to an earlier one:
        that build's environment version, created when it was current and kept since."""
        blue_image = d.settings.online.blue_image
        if slot == "blue" and blue_image:
            return pulumi.Output.concat(
                self.environment.id, "/versions/", image_version(blue_image)
            )
        return self.environment_version.id

    def _endpoint(
        self, d: ScoringDeployment, scope: dict[str, Any], child: pulumi.ResourceOptions
    ) -> ml.OnlineEndpoint:
        s = d.settings
        return ml.OnlineEndpoint(
            "endpoint",
            endpoint_name=endpoint_name(d),
            location=d.location,
            # System-assigned: Azure ML grants it AcrPull on the workspace registry and read
            # access to the workspace storage (image pull and model download).
            identity=ml.ManagedServiceIdentityArgs(
                type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED
            ),
            properties=ml.OnlineEndpointPropertiesArgs(
                auth_mode=ml.EndpointAuthMode.KEY,
                public_network_access=public_access(d),
                description=f"{s.model.name} scoring (blue/green) for stack {s.stack}.",
            ),
            tags=dict(s.tags),
            opts=child,
            **scope,
        )

    def _cache_access(self, args: AmlOnlineArgs) -> AccessAssignment | None:
        if args.cache is None:
            return None
        return args.cache.grant_data_access(
            "redis-endpoint-access",
            "amlonlineendpoint",
            self.principal_id,
            endpoint_name(args.deployment),
            parent=self,
        )

    def _deployments(
        self, args: AmlOnlineArgs, scope: dict[str, Any]
    ) -> dict[str, ml.OnlineDeployment]:
        """Blue, then green: an endpoint takes one deployment at a time ("Cannot create a
        deployment in endpoint ... because it is in Updating provisioning state",
        Azure/azure-sdk-for-net#36961).

        They do not wait for the endpoint identity's access to the cache: the scoring host
        serves without the cache until it can sign in, then uses it, and a deployment takes
        longer to create than the access policy.
        """
        d = args.deployment
        cache_env, _ = d.cache_env(signs_in_as=self.principal_id)
        env = {**deployment_env(d), **cache_env}
        deployments: dict[str, ml.OnlineDeployment] = {}
        for slot in DEPLOYMENTS:
            after = list(deployments.values())[-1:]
            opts = pulumi.ResourceOptions(parent=self, depends_on=after)
            deployments[slot] = self._deployment(args, slot, env, scope, opts)
        return deployments

    def _deployment(
        self,
        args: AmlOnlineArgs,
        slot: str,
        env: dict[str, pulumi.Input[str]],
        scope: dict[str, Any],
        opts: pulumi.ResourceOptions,
    ) -> ml.OnlineDeployment:
        d = args.deployment
        s = d.settings
        probe = probe_settings()
        return ml.OnlineDeployment(
            slot,
            deployment_name=slot,
            endpoint_name=self.online_endpoint.name,
            location=d.location,
            sku=ml.SkuArgs(name="Default", capacity=s.online.instance_count),
            properties=ml.ManagedOnlineDeploymentArgs(
                endpoint_compute_type="Managed",
                instance_type=s.online.instance_type,
                model=args.model_id,
                environment_id=self._environment_id(d, slot),
                # the slot names the deployment in telemetry, as in Azure ML's collected data
                environment_variables={
                    **env,
                    "AZUREML_DEPLOYMENT": slot,
                    "SCORING_DEPLOYMENT_NAME": slot,
                },
                app_insights_enabled=True,
                data_collector=data_collector(d),
                # Left to the API's default (the SDK sends "Enabled") in a managed-VNet
                # workspace, never the legacy isolation's "Disabled": "the
                # egress_public_network_access flag for the deployment no longer applies when
                # you use a workspace managed virtual network ... outbound communication will be
                # controlled by the rules set for the workspace's managed virtual network":
                # https://learn.microsoft.com/azure/machine-learning/concept-secure-network-traffic-flow
                egress_public_network_access=None if s.network.isolated else public_access(d),
                liveness_probe=probe,
                readiness_probe=probe,
                request_settings=request_settings(d),
                scale_settings=ml.DefaultScaleSettingsArgs(scale_type="Default"),
                description=deployment_description(d, slot),
            ),
            tags=dict(s.tags),
            opts=opts,
            **scope,
        )

    def _traffic(
        self,
        d: ScoringDeployment,
        live: dict[str, int],
        mirror: dict[str, int],
        child: pulumi.ResourceOptions,
    ) -> ArmPropertiesPatch:
        """Live and mirrored traffic, set once both deployments exist."""
        return ArmPropertiesPatch(
            "traffic",
            resource_id=self.online_endpoint.id,
            api_version=API_VERSION,
            values={"traffic": live, "mirrorTraffic": mirror},
            on_delete={"traffic": dict.fromkeys(DEPLOYMENTS, 0), "mirrorTraffic": {}},
            after=[*(dep.id for dep in self.deployments.values()), declared_hash(d)],
            opts=child,
        )

    def _keys(self, args: AmlOnlineArgs) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """The endpoint's primary and secondary keys (``listOnlineEndpointKeys``), as secrets."""
        keys = ml.list_online_endpoint_keys_output(
            endpoint_name=self.online_endpoint.name,
            resource_group_name=args.deployment.resource_group_name,
            workspace_name=args.workspace_name,
        )
        return (
            pulumi.Output.secret(keys.apply(lambda k: k.primary_key or "")),
            pulumi.Output.secret(keys.apply(lambda k: k.secondary_key or "")),
        )

    def _contract(
        self, d: ScoringDeployment, live: dict[str, int], mirror: dict[str, int]
    ) -> Endpoint:
        s = d.settings
        props = self.online_endpoint.properties
        return Endpoint(
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
