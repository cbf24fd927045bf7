"""The workspace's managed VNet (issue 30, blocker 3): batch endpoints in AllowOnlyApprovedOutbound
need private endpoint rules to the workspace storage's ``queue`` and ``table`` (how-to-managed-
network.md, "Scenario: Use batch endpoints or ParallelRunStep"), inline in the workspace."""

from __future__ import annotations

from typing import Any

from preview import engine

WORKSPACE = "azure-native:machinelearningservices:Workspace"


def rules(run: engine.Run) -> dict[str, Any]:
    """The batch rules (the cache's, cache-pe, is test_data_plane_network's)."""
    network = engine.reveal(run.one(WORKSPACE).inputs).get("managedNetwork") or {}
    found = network.get("outboundRules") or {}
    return {name: rule for name, rule in found.items() if name.startswith("batch-")}


def test_prod_batch_reaches_the_workspace_storage_queue_and_table(prod: engine.Run) -> None:
    storage = [
        r for r in prod.of_type("azure-native:storage:StorageAccount") if r.name == "storage"
    ]
    (account,) = [r for r in storage if "MlWorkspace" in r.parent]
    found = rules(prod)
    assert {name: r["destination"]["subresourceTarget"] for name, r in found.items()} == {
        "batch-storage-queue": "queue",
        "batch-storage-table": "table",
    }
    for rule in found.values():
        assert rule["type"] == "PrivateEndpoint" and rule["category"] == "UserDefined"
        assert rule["destination"]["serviceResourceId"].endswith("/" + account.azure_name)
    network = engine.reveal(prod.one(WORKSPACE).inputs)["managedNetwork"]
    assert network["isolationMode"] == "AllowOnlyApprovedOutbound"


def test_no_batch_no_storage_rules_and_no_managed_network_in_dev(run_stack: Any, dev) -> None:
    assert rules(run_stack("prod", batchEnabled=False)) == {}
    assert "managedNetwork" not in dev.one(WORKSPACE).inputs  # dev: no isolation


def test_online_deployments_leave_egress_to_the_managed_network(run_stack: Any) -> None:
    """The deployment's egressPublicNetworkAccess is the legacy isolation's: it "no longer
    applies" in a managed-VNet workspace (concept-secure-network-traffic-flow), so prod leaves
    it at the API's default (the SDK sends Enabled) even without public access; without a
    managed VNet, publicNetworkAccess false still asks for the legacy "Disabled"."""
    kind = "azure-native:machinelearningservices:OnlineDeployment"
    private = {"publicNetworkAccess": False, "deployerIpRanges": "", "iotEnabled": False}
    prod = run_stack(
        "prod", **private, iotHubIpFilter="", aksApiAuthorizedIpRanges="203.0.113.7/32"
    )
    assert prod.error is None, prod.error
    egress = [d.inputs["properties"]["egressPublicNetworkAccess"] for d in prod.of_type(kind)]
    assert egress == ["Enabled", "Enabled"]
    dev = run_stack("dev", onlineEndpointEnabled=True, publicNetworkAccess=False)
    egress = [d.inputs["properties"]["egressPublicNetworkAccess"] for d in dev.of_type(kind)]
    assert egress == ["Disabled", "Disabled"]
