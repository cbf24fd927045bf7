"""Pricing rules of compute: AKS clusters and node pools, Azure ML clusters and online
deployments, App Service and Elastic Premium plans, container instances and apps, registries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cost.lines import Context, H, _count, _get, _num, not_estimated, priced
from cost.model import DAYS_PER_MONTH, Declared, Line, Price, Quantity, Status


# --- compute ------------------------------------------------------------------------------------
def _vm_lines(
    r: Declared,
    ctx: Context,
    size: str,
    low: float,
    high: float,
    *,
    low_priority: bool = False,
    label: str = "",
    note: str = "",
) -> Line:
    family = "vm-low-priority" if low_priority else "vm"
    return priced(
        r,
        ctx,
        f"{family}/{size}",
        Quantity(low * H, high * H, "hour", f"{_count(low, high)} x {H:g} h"),
        sku=size + (" (low priority)" if low_priority else ""),
        count=_count(low, high),
        label=label,
        note=note,
    )


# A managed OS disk is a Premium SSD when the VM size supports premium storage ("s" in its
# features), sized up to the next disk tier (https://learn.microsoft.com/azure/virtual-machines/disks-types).
_PREMIUM_TIERS = (
    (4, "P1"),
    (8, "P2"),
    (16, "P3"),
    (32, "P4"),
    (64, "P6"),
    (128, "P10"),
    (256, "P15"),
    (512, "P20"),
    (1024, "P30"),
    (2048, "P40"),
)


def _os_disk(
    r: Declared, ctx: Context, pool: Mapping[str, Any], low: float, high: float, label: str
) -> list[Line]:
    # Ephemeral OS disks live on the VM's local storage and have no disk charge
    # (https://learn.microsoft.com/azure/virtual-machines/ephemeral-os-disks).
    if pool.get("osDiskType") == "Ephemeral":
        return []
    size = _num(pool.get("osDiskSizeGB"), 128)
    features = re.sub(r"^Standard_[A-Z]+\d+", "", str(pool.get("vmSize", "")))
    if "s" not in features.split("_")[0]:
        return [not_estimated(r, f"{label}: a Standard SSD OS disk is not in the price table")]
    tier = next((t for gb, t in _PREMIUM_TIERS if size <= gb), "P50")
    return [
        priced(
            r,
            ctx,
            f"managed-disk/{tier} LRS",
            Quantity(low, high, "month", "disks"),
            sku=f"{tier} ({size:g} GB)",
            count=_count(low, high),
            label=f"{label} OS disk",
        )
    ]


def _pool(r: Declared, ctx: Context, pool: Mapping[str, Any], label: str) -> list[Line]:
    count = _num(pool.get("count"), 1)
    low, high = count, count
    if pool.get("enableAutoScaling"):
        low, high = _num(pool.get("minCount"), count), _num(pool.get("maxCount"), count)
    size = str(pool.get("vmSize", ""))
    return [
        _vm_lines(r, ctx, size, low, high, label=label),
        *_os_disk(r, ctx, pool, low, high, label),
    ]


def aks_cluster(r: Declared, ctx: Context) -> list[Line]:
    """The cluster's tier (Free has no management charge; Standard and Premium are billed per
    cluster-hour: https://learn.microsoft.com/azure/aks/free-standard-pricing-tiers) and the
    node pools declared inline."""
    tier = str(_get(r.inputs, "sku", "tier", default="Free"))
    lines = []
    if tier == "Free":
        lines.append(
            Line(
                r.component,
                f"{r.name} (tier)",
                r.type,
                Status.FREE,
                sku="Free",
                note="Free tier: no cluster management charge",
            )
        )
    else:
        lines.append(
            priced(
                r,
                ctx,
                f"aks-tier/{tier}",
                Quantity.fixed(H, "hour", f"{H:g} h"),
                sku=tier,
                count="1",
                label="tier",
            )
        )
    for pool in r.inputs.get("agentPoolProfiles") or []:
        lines += _pool(r, ctx, pool, f"pool {pool.get('name')}")
    return lines


def aks_pool(r: Declared, ctx: Context) -> list[Line]:
    return _pool(r, ctx, r.inputs, f"pool {r.inputs.get('agentPoolName', r.name)}")


def aml_compute(r: Declared, ctx: Context) -> list[Line]:
    """An Azure ML compute cluster bills its nodes at VM prices, between its min and max nodes
    (https://azure.microsoft.com/pricing/details/machine-learning/)."""
    props = _get(r.inputs, "properties", default={})
    if props.get("computeType") != "AmlCompute":
        return [not_estimated(r, f"compute type {props.get('computeType')!r} has no rule")]
    inner = props.get("properties") or {}
    scale = inner.get("scaleSettings") or {}
    low, high = _num(scale.get("minNodeCount")), _num(scale.get("maxNodeCount"), 1)
    return [
        _vm_lines(
            r,
            ctx,
            str(inner.get("vmSize")),
            low,
            high,
            low_priority=inner.get("vmPriority") == "LowPriority",
        )
    ]


def online_deployment(r: Declared, ctx: Context) -> list[Line]:
    """A managed online deployment bills its instances at the VM price of its instance type."""
    props = _get(r.inputs, "properties", default={})
    count = _num(_get(r.inputs, "sku", "capacity"), 1)
    low = high = count
    scale = props.get("scaleSettings") or {}
    if scale.get("scaleType") == "TargetUtilization":
        low, high = _num(scale.get("minInstances"), 1), _num(scale.get("maxInstances"), count)
    return [_vm_lines(r, ctx, str(props.get("instanceType")), low, high)]


# --- App Service and Functions -------------------------------------------------------------------
# Elastic Premium instance sizes (https://learn.microsoft.com/azure/azure-functions/functions-premium-plan#available-instance-skus).
ELASTIC_SIZES = {"EP1": (1, 3.5), "EP2": (2, 7.0), "EP3": (4, 14.0)}


def _autoscale_bounds(r: Declared, ctx: Context) -> tuple[float, float] | None:
    """(min, max) of an autoscale setting that targets ``r`` (it depends on the plan)."""
    for other in ctx.resources:
        if other.type == "azure-native:monitor:AutoscaleSetting" and r.urn in other.dependencies:
            if other.inputs.get("enabled") is False:
                continue
            caps = [p.get("capacity") or {} for p in other.inputs.get("profiles") or []]
            if caps:
                return (
                    min(_num(c.get("minimum"), 1) for c in caps),
                    max(_num(c.get("maximum"), 1) for c in caps),
                )
    return None


def _meter_sku(name: str) -> str:
    """App Service meters spell P1v3 as "P1 v3" and B1 as "B1"."""
    return re.sub(r"(\d)(v\d)$", r"\1 \2", name)


def app_service_plan(r: Declared, ctx: Context) -> list[Line]:
    sku = _get(r.inputs, "sku", default={})
    name, capacity = str(sku.get("name")), _num(sku.get("capacity"), 1)
    if sku.get("tier") == "ElasticPremium":
        return _elastic_plan(r, ctx, name, capacity)
    if not r.inputs.get("reserved"):
        return [not_estimated(r, "Windows plans are not in the price table", sku=name)]
    low, high = _autoscale_bounds(r, ctx) or (capacity, capacity)
    return [
        priced(
            r,
            ctx,
            f"app-service-linux/{_meter_sku(name)}",
            Quantity(low * H, high * H, "hour", f"{_count(low, high)} x {H:g} h"),
            sku=name,
            count=_count(low, high),
        )
    ]


def _elastic_plan(r: Declared, ctx: Context, name: str, capacity: float) -> list[Line]:
    """Elastic Premium bills vCPU and memory of every allocated instance, at least one always
    (https://learn.microsoft.com/azure/azure-functions/functions-premium-plan#billing): from the
    plan's minimum instances to its maximum burst (``maximumElasticWorkerCount``)."""
    if name not in ELASTIC_SIZES:
        return [not_estimated(r, f"Elastic Premium size {name} is not in ELASTIC_SIZES", sku=name)]
    vcpus, memory = ELASTIC_SIZES[name]
    low = max(capacity, 1)
    high = max(low, _num(r.inputs.get("maximumElasticWorkerCount"), low))
    count = _count(low, high)
    return [
        priced(
            r,
            ctx,
            "functions-premium/Premium vCPU Duration",
            Quantity(low * vcpus * H, high * vcpus * H, "hour", f"{vcpus:g} vCPU x {count}"),
            sku=name,
            count=count,
            label="vCPU",
        ),
        priced(
            r,
            ctx,
            "functions-premium/Premium Memory Duration",
            Quantity(low * memory * H, high * memory * H, "gib-hour", f"{memory:g} GiB x {count}"),
            sku=name,
            count=count,
            label="memory",
        ),
    ]


# --- containers ----------------------------------------------------------------------------------
def _gib(value: Any) -> float:
    text = str(value or "0").strip()
    found = re.fullmatch(r"([\d.]+)\s*(Gi|G)?", text)
    return float(found.group(1)) if found else 0.0


def container_group(r: Declared, ctx: Context) -> list[Line]:
    """ACI bills the vCPUs and GB its containers request, per second while the group runs
    (https://azure.microsoft.com/pricing/details/container-instances/); restartPolicy Always
    keeps it running all month."""
    cpu = sum(
        _num(_get(c, "resources", "requests", "cpu")) for c in r.inputs.get("containers") or []
    )
    mem = sum(
        _num(_get(c, "resources", "requests", "memoryInGB"))
        for c in r.inputs.get("containers") or []
    )
    if r.inputs.get("restartPolicy", "Always") != "Always":
        return [not_estimated(r, "a group that stops runs as long as its jobs: usage unknown")]
    return [
        priced(
            r,
            ctx,
            "container-instances/Standard vCPU Duration",
            Quantity.fixed(cpu * H, "hour", f"{cpu:g} vCPU x {H:g} h"),
            sku=f"{cpu:g} vCPU",
            count="1",
            label="vCPU",
        ),
        priced(
            r,
            ctx,
            "container-instances/Standard Memory Duration",
            Quantity.fixed(mem * H, "gib-hour", f"{mem:g} GB x {H:g} h"),
            sku=f"{mem:g} GB",
            count="1",
            label="memory",
        ),
    ]


def container_app(r: Declared, ctx: Context) -> list[Line]:
    """Consumption container apps bill vCPU-seconds and GiB-seconds of their replicas
    (https://learn.microsoft.com/azure/container-apps/billing): the minimum is the minimum
    replicas idle all month (the idle rate), the maximum every replica active all month. The
    monthly free grant per subscription is not deducted."""
    if r.inputs.get("workloadProfileName", "Consumption") != "Consumption":
        return [not_estimated(r, "dedicated workload profiles are not in the price table")]
    template = r.inputs.get("template") or {}
    containers = template.get("containers") or []
    cpu = sum(_num(_get(c, "resources", "cpu")) for c in containers)
    mem = sum(_gib(_get(c, "resources", "memory")) for c in containers)
    low = _num(_get(template, "scale", "minReplicas"), 0)
    high = _num(_get(template, "scale", "maxReplicas"), 10)
    count = _count(low, high)
    return [
        _replicas(
            r,
            ctx,
            "vCPU",
            cpu,
            "hour",
            Quantity(low * cpu * H, high * cpu * H, "hour", f"{cpu:g} vCPU x {count}"),
            count,
        ),
        _replicas(
            r,
            ctx,
            "Memory",
            mem,
            "gib-hour",
            Quantity(low * mem * H, high * mem * H, "gib-hour", f"{mem:g} GiB x {count}"),
            count,
        ),
    ]


def _replicas(
    r: Declared, ctx: Context, meter: str, size: float, unit: str, q: Quantity, count: str
) -> Line:
    """The active-rate line, its minimum at the idle rate when the snapshot has it."""
    sku = f"{size:g} vCPU" if meter == "vCPU" else f"{size:g} GiB"
    line = priced(
        r,
        ctx,
        f"container-apps/Standard {meter} Active Usage",
        q,
        sku=sku,
        count=count,
        label=meter if meter == "vCPU" else "memory",
    )
    key = f"container-apps/Standard {meter} Idle Usage"
    idle = ctx.snapshot.lookup(key)
    if line.price is None or not isinstance(idle, Price):
        note = "" if line.price is None else "minimum at the active rate (no idle price)"
        return replace(line, low_price_key=key, note=line.note or note)
    return replace(line, low_price=idle, low_price_key=key, note="minimum at the idle rate")


def managed_environment(r: Declared, ctx: Context) -> list[Line]:
    kinds = {p.get("workloadProfileType") for p in r.inputs.get("workloadProfiles") or []}
    if kinds <= {"Consumption", None}:
        return [
            Line(
                r.component,
                r.name,
                r.type,
                Status.FREE,
                sku="Consumption",
                note="consumption-only environment: its apps are billed, not the environment",
            )
        ]
    return [not_estimated(r, f"dedicated workload profiles {sorted(map(str, kinds))}")]


def registry(r: Declared, ctx: Context) -> list[Line]:
    sku = str(_get(r.inputs, "sku", "name", default="Basic"))
    return [
        priced(
            r,
            ctx,
            f"container-registry/{sku}",
            Quantity.fixed(DAYS_PER_MONTH, "day", f"{DAYS_PER_MONTH:.2f} days"),
            sku=sku,
            count="1",
        )
    ]
