"""Lines of the dev and prod estimates computed by hand from the declared inputs and the prices.

The repository's snapshot prices what it has a published figure for; a test price table (made-up
figures, see conftest.py) prices every key so that every rule's arithmetic is checked against
the graph: counts and autoscale bounds as the program declares them.
"""

from __future__ import annotations

import pytest

from cost import render
from cost.model import HOURS_PER_MONTH as H
from cost.model import Estimate, Line, Status
from cost.snapshot import Snapshot, load
from preview import engine
from tests.cost.conftest import estimate_of


def line(estimate: Estimate, component: str, resource: str) -> Line:
    found = [x for x in estimate.lines if x.component == component and x.resource == resource]
    assert len(found) == 1, [(x.component, x.resource) for x in estimate.lines]
    return found[0]


def rate(snapshot: Snapshot, key: str) -> float:
    price = snapshot.lookup(key)
    assert not hasattr(price, "reason"), price
    return price.retail_price  # type: ignore[union-attr]


# --- the repository's snapshot ---
def test_dev_registry_from_the_snapshot_by_hand(dev: engine.Run) -> None:
    """Basic registry: $0.167 a day (snapshot, cited) x 730/24 days."""
    acr = line(estimate_of(dev), "registry", "acr")
    assert acr.status == Status.PRICED and acr.sku == "Basic"
    assert acr.monthly == pytest.approx((0.167 * 730 / 24,) * 2)
    assert acr.price is not None and "container-registry-skus" in acr.price.source


def test_prod_cluster_tier_from_the_snapshot_by_hand(prod: engine.Run) -> None:
    tier = line(estimate_of(prod), "aks", "cluster (tier)")
    assert (tier.sku, tier.monthly) == ("Standard", pytest.approx((0.10 * 730,) * 2))


def test_dev_node_pool_and_disks_from_the_snapshot_by_hand(dev: engine.Run) -> None:
    """3 x Standard_D4s_v5 Linux at $0.23 an hour (meter 1ab41620-..., West Europe), each with a
    128 GB Premium SSD OS disk, P10 at $21.68 a month."""
    estimate = estimate_of(dev)
    pool = line(estimate, "aks", "user-pool (pool scoring)")
    assert pool.monthly == pytest.approx((3 * 0.23 * 730,) * 2)
    assert pool.price is not None and pool.price.meter_id.startswith("1ab41620")
    disks = line(estimate, "aks", "user-pool (pool scoring OS disk)")
    assert disks.monthly == pytest.approx((3 * 21.68,) * 2)


def test_dev_container_app_from_zero_to_three_replicas_by_hand(dev: engine.Run) -> None:
    """1 vCPU per replica at $0.000034 per vCPU-second, 0 to 3 replicas all month."""
    app = line(estimate_of(dev), "container-apps", "app (vCPU)")
    assert app.monthly == pytest.approx((0.0, 3 * 730 * 3600 * 0.000034))


def test_dev_iot_hub_and_basic_service_bus_from_the_snapshot_by_hand(dev: engine.Run) -> None:
    """West Europe (Infracost's goldens, cited in the snapshot): an S1 unit is $25.00 a month;
    Basic operations $0.05 per 1M, dev.yaml assumes 100,000 a month."""
    estimate = estimate_of(dev)
    hub = line(estimate, "iot-edge", "hub")
    assert (hub.sku, hub.count, hub.monthly) == ("S1", "1", pytest.approx((25.0, 25.0)))
    ops = line(estimate, "functions", "service-bus (operations)")
    assert ops.monthly == pytest.approx((0.05 * 100_000 / 1e6,) * 2)
    assert hub.price is not None and "iothub_test.golden" in hub.price.source


def test_prod_service_bus_logs_registry_and_log_alerts_from_the_snapshot_by_hand(
    prod: engine.Run,
) -> None:
    """West Europe: Standard base $9.81 per 730 h, its first 13M operations free (prod.yaml: 10M);
    150 GB into Log Analytics at $2.99 a GB past the free 5 GB, 59/30 of it kept past 31 days at
    $0.13 a GB-month; a Premium registry $50.00 per 30 days; a PT5M log alert $1.50 a month."""
    estimate = estimate_of(prod)
    assert line(estimate, "functions", "service-bus (base)").monthly == pytest.approx((9.81,) * 2)
    assert line(estimate, "functions", "service-bus (operations)").monthly == (0.0, 0.0)
    logs = line(estimate, "monitoring", "logs (ingestion)")
    assert logs.monthly == pytest.approx((145 * 2.99, 150 * 2.99))
    kept = line(estimate, "monitoring", "logs (retention)")
    assert kept.monthly == pytest.approx((150 * 59 / 30 * 0.13,) * 2)
    acr = line(estimate, "registry", "acr")
    assert (acr.sku, acr.monthly) == ("Premium", pytest.approx((50.0 / 30 * 730 / 24,) * 2))
    alert = line(estimate, "alerts", "aks-5xx")
    assert (alert.sku, alert.monthly) == ("PT5M", pytest.approx((1.5, 1.5)))
    zone = line(estimate, "private-endpoints", "zone-privatelink.vaultcore.azure.net")
    assert zone.monthly == pytest.approx((0.5, 0.5))  # region-less, first 25 zones


def test_prod_container_app_minimum_at_the_idle_rate_by_hand(prod: engine.Run) -> None:
    """3 replicas idle at $0.000004 per vCPU-second at least, 12 active at $0.000034 at most."""
    app = line(estimate_of(prod), "container-apps", "app (vCPU)")
    assert app.monthly == pytest.approx((3 * 730 * 3600 * 0.000004, 12 * 730 * 3600 * 0.000034))
    assert app.low_price is not None and app.low_price.meter_name == "Standard vCPU Idle Usage"


def test_dev_cluster_free_tier_is_free_not_priced(dev: engine.Run) -> None:
    tier = line(estimate_of(dev), "aks", "cluster (tier)")
    assert tier.status == Status.FREE and tier.monthly == (0.0, 0.0)


def test_a_price_the_snapshot_lacks_is_not_estimated_never_zero(prod: engine.Run) -> None:
    estimate = estimate_of(prod)
    plan = line(estimate, "app-service", "plan")
    assert plan.status == Status.NOT_ESTIMATED and plan.price is None
    assert (plan.sku, plan.count) == ("P1v3", "2-6")
    text = render.text(estimate)
    assert "app-service / plan" in text.split("Not estimated")[1]
    counted = [x for x in estimate.lines if x.status != Status.NOT_ESTIMATED]
    assert estimate.total == (
        round(sum(x.monthly[0] for x in counted), 2),
        round(sum(x.monthly[1] for x in counted), 2),
    )


def test_every_snapshot_entry_has_its_query_date_and_source_or_reason() -> None:
    snapshot = load("westeurope")
    for key, entry in snapshot.entries.items():
        assert entry["query"].startswith("serviceName eq "), key
        assert entry["seen"] == snapshot.built, key
        assert ("retailPrice" in entry and entry["source"].startswith("https://")) or entry.get(
            "notEstimated"
        ), key


# --- every rule, with the test price table ---
def test_prod_app_service_plan_spans_its_autoscale_bounds(
    prod: engine.Run, test_prices: Snapshot
) -> None:
    plan = line(estimate_of(prod, test_prices), "app-service", "plan")
    p = rate(test_prices, "app-service-linux/P1 v3")
    assert plan.count == "2-6" and plan.monthly == pytest.approx((2 * H * p, 6 * H * p))


def test_elastic_premium_from_minimum_to_burst(prod: engine.Run, test_prices: Snapshot) -> None:
    """EP2 = 2 vCPU, 7 GB; capacity 2 always allocated, up to maximumElasticWorkerCount 10."""
    estimate = estimate_of(prod, test_prices)
    cpu, mem = (
        line(estimate, "functions", "plan (vCPU)"),
        line(estimate, "functions", "plan (memory)"),
    )
    c = rate(test_prices, "functions-premium/Premium vCPU Duration")
    m = rate(test_prices, "functions-premium/Premium Memory Duration")
    assert cpu.monthly == pytest.approx((2 * 2 * H * c, 10 * 2 * H * c))
    assert mem.monthly == pytest.approx((2 * 7 * H * m, 10 * 7 * H * m))


def test_node_pools_count_nodes_and_managed_os_disks(
    dev: engine.Run, test_prices: Snapshot
) -> None:
    """dev: system pool 1 x D2s_v5 and user pool 3 x D4s_v5, each with a 128 GB P10 OS disk."""
    estimate = estimate_of(dev, test_prices)
    user = line(estimate, "aks", "user-pool (pool scoring)")
    assert user.monthly == pytest.approx((3 * H * rate(test_prices, "vm/Standard_D4s_v5"),) * 2)
    disks = line(estimate, "aks", "user-pool (pool scoring OS disk)")
    assert disks.monthly == pytest.approx((3 * rate(test_prices, "managed-disk/P10 LRS"),) * 2)


def test_prod_pools_autoscale_and_ephemeral_disks_are_free(
    prod: engine.Run, test_prices: Snapshot
) -> None:
    estimate = estimate_of(prod, test_prices)
    user = line(estimate, "aks", "user-pool (pool scoring)")
    v = rate(test_prices, "vm/Standard_D8ds_v5")
    assert user.count == "3-10" and user.monthly == pytest.approx((3 * H * v, 10 * H * v))
    assert not [x for x in estimate.lines if x.resource.endswith("OS disk")]


def test_aci_container_apps_and_aml(
    dev: engine.Run, prod: engine.Run, test_prices: Snapshot
) -> None:
    d, p = estimate_of(dev, test_prices), estimate_of(prod, test_prices)
    aci = line(d, "aci", "aci (vCPU)")  # 1 vCPU, restartPolicy Always
    assert aci.monthly == pytest.approx(
        (H * rate(test_prices, "container-instances/Standard vCPU Duration"),) * 2
    )
    app = line(d, "container-apps", "app (vCPU)")  # scales to zero, up to 3 replicas of 1 vCPU
    assert app.monthly == pytest.approx(
        (0.0, 3 * H * rate(test_prices, "container-apps/Standard vCPU Active Usage"))
    )
    blue = line(p, "aml-online", "blue")  # 2 x Standard_DS3_v2
    assert blue.monthly == pytest.approx((2 * H * rate(test_prices, "vm/Standard_DS3_v2"),) * 2)
    batch = line(p, "aml-batch", "compute")  # low priority, 0-8 nodes
    assert batch.monthly == pytest.approx(
        (0.0, 8 * H * rate(test_prices, "vm-low-priority/Standard_DS3_v2"))
    )


def test_usage_lines_take_the_stacks_assumptions(prod: engine.Run, test_prices: Snapshot) -> None:
    """prod.yaml: 150 GB a month into Log Analytics kept 90 days, 2M Key Vault operations."""
    estimate = estimate_of(prod, test_prices)
    logs = line(estimate, "monitoring", "logs (ingestion)")
    assert logs.status == Status.USAGE
    gb = rate(test_prices, "log-analytics/Analytics Logs Data Ingestion")  # per "1 GB"
    # the meter's free first tier (5 GB, catalog.py) counts at the minimum only
    assert logs.monthly == pytest.approx(((150 - 5) * gb, 150 * gb))
    kept = line(estimate, "monitoring", "logs (retention)")
    assert kept.monthly[0] == pytest.approx(
        150 * 59 / 30 * rate(test_prices, "log-analytics/Analytics Logs Data Retention")
    )
    vault = line(estimate, "workspace", "keyvault (operations)")
    assert vault.monthly[0] == pytest.approx(200 * rate(test_prices, "key-vault/Operations"))


def test_redis_instances_follow_high_availability(
    dev: engine.Run, prod: engine.Run, test_prices: Snapshot
) -> None:
    """dev: Balanced_B0 without high availability, one instance; prod: Balanced_B5 with it, two
    instances of meter "B5 Cache Instance" (Infracost's managed_redis.go)."""
    dev_redis = line(estimate_of(dev, test_prices), "cache", "redis")
    prod_redis = line(estimate_of(prod, test_prices), "cache", "redis")
    assert (dev_redis.price_key, dev_redis.count) == ("managed-redis/B0 Cache Instance", "1")
    assert (prod_redis.price_key, prod_redis.count) == ("managed-redis/B5 Cache Instance", "2")
    b5 = rate(test_prices, "managed-redis/B5 Cache Instance")
    assert prod_redis.monthly == pytest.approx((2 * H * b5,) * 2)


def test_markdown_shows_the_change_from_the_base(dev: engine.Run, test_prices: Snapshot) -> None:
    now = estimate_of(dev, test_prices)
    base = render.as_json(now)
    base["total"] = {"min": 0.0, "max": 0.0}
    base["lines"] = [x for x in base["lines"] if x["resource"] != "acr"]
    text = render.markdown(now, base)
    assert "- added: registry / acr" in text
    assert f"+${now.total[0]:,.2f}" in text
