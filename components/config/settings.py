"""Typed, validated settings: the one place where stack config is read and checked.

The keys, their types and defaults are declared once, in ``Pulumi.yaml``'s ``config:`` block; this
module reads the values through :func:`from_pulumi` (or any ``key -> str | None`` lookup in tests
and the offline preview), converts them, and checks every rule. Problems are collected, not
raised one by one: :class:`SettingsError` carries all of them, each naming the config key, the
bad value and the fix, and it is raised before the program declares a single resource.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components import PROJECT_ROOT
from components.config.naming import RULES, Naming, stable_suffix
from components.config.sizes import FPGA_REGIONS, SIZES

PROJECT_FILE = PROJECT_ROOT / "Pulumi.yaml"
MIN_AKS_VCPUS = 12


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigProblem:
    keys: tuple[str, ...]
    value: str
    problem: str
    fix: str

    def __str__(self) -> str:
        keys = ", ".join(f"mlscore:{k}" for k in self.keys)
        return f"{keys} = {self.value}: {self.problem}; fix: {self.fix}"


class SettingsError(pulumi.RunError):
    """Every problem found in the stack config, reported together (the CLI prints it without a
    traceback, as a RunError)."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the stack config:\n{lines}")


# --------------------------------------------------------------------------------------------
# Schema (from Pulumi.yaml)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeySpec:
    name: str
    type: str
    default: Any
    description: str


@cache
def schema() -> dict[str, KeySpec]:
    """The ``config:`` block of Pulumi.yaml, keyed by the bare key name (without ``mlscore:``)."""
    project = yaml.safe_load(PROJECT_FILE.read_text())
    specs: dict[str, KeySpec] = {}
    for full_key, spec in project.get("config", {}).items():
        _, _, name = full_key.partition(":")
        specs[name] = KeySpec(name, spec["type"], spec.get("default"), spec.get("description", ""))
    return specs


def project_name() -> str:
    return str(yaml.safe_load(PROJECT_FILE.read_text())["name"])


# --------------------------------------------------------------------------------------------
# The settings object
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSettings:
    name: str
    version: str
    path: Path | None = None  # folder of the model files registered in Azure ML (modelPath)


@dataclass(frozen=True)
class ScoringSettings:
    image_repository: str
    port: int
    workers: int
    timeout_ms: int
    cache_ttl_seconds: int


@dataclass(frozen=True)
class RedisSettings:
    enabled: bool
    sku: str
    family: str
    capacity: int
    existing_host: str
    port: int

    @property
    def create(self) -> bool:
        """True when the program creates Azure Cache for Redis (no existing host given)."""
        return self.enabled and not self.existing_host


@dataclass(frozen=True)
class AppServiceSettings:
    enabled: bool
    sku: str
    min_instances: int
    max_instances: int

    @property
    def autoscale(self) -> bool:
        return self.max_instances > self.min_instances


@dataclass(frozen=True)
class FunctionsSettings:
    enabled: bool
    sku: str
    queue_name: str
    max_elastic_workers: int = 3
    service_bus_sku: str = "Basic"

    @property
    def elastic(self) -> bool:
        """True on an Elastic Premium (EP*) plan; False on a Dedicated (P*v3) plan."""
        return self.sku.startswith("EP")


@dataclass(frozen=True)
class AciSettings:
    enabled: bool
    cpu: float
    memory_gb: float


@dataclass(frozen=True)
class AutoscaleSettings:
    enabled: bool
    min_replicas: int
    max_replicas: int
    target_utilization: int
    target_rps: int
    request_ms: int
    max_concurrent_per_container: int

    @property
    def planned_replicas(self) -> int | None:
        """Replicas the seeds' formula asks for at the target load, or None when no load is set."""
        if self.target_rps <= 0 or self.request_ms <= 0:
            return None
        return planned_max_replicas(
            self.target_rps,
            self.request_ms / 1000,
            self.target_utilization / 100,
            self.max_concurrent_per_container,
        )

    @property
    def effective_max_replicas(self) -> int:
        """The HPA maximum: the configured one, raised to the planned one when a load is set."""
        return max(self.max_replicas, self.planned_replicas or 0)


@dataclass(frozen=True)
class AksSettings:
    enabled: bool
    existing_cluster_id: str
    kubernetes_version: str
    system_vm_size: str
    system_node_count: int
    vm_size: str
    node_count: int
    max_node_count: int
    autoscale: AutoscaleSettings
    # Scoring container: requests (limits are 2x CPU, equal memory; see aks_workload.py).
    cpu_millicores: int = 500
    memory_mib: int = 1024
    # How the kubelogin exec plugin of the Entra ID kubeconfig signs in (azurecli, msi...).
    kubelogin_mode: str = "azurecli"
    # Control plane tier: Free (no SLA) or Standard (uptime SLA, for production).
    sku_tier: str = "Free"


@dataclass(frozen=True)
class AcceleratorSettings:
    enabled: bool
    kind: str
    vm_size: str
    node_count: int


@dataclass(frozen=True)
class IotSettings:
    enabled: bool
    hub_sku: str
    hub_capacity: int
    device_id: str
    edge_runtime_version: str = "1.6"
    edge_host_port: int = 5001
    store_forward_ttl_seconds: int = 7200
    device_host: str = ""


@dataclass(frozen=True)
class OnlineEndpointSettings:
    enabled: bool
    instance_type: str
    instance_count: int
    traffic_blue: int
    traffic_green: int
    mirror_green: int
    blue_image: str | None = None  # blue keeps this build (by digest); None: the current build


@dataclass(frozen=True)
class BatchSettings:
    enabled: bool
    vm_size: str
    max_nodes: int
    low_priority: bool
    instance_count: int = 1


@dataclass(frozen=True)
class Settings:
    project: str
    stack: str
    location: str
    naming: Naming
    public_network_access: bool
    deployer_principal_type: str
    model: ModelSettings
    scoring: ScoringSettings
    registry_sku: str
    redis: RedisSettings
    app_service: AppServiceSettings
    functions: FunctionsSettings
    aci: AciSettings
    aks: AksSettings
    accelerator: AcceleratorSettings
    iot: IotSettings
    online: OnlineEndpointSettings
    batch: BatchSettings
    tags: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Reading: typed values with problems collected
# --------------------------------------------------------------------------------------------
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class _Reader:
    """Reads raw config strings, converts them to their declared type, and collects problems."""

    def __init__(self, lookup: Callable[[str], str | None]):
        self._lookup = lookup
        self.problems: list[ConfigProblem] = []
        self.values: dict[str, Any] = {}

    def fail(self, keys: str | tuple[str, ...], value: object, problem: str, fix: str) -> None:
        keys = (keys,) if isinstance(keys, str) else keys
        self.problems.append(ConfigProblem(keys, _show(value), problem, fix))

    def raw(self, key: str) -> tuple[KeySpec, Any]:
        spec = schema().get(key)
        if spec is None:  # a programming error, not a user one
            raise KeyError(f"mlscore:{key} is read by settings.py but not declared in Pulumi.yaml")
        value = self._lookup(key)
        return spec, (spec.default if value is None else value)

    def str(self, key: str) -> str:
        _, value = self.raw(key)
        self.values[key] = str(value)
        return str(value)

    def int(self, key: str) -> int:
        _, value = self.raw(key)
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value).strip()):
            self.fail(key, value, "not a whole number", f"set mlscore:{key} to an integer")
            return 0
        self.values[key] = int(str(value).strip())
        return self.values[key]

    def float(self, key: str) -> float:
        _, value = self.raw(key)
        try:
            number = float(str(value).strip())
            if not math.isfinite(number):
                raise ValueError
        except ValueError:
            self.fail(key, value, "not a number", f"set mlscore:{key} to a decimal such as 1.5")
            return 0.0
        self.values[key] = number
        return number

    def bool(self, key: str) -> bool:
        _, value = self.raw(key)
        text = str(value).strip().lower()
        if isinstance(value, bool):
            return value
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.fail(key, value, "not a boolean", f"set mlscore:{key} to true or false")
        return False

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self.str(key)
        if value not in options:
            self.fail(key, value, "not a supported value", f"use one of {', '.join(options)}")
        return value

    def int_range(self, key: str, low: int, high: int, why: str = "") -> int:
        value = self.int(key)
        if key in self.values and not low <= value <= high:
            reason = f"must be between {low} and {high}" + (f" ({why})" if why else "")
            self.fail(key, value, reason, f"set mlscore:{key} to a value in {low}-{high}")
        return value

    def vm_size(self, key: str) -> str:
        value = self.str(key)
        if value not in SIZES:
            self.fail(
                key,
                value,
                "unknown VM size, so its vCPUs cannot be checked",
                "pick a size listed in components/config/sizes.py (e.g. Standard_D4s_v5), or add the "
                "size with its vCPU count to SIZES there",
            )
        return value


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------------------------
# Building and validating
# --------------------------------------------------------------------------------------------
APP_SERVICE_SKUS = (
    "B1", "B2", "B3", "S1", "S2", "S3", "P1v2", "P2v2", "P3v2",
    "P0v3", "P1v3", "P2v3", "P3v3", "P1mv3", "P2mv3", "P3mv3", "P4mv3", "P5mv3",
)  # fmt: skip
FUNCTIONS_SKUS = ("EP1", "EP2", "EP3", "P1v3", "P2v3", "P3v3")
REGISTRY_SKUS = ("Basic", "Standard", "Premium")
REDIS_SKUS = ("Basic", "Standard", "Premium")
AZURE_CACHE_TLS_PORT = 6380
SERVICE_BUS_SKUS = ("Basic", "Standard", "Premium")
IOT_SKUS = ("F1", "S1", "S2", "S3")
KUBELOGIN_MODES = ("azurecli", "workloadidentity", "msi", "spn", "devicecode")
MAX_HPA_REPLICAS = 1000


def load(lookup: Callable[[str], str | None], *, project: str, stack: str) -> Settings:
    """Build :class:`Settings` from ``lookup`` (bare key -> raw string or None for the default).

    Raises :class:`SettingsError` with every problem found.
    """
    r = _Reader(lookup)

    location = r.str("location")
    if not re.fullmatch(r"[a-z][a-z0-9]+", location):
        r.fail("location", location, "not an Azure region name", "use a name such as westeurope")
    prefix = r.str("prefix")
    if not re.fullmatch(r"[a-z][a-z0-9]{1,9}", prefix):
        r.fail(
            "prefix",
            prefix,
            "must be 2-10 lowercase letters and digits, starting with a letter",
            "shorten or simplify mlscore:prefix (e.g. mlscore)",
        )
    suffix = r.str("nameSuffix")
    if not re.fullmatch(r"[a-z0-9]{0,6}", suffix):
        r.fail(
            "nameSuffix",
            suffix,
            "must be 0-6 lowercase letters and digits",
            "set mlscore:nameSuffix to e.g. 'a1b2' or leave it empty",
        )
    naming = Naming(prefix, stack, suffix or stable_suffix(f"{project}/{stack}/{prefix}"))

    model = ModelSettings(r.str("modelName"), r.str("modelVersion"), _model_path(r))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}", model.name):
        r.fail(
            "modelName",
            model.name,
            "Azure ML model names take letters, digits, '.', '_' "
            "and '-', starting with a letter or digit",
            "rename the model",
        )
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,29}", model.version):
        r.fail(
            "modelVersion",
            model.version,
            "not a valid model version",
            "use a version such as 1 or 2024.11.1",
        )

    scoring = ScoringSettings(
        image_repository=r.str("imageRepository"),
        port=r.int_range("scoringPort", 1024, 65535, "the host runs as a non-root user"),
        workers=r.int_range("scoringWorkers", 1, 32),
        timeout_ms=r.int_range("scoringTimeoutMs", 100, 600_000),
        cache_ttl_seconds=r.int_range("cacheTtlSeconds", 1, 7 * 86400),
    )
    if not re.fullmatch(
        r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*", scoring.image_repository
    ):
        r.fail(
            "imageRepository",
            scoring.image_repository,
            "not a valid repository name",
            "use lowercase letters, digits and separators, e.g. scoring",
        )

    redis = RedisSettings(
        enabled=r.bool("redisEnabled"),
        sku=r.choice("redisSku", REDIS_SKUS),
        family=r.choice("redisFamily", ("C", "P")),
        capacity=r.int("redisCapacity"),
        existing_host=r.str("redisHost"),
        port=r.int_range("redisPort", 1, 65535),
    )
    _check_redis(r, redis)

    app = AppServiceSettings(
        enabled=r.bool("appServiceEnabled"),
        sku=r.choice("appServiceSku", APP_SERVICE_SKUS),
        min_instances=r.int_range("appServiceMinInstances", 1, 30),
        max_instances=r.int_range("appServiceMaxInstances", 1, 30),
    )
    if app.min_instances > app.max_instances:
        r.fail(
            ("appServiceMinInstances", "appServiceMaxInstances"),
            f"{app.min_instances} > {app.max_instances}",
            "minimum above maximum",
            "raise mlscore:appServiceMaxInstances or lower mlscore:appServiceMinInstances",
        )
    if app.enabled and app.sku.startswith("B") and app.max_instances > 3:
        r.fail(
            ("appServiceSku", "appServiceMaxInstances"),
            f"{app.sku}, {app.max_instances}",
            "Basic plans scale to at most 3 instances",
            "use S1/P1v3 or lower the maximum",
        )
    if app.enabled and app.autoscale and app.sku.startswith("B"):
        r.fail(
            ("appServiceSku", "appServiceMaxInstances"),
            app.sku,
            "autoscale rules need a Standard or Premium plan",
            "use S1 or P1v3, or set mlscore:appServiceMaxInstances equal to the minimum",
        )

    functions = FunctionsSettings(
        enabled=r.bool("functionsEnabled"),
        sku=r.choice("functionsSku", FUNCTIONS_SKUS),
        queue_name=r.str("functionsQueueName"),
        max_elastic_workers=r.int_range("functionsMaxElasticWorkers", 1, 100),
        service_bus_sku=r.choice("functionsServiceBusSku", SERVICE_BUS_SKUS),
    )
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,258}[A-Za-z0-9])?", functions.queue_name):
        r.fail(
            "functionsQueueName",
            functions.queue_name,
            "not a valid Service Bus queue name",
            "use letters, digits, '.', '-', '_' or '/', starting and ending with a letter or digit",
        )

    aci = AciSettings(r.bool("aciEnabled"), r.float("aciCpu"), r.float("aciMemoryGb"))
    if "aciCpu" in r.values and not 0.1 <= aci.cpu <= 4:
        r.fail(
            "aciCpu",
            aci.cpu,
            "Linux container groups take 0.1-4 CPU cores",
            "set mlscore:aciCpu between 0.1 and 4 (the seeds use 1)",
        )
    if "aciMemoryGb" in r.values and not 0.1 <= aci.memory_gb <= 16:
        r.fail(
            "aciMemoryGb",
            aci.memory_gb,
            "Linux container groups take 0.1-16 GB",
            "set mlscore:aciMemoryGb between 0.1 and 16 (the seeds use 1)",
        )
    if "aciMemoryGb" in r.values and round(aci.memory_gb * 10) != aci.memory_gb * 10:
        r.fail(
            "aciMemoryGb",
            aci.memory_gb,
            "memory is set in steps of 0.1 GB",
            "round mlscore:aciMemoryGb to one decimal",
        )

    autoscale = AutoscaleSettings(
        enabled=r.bool("autoscaleEnabled"),
        min_replicas=r.int_range("autoscaleMinReplicas", 1, 1000),
        max_replicas=r.int_range("autoscaleMaxReplicas", 1, 1000),
        target_utilization=r.int_range("autoscaleTargetUtilization", 1, 100, "a percentage"),
        target_rps=r.int_range("autoscaleTargetRps", 0, 1_000_000),
        request_ms=r.int_range("autoscaleRequestMs", 0, 600_000),
        max_concurrent_per_container=r.int_range("maxConcurrentRequestsPerContainer", 1, 1000),
    )
    if autoscale.min_replicas > autoscale.max_replicas:
        r.fail(
            ("autoscaleMinReplicas", "autoscaleMaxReplicas"),
            f"{autoscale.min_replicas} > {autoscale.max_replicas}",
            "the minimum replica count is above the maximum",
            "raise mlscore:autoscaleMaxReplicas or lower mlscore:autoscaleMinReplicas",
        )
    if (autoscale.target_rps > 0) != (autoscale.request_ms > 0):
        r.fail(
            ("autoscaleTargetRps", "autoscaleRequestMs"),
            f"{autoscale.target_rps}, {autoscale.request_ms}",
            "replica planning needs both the target load and the request time",
            "set both (e.g. 20 rps and 10000 ms) or both to 0",
        )
    if 1 <= autoscale.target_utilization <= 100:
        planned = autoscale.planned_replicas
        if planned is not None and planned > MAX_HPA_REPLICAS:
            r.fail(
                ("autoscaleTargetRps", "autoscaleRequestMs", "maxConcurrentRequestsPerContainer"),
                f"{autoscale.target_rps} rps x {autoscale.request_ms} ms -> {planned} replicas",
                f"the planned replica maximum is above {MAX_HPA_REPLICAS}",
                "raise mlscore:maxConcurrentRequestsPerContainer (more workers per container) or "
                "lower the target load",
            )

    aks = AksSettings(
        enabled=r.bool("aksEnabled"),
        existing_cluster_id=r.str("aksExistingClusterId"),
        kubernetes_version=r.str("aksKubernetesVersion"),
        system_vm_size=r.vm_size("aksSystemVmSize"),
        system_node_count=r.int_range("aksSystemNodeCount", 1, 100),
        vm_size=r.vm_size("aksVmSize"),
        node_count=r.int_range("aksNodeCount", 1, 1000),
        max_node_count=r.int_range("aksMaxNodeCount", 1, 1000),
        autoscale=autoscale,
        cpu_millicores=r.int_range("aksCpuMillicores", 100, 64_000),
        memory_mib=r.int_range("aksMemoryMib", 128, 262_144),
        kubelogin_mode=r.choice("aksKubeloginMode", KUBELOGIN_MODES),
        sku_tier=r.choice("aksSkuTier", ("Free", "Standard", "Premium")),
    )
    accelerator = AcceleratorSettings(
        enabled=r.bool("acceleratorEnabled"),
        kind=r.choice("acceleratorKind", ("gpu", "fpga")),
        vm_size=r.vm_size("acceleratorVmSize"),
        node_count=r.int_range("acceleratorNodeCount", 1, 100),
    )
    _check_aks(r, aks, accelerator, location)

    iot = IotSettings(
        enabled=r.bool("iotEnabled"),
        hub_sku=r.choice("iotHubSku", IOT_SKUS),
        hub_capacity=r.int_range("iotHubCapacity", 1, 200),
        device_id=r.str("iotEdgeDeviceId"),
        edge_runtime_version=r.str("iotEdgeRuntimeVersion"),
        edge_host_port=r.int_range("iotEdgeHostPort", 1, 65535),
        store_forward_ttl_seconds=r.int_range("iotEdgeStoreForwardTtlSeconds", 1, 7 * 86400),
        device_host=r.str("iotEdgeDeviceHost"),
    )
    _check_iot(r, iot)
    if iot.hub_sku == "F1" and iot.hub_capacity != 1:
        r.fail(
            ("iotHubSku", "iotHubCapacity"),
            iot.hub_capacity,
            "the free tier has exactly one unit",
            "set mlscore:iotHubCapacity to 1",
        )
    if not re.fullmatch(r"[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}", iot.device_id):
        r.fail(
            "iotEdgeDeviceId",
            iot.device_id,
            "not a valid IoT Hub device ID",
            "use up to 128 letters, digits and - . _ : characters",
        )

    online = OnlineEndpointSettings(
        enabled=r.bool("onlineEndpointEnabled"),
        instance_type=r.vm_size("onlineInstanceType"),
        instance_count=r.int_range("onlineInstanceCount", 1, 100),
        traffic_blue=r.int_range("onlineTrafficBlue", 0, 100, "a percentage"),
        traffic_green=r.int_range("onlineTrafficGreen", 0, 100, "a percentage"),
        mirror_green=r.int_range("onlineMirrorGreen", 0, 50, "Azure ML mirrors at most 50%"),
        blue_image=r.str("onlineBlueImage") or None,
    )
    if online.traffic_blue + online.traffic_green != 100:
        r.fail(
            ("onlineTrafficBlue", "onlineTrafficGreen"),
            f"{online.traffic_blue} + {online.traffic_green} = "
            f"{online.traffic_blue + online.traffic_green}",
            "live traffic percentages must add up to 100",
            "set them to e.g. 90 and 10",
        )

    _check_online(r, online)
    _check_blue_image(r, online, naming, r.str("imageRepository"))

    batch = BatchSettings(
        enabled=r.bool("batchEnabled"),
        vm_size=r.vm_size("batchVmSize"),
        max_nodes=r.int_range("batchMaxNodes", 1, 1000),
        low_priority=r.bool("batchLowPriority"),
        instance_count=r.int_range("batchInstanceCount", 1, 1000),
    )
    if batch.instance_count > batch.max_nodes:
        r.fail(
            ("batchInstanceCount", "batchMaxNodes"),
            f"{batch.instance_count} > {batch.max_nodes}",
            "a batch job cannot run on more nodes than the cluster may scale to",
            "raise mlscore:batchMaxNodes or lower mlscore:batchInstanceCount",
        )

    settings = Settings(
        project=project,
        stack=stack,
        location=location,
        naming=naming,
        public_network_access=r.bool("publicNetworkAccess"),
        deployer_principal_type=r.choice(
            "deployerPrincipalType", ("User", "ServicePrincipal", "Group")
        ),
        model=model,
        scoring=scoring,
        registry_sku=r.choice("registrySku", REGISTRY_SKUS),
        redis=redis,
        app_service=app,
        functions=functions,
        aci=aci,
        aks=aks,
        accelerator=accelerator,
        iot=iot,
        online=online,
        batch=batch,
        tags={"project": project, "stack": stack, "managed-by": "pulumi"},
    )
    if not r.problems:  # names are only meaningful once their parts are valid
        _check_names(r, settings)
    if r.problems:
        raise SettingsError(r.problems)
    return settings


def _check_redis(r: _Reader, redis: RedisSettings) -> None:
    if redis.existing_host and not re.fullmatch(
        r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
        r"[A-Za-z0-9])?)*",
        redis.existing_host,
    ):
        r.fail(
            "redisHost",
            redis.existing_host,
            "not a host name",
            "use the bare host, e.g. mycache.westeurope.redis.azure.net (no scheme, no port: "
            "the port is mlscore:redisPort)",
        )
    if not redis.create:
        return
    if redis.port != AZURE_CACHE_TLS_PORT:
        r.fail(
            ("redisPort", "redisHost"),
            redis.port,
            f"Azure Cache for Redis serves TLS on port {AZURE_CACHE_TLS_PORT} only "
            "(the non-TLS port is off)",
            f"set mlscore:redisPort to {AZURE_CACHE_TLS_PORT}, or set mlscore:redisHost to the "
            "host of an existing Redis (e.g. Azure Managed Redis on port 10000)",
        )
    if redis.sku in ("Basic", "Standard"):
        if redis.family != "C":
            r.fail(
                ("redisSku", "redisFamily"),
                f"{redis.sku}/{redis.family}",
                f"{redis.sku} caches are family C",
                "set mlscore:redisFamily to C",
            )
        if not 0 <= redis.capacity <= 6:
            r.fail(
                "redisCapacity",
                redis.capacity,
                f"{redis.sku} caches are C0-C6",
                "set mlscore:redisCapacity between 0 and 6",
            )
    elif redis.sku == "Premium":
        if redis.family != "P":
            r.fail(
                ("redisSku", "redisFamily"),
                f"{redis.sku}/{redis.family}",
                "Premium caches are family P",
                "set mlscore:redisFamily to P",
            )
        if not 1 <= redis.capacity <= 5:
            r.fail(
                "redisCapacity",
                redis.capacity,
                "Premium caches are P1-P5",
                "set mlscore:redisCapacity between 1 and 5",
            )


# Sizes of components/config/sizes.py that Azure ML managed online endpoints offer (managed online
# endpoints SKU list); a size missing here is refused with a message saying how to add it.
ONLINE_INSTANCE_TYPES = frozenset(
    {
        "Standard_DS2_v2", "Standard_DS3_v2", "Standard_DS4_v2", "Standard_DS5_v2",
        "Standard_F4s_v2", "Standard_F8s_v2", "Standard_F16s_v2",
        "Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3",
        "Standard_NC64as_T4_v3", "Standard_NC6s_v3", "Standard_NC12s_v3", "Standard_NC24s_v3",
        "Standard_NC24ads_A100_v4", "Standard_NC40ads_H100_v5",
    }
)  # fmt: skip


def _model_path(r: _Reader) -> Path | None:
    """``modelPath`` resolved against the project folder; it must hold the model files."""
    raw = r.str("modelPath")
    path = (PROJECT_FILE.parent / raw).resolve()
    if not raw or not path.is_dir() or not any(f.is_file() for f in path.rglob("*")):
        r.fail(
            "modelPath",
            raw,
            "not a folder with model files (relative to the project)",
            "point mlscore:modelPath at the model folder, e.g. aml/model/diabetes-ridge/1 "
            "(python -m scoring.sample_model.train --out aml/model writes it)",
        )
        return None
    return path


def _check_online(r: _Reader, online: OnlineEndpointSettings) -> None:
    """Azure ML managed online endpoint rules (safe rollout: traffic, mirroring, instances)."""
    if online.mirror_green and online.traffic_green:
        r.fail(
            ("onlineMirrorGreen", "onlineTrafficGreen"),
            f"{online.mirror_green}, {online.traffic_green}",
            "Azure ML mirrors traffic only to a deployment that gets no live traffic",
            "set mlscore:onlineTrafficGreen to 0 while mirroring, or mlscore:onlineMirrorGreen "
            "to 0 once green takes live traffic",
        )
    known = online.instance_type in SIZES
    if known and online.instance_type not in ONLINE_INSTANCE_TYPES:
        r.fail(
            "onlineInstanceType",
            online.instance_type,
            "not a size Azure ML managed online endpoints offer",
            "use e.g. Standard_DS3_v2 or Standard_F4s_v2 (managed online endpoints SKU list), "
            "or add the size to ONLINE_INSTANCE_TYPES in components/config/settings.py",
        )
    if online.enabled and online.instance_count > 20:
        r.fail(
            "onlineInstanceCount",
            online.instance_count,
            "more than 20 instances per deployment is beyond the default Azure ML quota",
            "set mlscore:onlineInstanceCount to 20 or less (raise the quota first for more)",
        )


def _check_blue_image(
    r: _Reader, online: OnlineEndpointSettings, naming: Naming, repository: str
) -> None:
    """The pinned blue build must be one this stack pushed: its registry, its repository, a digest.

    Its environment version exists only if the stack deployed that build before (see
    components/targets/aml/online.py), so a tag, or an image from elsewhere, cannot be pinned.
    """
    image = online.blue_image
    if image is None:
        return
    expected = f"{naming.registry()}.azurecr.io/{repository}@sha256:"
    if not (image.startswith(expected) and re.fullmatch(r"[0-9a-f]{64}", image[len(expected) :])):
        r.fail(
            "onlineBlueImage",
            image,
            "blue can only keep a build this stack deployed before, named by its digest",
            f"set it to the previous value of the stack output `image` ({expected}<64 hex>), "
            'e.g. pulumi config set mlscore:onlineBlueImage "$(pulumi stack output image)" '
            "before deploying a new build; or leave it empty for blue to run the current build",
        )


# IoT Edge LTS releases whose servicing has ended (1.5 LTS: 12 Nov 2026; 1.4 LTS: 12 Nov 2024).
IOT_EDGE_UNSUPPORTED = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")
IOT_EDGE_HUB_PORTS = (443, 5671, 8883)


def _check_iot(r: _Reader, iot: IotSettings) -> None:
    version = iot.edge_runtime_version
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
        r.fail(
            "iotEdgeRuntimeVersion",
            version,
            "not an IoT Edge version",
            "use a version such as 1.6 (the LTS release) or 1.6.2",
        )
    elif ".".join(version.split(".")[:2]) in IOT_EDGE_UNSUPPORTED:
        r.fail(
            "iotEdgeRuntimeVersion",
            version,
            "this IoT Edge release is past its end of servicing (1.5 LTS ended 12 Nov 2026)",
            "use 1.6, the current LTS release, and update the device's runtime to it",
        )
    if iot.edge_host_port in IOT_EDGE_HUB_PORTS:
        r.fail(
            "iotEdgeHostPort",
            iot.edge_host_port,
            "the edge hub binds 443, 5671 and 8883 on the device",
            "pick another host port, e.g. 5001",
        )
    if iot.device_host and not re.fullmatch(
        r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
        iot.device_host,
    ):
        r.fail(
            "iotEdgeDeviceHost",
            iot.device_host,
            "not a host name or IPv4 address",
            "set the name clients use to reach the device (e.g. edge01.plant.local), or leave "
            "it empty when no client calls the module over the network",
        )


def _vcpus(size: str) -> int:
    return SIZES[size].vcpus if size in SIZES else 0


def _check_aks(r: _Reader, aks: AksSettings, acc: AcceleratorSettings, location: str) -> None:
    if (
        aks.enabled
        and aks.existing_cluster_id
        and not re.fullmatch(
            r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
            r"Microsoft\.ContainerService/managedClusters/[^/]+",
            aks.existing_cluster_id,
            flags=re.IGNORECASE,
        )
    ):
        r.fail(
            "aksExistingClusterId",
            aks.existing_cluster_id,
            "not an AKS resource ID",
            "use /subscriptions/<id>/resourceGroups/<rg>/providers/"
            "Microsoft.ContainerService/managedClusters/<name>, or leave it empty",
        )
    if aks.kubernetes_version and not re.fullmatch(r"\d+\.\d+(\.\d+)?", aks.kubernetes_version):
        r.fail(
            "aksKubernetesVersion",
            aks.kubernetes_version,
            "not a Kubernetes version",
            "use e.g. 1.33, or leave it empty for AKS's default",
        )
    if aks.node_count > aks.max_node_count:
        r.fail(
            ("aksNodeCount", "aksMaxNodeCount"),
            f"{aks.node_count} > {aks.max_node_count}",
            "the autoscaler minimum is above its maximum",
            "raise mlscore:aksMaxNodeCount to at least mlscore:aksNodeCount",
        )
    creating = aks.enabled and not aks.existing_cluster_id
    if creating and aks.vm_size in SIZES:
        user = aks.node_count * _vcpus(aks.vm_size)
        extra = acc.node_count * _vcpus(acc.vm_size) if acc.enabled else 0
        total = user + extra
        # The system pool is tainted CriticalAddonsOnly (see components/targets/aks/cluster.py): it runs no
        # scoring pods, so only the user pool (its autoscaler minimum) and the accelerator pool
        # count towards the seeds' 12 vCPUs.
        if total < MIN_AKS_VCPUS:
            per = _vcpus(aks.vm_size)
            needed = math.ceil((MIN_AKS_VCPUS - extra) / per)
            acc_part = (
                f" + {acc.node_count} x {acc.vm_size} = {extra} accelerator vCPUs, {total} in all"
                if extra
                else ""
            )
            keys = ("aksNodeCount", "aksVmSize") + (
                ("acceleratorNodeCount", "acceleratorVmSize") if extra else ()
            )
            r.fail(
                keys,
                f"{aks.node_count} x {aks.vm_size} = {user} vCPUs{acc_part}",
                f"Azure ML needs an AKS cluster with >= {MIN_AKS_VCPUS} vCPUs in total "
                "(user pool minimum + accelerator pool; the system pool runs no scoring pods)",
                f"raise mlscore:aksNodeCount to {needed} or pick a larger mlscore:aksVmSize",
            )
    if acc.enabled:
        if not aks.enabled:
            r.fail(
                ("acceleratorEnabled", "aksEnabled"),
                "true, false",
                "the accelerator target is a node pool of the AKS cluster",
                "set mlscore:aksEnabled to true or mlscore:acceleratorEnabled to false",
            )
        size = SIZES.get(acc.vm_size)
        if size and acc.kind == "gpu" and size.gpus == 0:
            r.fail(
                ("acceleratorKind", "acceleratorVmSize"),
                acc.vm_size,
                "this size has no GPU",
                "pick an NC-family size such as Standard_NC4as_T4_v3",
            )
        if size and acc.kind == "fpga" and size.fpgas == 0:
            r.fail(
                ("acceleratorKind", "acceleratorVmSize"),
                acc.vm_size,
                "this size has no FPGA",
                "use Standard_PB6s (Project Brainwave)",
            )
        if acc.kind == "fpga" and location not in FPGA_REGIONS:
            r.fail(
                ("acceleratorKind", "location"),
                location,
                "FPGA (Standard_PB6s) was only offered in " + ", ".join(sorted(FPGA_REGIONS)),
                "deploy to one of those regions with PB-family quota approved, or use "
                "mlscore:acceleratorKind gpu",
            )


def _check_names(r: _Reader, s: Settings) -> None:
    wanted = {
        "storage account (workspace)": True,
        "container registry": True,
        "key vault": True,
        "ML workspace": True,
        "Redis cache": s.redis.create,
        "web app": s.app_service.enabled,
        "function app": s.functions.enabled,
        "storage account (functions host)": s.functions.enabled,
        "storage account (trigger data)": s.functions.enabled,
        "Service Bus namespace": s.functions.enabled,
        "ACI DNS label": s.aci.enabled,
        "IoT Hub": s.iot.enabled,
    }
    for label, (rule, name) in s.naming.globally_unique().items():
        if not wanted.get(label, True):
            continue
        problem = RULES[rule].problem(name)
        if problem:
            r.fail(
                ("prefix", "nameSuffix"),
                f"{label} name {name!r}",
                problem,
                "shorten mlscore:prefix or mlscore:nameSuffix",
            )
    if s.aks.enabled:  # the scoring Service's Azure DNS label (<label>.<region>.cloudapp.azure.com)
        label = aks_service_dns_label(s.naming)
        problem = RULES["dns_label"].problem(label)
        if problem:
            r.fail(
                ("prefix", "nameSuffix"),
                f"AKS service DNS label {label!r}",
                problem,
                "shorten mlscore:prefix or mlscore:nameSuffix",
            )


def aks_service_dns_label(naming: Naming) -> str:
    """Azure DNS label of the AKS scoring Service's public IP (unique in the region)."""
    return naming.global_dashed("aks").lower()


def planned_max_replicas(
    target_rps: float, request_seconds: float, target_utilization: float, max_concurrent: int
) -> int:
    """The seeds' replica formula: ceil(rps x request seconds / utilisation / concurrency).

    ``target_utilization`` is a fraction (0.7 for 70%).
    """
    if target_rps <= 0 or request_seconds <= 0:
        raise ValueError("target_rps and request_seconds must be positive")
    if not 0 < target_utilization <= 1:
        raise ValueError("target_utilization is a fraction in (0, 1]")
    if max_concurrent < 1:
        raise ValueError("max_concurrent must be at least 1")
    return math.ceil(target_rps * request_seconds / target_utilization / max_concurrent)


def from_pulumi() -> Settings:
    """Settings of the running stack, read from ``pulumi.Config``."""
    config = pulumi.Config()
    return load(config.get, project=pulumi.get_project(), stack=pulumi.get_stack())
