"""Diagnostic settings under mocks with the real stack files: every resource that has logs or
metrics sends them to the stack's Log Analytics workspace, as the Azure Verified Modules do."""

from __future__ import annotations

from typing import Any

import pytest

from components.platform import diagnostics as diag
from preview import engine, fakes

SETTING = "azure-native:monitor:DiagnosticSetting"
WORKSPACE = "azure-native:operationalinsights:Workspace"
ALL_LOGS = [{"categoryGroup": "allLogs", "enabled": True}]
ALL_METRICS = [{"category": "AllMetrics", "enabled": True}]

# Every resource type of the list: (type, logical name of the resource) -> what it sends.
BOTH = (ALL_LOGS, ALL_METRICS)
EXPECTED_PROD: dict[tuple[str, str], tuple[Any, Any]] = {
    ("azure-native:keyvault:Vault", "keyvault"): BOTH,
    ("azure-native:containerregistry:Registry", "acr"): BOTH,
    ("azure-native:machinelearningservices:Workspace", "workspace"): BOTH,
    ("azure-native:machinelearningservices:OnlineEndpoint", "endpoint"): BOTH,
    ("azure-native:web:WebApp", "app"): BOTH,  # the web app and the function app
    ("azure-native:iothub:IotHubResource", "hub"): BOTH,
    ("azure-native:servicebus:Namespace", "service-bus"): BOTH,
    # storage accounts: metrics only; their blob service has the logs (checked below)
    ("azure-native:storage:StorageAccount", "storage"): (None, ALL_METRICS),
    ("azure-native:storage:StorageAccount", "host-storage"): (None, ALL_METRICS),
    ("azure-native:storage:StorageAccount", "trigger-storage"): (None, ALL_METRICS),
    # Azure Managed Redis: metrics on the cluster, logs on the database
    ("azure-native:redisenterprise:RedisEnterprise", "redis"): (None, ALL_METRICS),
    ("azure-native:redisenterprise:Database", "redis-database"): (ALL_LOGS, None),
}


def rid(r: engine.Registered) -> str:
    """A resource's ARM ID as the fake Azure gives it."""
    return r.outputs["id"] if "id" in r.outputs else fakes.arm_id(r.type, r.azure_name)


def settings_by_uri(run: engine.Run) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for s in run.of_type(SETTING):
        i = engine.reveal(s.inputs)
        assert i["resourceUri"] not in found, f"two settings on {i['resourceUri']}"
        found[i["resourceUri"]] = i
    return found


@pytest.fixture(scope="module")
def prod_settings(prod) -> dict[str, dict[str, Any]]:
    return settings_by_uri(prod)


def _resource_ids(run: engine.Run, type_: str, name: str) -> list[str]:
    return [rid(r) for r in run.of_type(type_) if r.name == name and r.custom]


def test_every_resource_of_the_list_sends_logs_and_metrics_in_prod(prod, prod_settings) -> None:
    for (type_, name), (logs, metrics) in EXPECTED_PROD.items():
        ids = _resource_ids(prod, type_, name)
        assert ids, f"prod declares no {type_} {name!r}"
        for resource_id in ids:
            setting = prod_settings.get(resource_id)
            assert setting is not None, f"no diagnostic setting on {type_} {name}"
            assert setting.get("logs") == logs, (type_, name)
            assert setting.get("metrics") == metrics, (type_, name)


def test_storage_logs_come_from_each_blob_service(prod, prod_settings) -> None:
    accounts = prod.of_type("azure-native:storage:StorageAccount")
    assert len(accounts) == 3
    for account in accounts:
        blob = prod_settings[f"{rid(account)}/blobServices/default"]
        # named categories, as Azure reads them back at a service scope (no perpetual drift)
        assert blob["logs"] == ALL_LOGS and blob["metrics"] == [
            {"category": "Capacity", "enabled": True},
            {"category": "Transaction", "enabled": True},
        ]
        assert prod_settings[rid(account)]["metrics"] == ALL_METRICS  # the account: unchanged


def test_aks_sends_the_control_plane_without_the_full_audit_log(prod, prod_settings) -> None:
    (cluster,) = prod.of_type("azure-native:containerservice:ManagedCluster")
    setting = prod_settings[rid(cluster)]
    categories = [log["category"] for log in setting["logs"]]
    assert "kube-audit-admin" in categories and "kube-apiserver" in categories
    assert "kube-audit" not in categories  # get/list events: the costliest table
    assert all(log["enabled"] for log in setting["logs"])
    assert setting["metrics"] == ALL_METRICS


def test_every_setting_goes_to_the_stacks_workspace_and_nowhere_else(each_stack) -> None:
    workspace = rid(each_stack.one(WORKSPACE))
    settings = settings_by_uri(each_stack)
    assert settings
    for uri, s in settings.items():
        assert s["workspaceId"] == workspace, uri
        assert s["name"] == diag.SETTING_NAME
        assert not {"storageAccountId", "eventHubAuthorizationRuleId"} & set(s), uri


def test_dev_covers_what_dev_declares(dev) -> None:
    settings = settings_by_uri(dev)
    assert not dev.of_type("azure-native:machinelearningservices:OnlineEndpoint")  # off in dev
    for type_, name in [k for k in EXPECTED_PROD if "OnlineEndpoint" not in k[0]]:
        for resource_id in _resource_ids(dev, type_, name):
            assert resource_id in settings, (type_, name)


def test_each_setting_waits_for_its_resource(prod) -> None:
    """The resource URI is the resource's ID output: the engine records the dependency."""
    by_id = {rid(r): r.urn for r in prod.resources if r.custom}
    for s in prod.of_type(SETTING):
        uri = engine.reveal(s.inputs)["resourceUri"]
        owner = by_id.get(uri) or by_id.get(uri.split("/blobServices/")[0])
        assert owner in s.dependencies, uri


def test_an_attached_aks_cluster_is_left_alone(run_stack) -> None:
    cluster_id = (
        "/subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg-aks/providers/"
        "Microsoft.ContainerService/managedClusters/shared"
    )
    run = run_stack("dev", aksExistingClusterId=cluster_id)
    assert run.error is None, run.error
    assert cluster_id not in settings_by_uri(run)


def test_azure_cache_for_redis_sends_both_from_the_cache(run_stack) -> None:
    run = run_stack(
        "dev",
        redisService="azure-cache",
        redisPort=6380,
        redisSku="Basic",
        redisFamily="C",
        redisCapacity=0,
    )
    assert run.error is None, run.error
    (cache,) = run.of_type("azure-native:redis:Redis")
    setting = settings_by_uri(run)[rid(cache)]
    assert (setting["logs"], setting["metrics"]) == BOTH
