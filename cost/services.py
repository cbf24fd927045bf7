"""Pricing rules of data, messaging, monitoring and network resources; the usage-priced ones take
their quantities from the stack's assumptions file (cost/assumptions/<stack>.yaml)."""

from __future__ import annotations

import re

from cost import catalog
from cost.lines import Context, H, _get, _num, assumed, not_estimated, priced
from cost.model import Declared, Line, Price, Quantity, Status


def _free_note(free: float, unit: str) -> str:
    """The free first tier of a meter shared by the account: the minimum if this resource gets it
    all, the maximum if others used it up."""
    return f"minimum if the meter's free first {free:g} {unit} are this one's" if free else ""


def _included(ctx: Context, key: str) -> float:
    """What a meter's free first tier covers, in the units the price is counted in
    (``catalog.Family.paid_from`` x the price's unitOfMeasure; 0 when the meter has none)."""
    family, argument = catalog.family_of(key)
    price = ctx.snapshot.lookup(key)
    if not isinstance(price, Price):
        return 0.0
    return family.paid_from.get(argument, 0.0) * price.per[0]


# --- data and messaging --------------------------------------------------------------------------
def managed_redis(r: Declared, ctx: Context) -> list[Line]:
    """A "Balanced_B5" cache is meter "B5 Cache Instance" per instance hour; with high
    availability (the default) it runs two instances (Infracost's managed_redis.go: HA -> 2
    instances; its golden prices Balanced_B3 at 1,460 h with HA and 730 h without)."""
    family, _, size = str(_get(r.inputs, "sku", "name", default="")).partition("_")
    ha = r.inputs.get("highAvailability", "Enabled") != "Disabled"
    nodes = 2 if ha else 1
    return [
        priced(
            r,
            ctx,
            f"managed-redis/{size} Cache Instance",
            Quantity.fixed(nodes * H, "hour", f"{nodes} instance(s) x {H:g} h"),
            sku=f"{family} {size}" + ("" if ha else " (no HA)"),
            count=str(nodes),
        )
    ]


def iot_hub(r: Declared, ctx: Context) -> list[Line]:
    sku = _get(r.inputs, "sku", default={})
    units = _num(sku.get("capacity"), 1)
    return [
        priced(
            r,
            ctx,
            f"iot-hub/{sku.get('name')}",
            Quantity.fixed(units, "month", f"{units:g} units"),
            sku=str(sku.get("name")),
            count=f"{units:g}",
        )
    ]


def service_bus(r: Declared, ctx: Context) -> list[Line]:
    tier = str(_get(r.inputs, "sku", "name", default="Standard"))
    lines: list[Line] = []
    if tier == "Premium":
        units = _num(_get(r.inputs, "sku", "capacity"), 1)
        return [
            priced(
                r,
                ctx,
                "service-bus/Premium Messaging Unit",
                Quantity.fixed(units * H, "hour", f"{units:g} MU x {H:g} h"),
                sku=tier,
                count=f"{units:g}",
            )
        ]
    if tier == "Standard":
        lines.append(
            priced(
                r,
                ctx,
                "service-bus/Standard Base Unit",
                Quantity.fixed(H, "hour", f"{H:g} h"),
                sku=tier,
                count="1",
                label="base",
            )
        )
    ops = assumed(ctx, "serviceBus", "operations")
    if ops is None:
        return [*lines, not_estimated(r, "assumptions: serviceBus.operations is not set", sku=tier)]
    # A Standard namespace's first 13M operations a month come with its base charge (the meter's
    # first tier, at 0): only the operations past them are billed.
    key = f"service-bus/{tier} Messaging Operations"
    included = _included(ctx, key)
    what = f"{ops:,.0f} operations" + (f", {included:,.0f} included" if included else "")
    return [
        *lines,
        priced(
            r,
            ctx,
            key,
            Quantity.fixed(max(ops - included, 0.0), "unit", what),
            sku=tier,
            status=Status.USAGE,
            label="operations",
        ),
    ]


def key_vault(r: Declared, ctx: Context) -> list[Line]:
    ops = assumed(ctx, "keyVault", "operations")
    if ops is None:
        return [not_estimated(r, "assumptions: keyVault.operations is not set")]
    return [
        priced(
            r,
            ctx,
            "key-vault/Operations",
            Quantity.fixed(ops, "unit", f"{ops:,.0f} operations"),
            sku="standard",
            status=Status.USAGE,
            label="operations",
        )
    ]


def storage_account(r: Declared, ctx: Context) -> list[Line]:
    """Blob data stored (hot tier) at the account's redundancy; transactions are not counted."""
    sku = str(_get(r.inputs, "sku", "name", default="Standard_LRS"))
    redundancy = sku.split("_", 1)[-1]
    gb = assumed(ctx, "storage", "accounts", f"{r.component}/{r.name}")
    gb = assumed(ctx, "storage", "defaultGb") if gb is None else gb
    if gb is None:
        return [not_estimated(r, "assumptions: storage.defaultGb is not set", sku=sku)]
    return [
        priced(
            r,
            ctx,
            f"blob-storage/Hot {redundancy} Data Stored",
            Quantity.fixed(gb, "gb-month", f"{gb:g} GB"),
            sku=sku,
            status=Status.USAGE,
            note="transactions not counted",
        )
    ]


def log_analytics(r: Declared, ctx: Context) -> list[Line]:
    """Ingestion per GB, and retention past the 31 days included
    (https://learn.microsoft.com/azure/azure-monitor/logs/cost-logs)."""
    gb = assumed(ctx, "logAnalytics", "ingestionGb")
    if gb is None:
        return [not_estimated(r, "assumptions: logAnalytics.ingestionGb is not set")]
    key = "log-analytics/Analytics Logs Data Ingestion"
    free = _included(ctx, key)
    lines = [
        priced(
            r,
            ctx,
            key,
            Quantity(max(gb - free, 0.0), gb, "gb", f"{gb:g} GB"),
            sku="PerGB2018",
            status=Status.USAGE,
            label="ingestion",
            note=_free_note(free, "GB"),
        )
    ]
    days = _num(r.inputs.get("retentionInDays"), 30)
    if days > 31:
        kept = gb * (days - 31) / 30
        lines.append(
            priced(
                r,
                ctx,
                "log-analytics/Analytics Logs Data Retention",
                Quantity.fixed(kept, "gb-month", f"{kept:g} GB past 31 days"),
                sku=f"{days:g} days",
                status=Status.USAGE,
                label="retention",
            )
        )
    return lines


def app_insights(r: Declared, ctx: Context) -> list[Line]:
    if r.inputs.get("ingestionMode") == "LogAnalytics" or r.inputs.get("workspaceResourceId"):
        return [
            Line(
                r.component,
                r.name,
                r.type,
                Status.FREE,
                note="workspace-based: its data is billed by the Log Analytics workspace",
            )
        ]
    return [not_estimated(r, "classic Application Insights is not in the price table")]


def prometheus_workspace(r: Declared, ctx: Context) -> list[Line]:
    samples = assumed(ctx, "prometheus", "samples")
    if samples is None:
        return [not_estimated(r, "assumptions: prometheus.samples is not set")]
    return [
        priced(
            r,
            ctx,
            "azure-monitor/Prometheus Metrics Samples Ingested",
            Quantity.fixed(samples, "unit", f"{samples:,.0f} samples"),
            status=Status.USAGE,
            label="samples",
        )
    ]


# --- network and monitoring ----------------------------------------------------------------------
def private_endpoint(r: Declared, ctx: Context) -> list[Line]:
    return [
        priced(
            r,
            ctx,
            "private-link/Standard Private Endpoint",
            Quantity.fixed(H, "hour", f"{H:g} h"),
            count="1",
            note="data processed not counted",
        )
    ]


def managed_network_rule(r: Declared, ctx: Context) -> list[Line]:
    kind = _get(r.inputs, "properties", "type")
    if kind == "PrivateEndpoint":
        return private_endpoint(r, ctx)
    if kind == "ServiceTag":
        return [
            Line(
                r.component, r.name, r.type, Status.FREE, note="a service tag rule adds no resource"
            )
        ]
    return [not_estimated(r, f"{kind} outbound rules add an Azure Firewall to the managed network")]


def private_zone(r: Declared, ctx: Context) -> list[Line]:
    return [
        priced(
            r,
            ctx,
            "private-dns/Private Zone",
            Quantity.fixed(1, "month", "1 zone"),
            count="1",
            note="DNS queries not counted",
        )
    ]


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def _minutes(duration: str) -> int:
    """An ISO 8601 evaluation frequency (PT5M, PT1H, P1D) in minutes."""
    found = _DURATION.match(duration)
    if not found or not any(found.groups()):
        raise ValueError(f"unreadable evaluationFrequency {duration!r}")
    days, hours, minutes = (int(g or 0) for g in found.groups())
    return days * 1440 + hours * 60 + minutes


def log_alert(r: Declared, ctx: Context) -> list[Line]:
    """Log alert rules are billed by the frequency band they are evaluated at: the meters are
    1, 5, 10 and 15 minutes, a rule at 15 minutes or slower is at 15 (Infracost's
    monitor_scheduled_query_rules_alert.go, https://github.com/infracost/infracost/blob/95ba4f4/
    internal/resources/azure/monitor_scheduled_query_rules_alert.go)."""
    freq = str(r.inputs.get("evaluationFrequency", "PT5M"))
    band = max(b for b in (1, 5, 10, 15) if b <= max(_minutes(freq), 1))
    return [
        priced(
            r,
            ctx,
            f"azure-monitor/Alerts System Log Monitored at {band} Minute Frequency",
            Quantity.fixed(1, "month", "1 rule"),
            sku=freq,
            count="1",
        )
    ]


def metric_alert(r: Declared, ctx: Context) -> list[Line]:
    series = len(_get(r.inputs, "criteria", "allOf", default=[]) or [1]) * max(
        len(r.inputs.get("scopes") or [1]), 1
    )
    key = "azure-monitor-global/Alerts Metric Monitored"
    free = _included(ctx, key)
    return [
        priced(
            r,
            ctx,
            key,
            Quantity(max(series - free, 0), series, "month", f"{series} time series"),
            count=str(series),
            note=_free_note(free, "time series"),
        )
    ]
