"""Container Apps target settings: replica size, scaling, ingress, the serverless GPU.

Every replica runs on the environment's Consumption workload profile (0.25-4 vCPU, 2 GiB of
memory per vCPU: https://learn.microsoft.com/azure/container-apps/containers#allocations), or
with ``containerAppsGpu`` on a serverless GPU profile, whose replica is the whole GPU's share of
the host (T4: 8 vCPU / 56 GiB; A100: 24 vCPU / 220 GiB) in the regions that offer it.

Scaling, as the seeds define it: an HTTP scale rule whose ``concurrentRequests`` is a replica's
concurrency (``maxConcurrentRequestsPerContainer``) times ``autoscaleTargetUtilization`` / 100,
rounded up, at least 1; ``containerAppsMinReplicas`` (0: scale to zero) to
``containerAppsMaxReplicas`` (Container Apps allows 0-1000 replicas:
https://learn.microsoft.com/azure/container-apps/scale-app#scale-definition).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.config.reader import Reader

# Serverless GPU profiles by the name of the setting: (workload profile type, vCPU, memory GiB).
# https://learn.microsoft.com/azure/container-apps/workload-profiles-overview#profile-types
GPU_PROFILES = {
    "T4": ("Consumption-GPU-NC8as-T4", 8.0, 56.0),
    "A100": ("Consumption-GPU-NC24-A100", 24.0, 220.0),
}
# Where each serverless GPU is offered ("Supported regions",
# https://learn.microsoft.com/azure/container-apps/gpu-serverless-overview#supported-regions:
# A100 in West US 3, West US, Australia East, Sweden Central; T4 in West US 3, Australia East,
# Sweden Central, West Europe, the last in a workload profiles environment created there anew).
GPU_REGIONS = {
    "A100": frozenset({"westus3", "westus", "australiaeast", "swedencentral"}),
    "T4": frozenset({"westus3", "australiaeast", "swedencentral", "westeurope"}),
}
CONSUMPTION_PROFILE = "Consumption"
MEMORY_GIB_PER_CPU = 2.0
MAX_REPLICAS = 1000
# Zone redundancy spreads replicas over the zones; "3 or more being ideal since most regions ...
# have 3 zones": https://learn.microsoft.com/azure/reliability/reliability-azure-container-apps
ZONE_MIN_REPLICAS = 3


@dataclass(frozen=True)
class ContainerAppsSettings:
    enabled: bool = False
    cpu: float = 1.0
    min_replicas: int = 0
    max_replicas: int = 10
    target_utilization: int = 70  # autoscaleTargetUtilization, shared with AKS
    max_concurrent: int = 1  # maxConcurrentRequestsPerContainer, shared with every host
    internal_only: bool = True  # under network isolation: no public ingress (VNet only)
    gpu: str = ""  # "", "T4" or "A100"

    @property
    def concurrent_requests(self) -> int:
        """The HTTP scale rule's target per replica: the seeds' utilisation of its concurrency."""
        wanted = self.max_concurrent * self.target_utilization / 100
        return max(1, math.ceil(round(wanted, 9)))

    @property
    def workload_profile(self) -> str:
        """The name of the environment's profile the app runs on."""
        return f"gpu-{self.gpu.lower()}" if self.gpu else CONSUMPTION_PROFILE

    @property
    def replica_cpu(self) -> float:
        return GPU_PROFILES[self.gpu][1] if self.gpu else self.cpu

    @property
    def replica_memory(self) -> str:
        gib = GPU_PROFILES[self.gpu][2] if self.gpu else self.cpu * MEMORY_GIB_PER_CPU
        return f"{gib:g}Gi"


def read(r: Reader, location: str, zone_redundant: bool, isolated: bool) -> ContainerAppsSettings:
    s = ContainerAppsSettings(
        enabled=r.bool("containerAppsEnabled"),
        cpu=r.float("containerAppsCpu"),
        min_replicas=r.int_range("containerAppsMinReplicas", 0, MAX_REPLICAS),
        max_replicas=r.int_range("containerAppsMaxReplicas", 1, MAX_REPLICAS),
        target_utilization=r.int_range("autoscaleTargetUtilization", 1, 100, "a percentage"),
        max_concurrent=r.int_range("maxConcurrentRequestsPerContainer", 1, 1000),
        internal_only=r.bool("containerAppsInternalOnly"),
        gpu=r.choice("containerAppsGpu", ("", *GPU_PROFILES)),
    )
    if not s.enabled:
        return s
    _check_size(r, s)
    _check_replicas(r, s, zone_redundant, isolated)
    if s.gpu in GPU_REGIONS and location not in GPU_REGIONS[s.gpu]:
        r.fail(
            ("containerAppsGpu", "location"),
            f"{s.gpu} in {location}",
            f"serverless {s.gpu} GPUs are offered in {', '.join(sorted(GPU_REGIONS[s.gpu]))} "
            "only (learn.microsoft.com/azure/container-apps/gpu-serverless-overview)",
            "pick one of those regions for mlscore:location, or clear mlscore:containerAppsGpu",
        )
    return s


def _check_size(r: Reader, s: ContainerAppsSettings) -> None:
    if "containerAppsCpu" not in r.values or s.gpu:
        return
    if not 0.25 <= s.cpu <= 4 or round(s.cpu * 4) != s.cpu * 4:
        r.fail(
            "containerAppsCpu",
            s.cpu,
            "a Consumption replica takes 0.25-4 vCPU in steps of 0.25 (memory: 2 GiB per vCPU)",
            "set mlscore:containerAppsCpu to 0.25, 0.5, ... 4 (the default is 1)",
        )


def _check_replicas(
    r: Reader, s: ContainerAppsSettings, zone_redundant: bool, isolated: bool
) -> None:
    keys = ("containerAppsMinReplicas", "containerAppsMaxReplicas")
    if all(k in r.values for k in keys) and s.min_replicas > s.max_replicas:
        r.fail(
            keys,
            f"{s.min_replicas} > {s.max_replicas}",
            "the minimum replica count is above the maximum",
            "raise mlscore:containerAppsMaxReplicas or lower mlscore:containerAppsMinReplicas",
        )
    if not zone_redundant:
        return
    if not isolated:
        r.fail(
            ("zoneRedundant", "networkIsolation", "containerAppsEnabled"),
            "true",
            "a zone-redundant Container Apps environment needs a VNet infrastructure subnet "
            "(learn.microsoft.com/azure/container-apps/how-to-zone-redundancy)",
            "set mlscore:networkIsolation to true, or mlscore:zoneRedundant to false",
        )
    if "containerAppsMinReplicas" in r.values and s.min_replicas < ZONE_MIN_REPLICAS:
        r.fail(
            ("containerAppsMinReplicas", "zoneRedundant"),
            s.min_replicas,
            f"zone redundancy spreads replicas over the zones: fewer than {ZONE_MIN_REPLICAS} "
            "leave a zone without one (0 scales the app away from every zone)",
            f"set mlscore:containerAppsMinReplicas to {ZONE_MIN_REPLICAS} or more",
        )
