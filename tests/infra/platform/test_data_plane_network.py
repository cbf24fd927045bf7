"""The data planes' network rules on the prod graph (issue 18): registry, key vault, workspace
storage, ML workspace and cache; dev stays public.

prod is the allow-list row of components/platform/network_settings.py's table (networkIsolation
with publicNetworkAccess true and deployerIpRanges); ``private_prod`` the private-only row.
Docs: https://learn.microsoft.com/azure/container-registry/container-registry-access-selected-networks,
https://learn.microsoft.com/azure/key-vault/general/network-security,
https://learn.microsoft.com/azure/storage/common/storage-network-security,
https://learn.microsoft.com/azure/machine-learning/how-to-managed-network,
https://learn.microsoft.com/azure/redis/private-link
"""

from __future__ import annotations

from typing import Any

import pytest

from components.platform.network_settings import storage_ip_rules
from preview import engine

REGISTRY = "azure-native:containerregistry:Registry"
VAULT = "azure-native:keyvault:Vault"
STORAGE = "azure-native:storage:StorageAccount"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
AMR = "azure-native:redisenterprise:RedisEnterprise"

DEPLOYER = "203.0.113.0/24"  # Pulumi.prod.yaml
IOT_FILTER = "198.51.100.0/24"


def _named(run: engine.Run, type_: str, name: str) -> dict[str, Any]:
    found = [r for r in run.of_type(type_) if r.name == name]
    assert len(found) == 1, (type_, name, [r.name for r in run.of_type(type_)])
    return dict(found[0].inputs)


@pytest.fixture(scope="module")
def private_prod(run_stack) -> engine.Run:
    """prod deployed from a runner inside the VNet: no public endpoint, no allow-list (and no
    IoT Edge, whose devices pull from the registry over the internet: settings refuse it)."""
    run = run_stack(
        "prod",
        publicNetworkAccess=False,
        deployerIpRanges="",
        aksApiAuthorizedIpRanges=DEPLOYER,
        iotEnabled=False,
        iotHubIpFilter="",
    )
    assert run.error is None, run.error
    return run


# --- registry --------------------------------------------------------------------------------
def test_prod_registry_denies_by_default_and_admits_the_deployer_and_the_edge_devices(prod):
    acr = _named(prod, REGISTRY, "acr")
    assert acr["publicNetworkAccess"] == "Enabled"  # allow-list mode
    rules = acr["networkRuleSet"]
    assert rules["defaultAction"] == "Deny"
    assert [r["iPAddressOrRange"] for r in rules["ipRules"]] == [DEPLOYER, IOT_FILTER]
    assert {r["action"] for r in rules["ipRules"]} == {"Allow"}
    assert acr["networkRuleBypassOptions"] == "AzureServices"  # Azure ML image builds


def test_a_vnet_runner_with_iot_leaves_only_the_devices_a_public_way_in(run_stack):
    """IoT Edge deployed from a runner in the VNet (no deployer ranges): the registry admits the
    devices' range only; the key vault and every storage account deny all public requests (the
    runner goes through their private endpoints)."""
    run = run_stack("prod", deployerIpRanges="", aksApiAuthorizedIpRanges="198.51.100.7")
    assert run.error is None, run.error
    acr = _named(run, REGISTRY, "acr")["networkRuleSet"]
    assert [r["iPAddressOrRange"] for r in acr["ipRules"]] == [IOT_FILTER]
    acls = _named(run, VAULT, "keyvault")["properties"]["networkAcls"]
    assert acls["defaultAction"] == "Deny" and not acls.get("ipRules")
    for account in run.of_type(STORAGE):
        rules = account.inputs["networkRuleSet"]
        assert rules["defaultAction"] == "Deny" and not rules.get("ipRules"), account.name


def test_registry_public_access_is_off_without_an_allow_list(private_prod):
    assert _named(private_prod, REGISTRY, "acr")["publicNetworkAccess"] == "Disabled"


# --- key vault -------------------------------------------------------------------------------
def test_prod_key_vault_denies_by_default_and_admits_the_deployer(prod):
    props = _named(prod, VAULT, "keyvault")["properties"]
    assert props["publicNetworkAccess"] == "Enabled"
    acls = props["networkAcls"]
    assert acls["defaultAction"] == "Deny"
    assert acls["bypass"] == "AzureServices"
    assert [r["value"] for r in acls["ipRules"]] == [DEPLOYER]


def test_key_vault_public_access_is_off_without_an_allow_list(private_prod):
    props = _named(private_prod, VAULT, "keyvault")["properties"]
    assert props["publicNetworkAccess"] == "Disabled"
    assert props["networkAcls"]["defaultAction"] == "Deny"
    assert not props["networkAcls"].get("ipRules")


# --- workspace storage -----------------------------------------------------------------------
def test_prod_workspace_storage_denies_by_default_and_admits_the_deployer(prod):
    account = _named(prod, STORAGE, "storage")
    assert account["publicNetworkAccess"] == "Enabled"
    rules = account["networkRuleSet"]
    assert rules["defaultAction"] == "Deny"
    assert rules["bypass"] == "AzureServices"
    assert [r["iPAddressOrRange"] for r in rules["ipRules"]] == [DEPLOYER]


def test_storage_takes_single_addresses_for_a_31_or_32(run_stack):
    # "small address ranges using prefix sizes of /31 or /32 aren't supported"
    ranges = "203.0.113.0/24,198.51.100.6/31,192.0.2.9/32"
    run = run_stack("prod", deployerIpRanges=ranges)
    assert run.error is None, run.error
    rules = _named(run, STORAGE, "storage")["networkRuleSet"]["ipRules"]
    values = [r["iPAddressOrRange"] for r in rules]
    assert values == ["203.0.113.0/24", "198.51.100.6", "198.51.100.7", "192.0.2.9"]
    assert values == storage_ip_rules(tuple(ranges.split(",")))
    # the key vault and the registry take CIDRs as they are
    vault = _named(run, VAULT, "keyvault")["properties"]["networkAcls"]["ipRules"]
    assert [r["value"] for r in vault] == ranges.split(",")


def test_workspace_storage_public_access_is_off_without_an_allow_list(private_prod):
    account = _named(private_prod, STORAGE, "storage")
    assert account["publicNetworkAccess"] == "Disabled"
    assert account["networkRuleSet"]["defaultAction"] == "Deny"


# --- ML workspace ----------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["prod", "private_prod"])
def test_prod_workspace_is_private_with_a_managed_network_without_a_firewall(stack, request):
    run = request.getfixturevalue(stack)
    ws = _named(run, WORKSPACE, "workspace")
    assert ws["publicNetworkAccess"] == "Disabled"  # no IP allow-list in the workspace API
    network = ws["managedNetwork"]
    assert network["isolationMode"] == "AllowOnlyApprovedOutbound"
    # an FQDN rule would create a billed Azure Firewall
    rules = (network.get("outboundRules") or {}).values()
    assert all(r.get("type") != "FQDN" for r in rules)
    assert ws["provisionNetworkNow"] is True


# --- cache -----------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["prod", "private_prod"])
def test_prod_cache_is_reached_through_its_private_endpoint_only(stack, request):
    # Azure Managed Redis has no IP firewall: with a private endpoint, public access is off
    # even in allow-list mode (the deployer only uses ARM on it).
    run = request.getfixturevalue(stack)
    assert run.one(AMR).inputs["publicNetworkAccess"] == "Disabled"


RULE = "azure-native:machinelearningservices:ManagedNetworkSettingsRule"


def test_prod_online_deployments_reach_the_cache_through_an_inline_outbound_rule(prod) -> None:
    # AllowOnlyApprovedOutbound: without a rule the managed VNet has no way to the cache, whose
    # public access is off. Inline in the workspace (a separate rule can be dropped by a later
    # workspace update, Azure/terraform-provider-azapi#453), so the workspace waits for the cache.
    assert not prod.of_type(RULE)
    ws = prod.one(WORKSPACE, "workspace")
    rule = engine.to_json(ws.inputs)["managedNetwork"]["outboundRules"]["cache-pe"]
    assert rule["type"] == "PrivateEndpoint" and rule["category"] == "UserDefined"
    assert rule["destination"]["subresourceTarget"] == "redisEnterprise"
    assert rule["destination"]["serviceResourceId"].endswith("/mlscore-prod-redis-41eac")
    assert prod.one(AMR).urn in ws.dependencies  # ... and taken from the cache itself
    # the workspace's identity approves that private endpoint on the cache (not automatic
    # since April 30th, 2025: how-to-managed-network.md)
    approver = engine.reveal(
        prod.one("azure-native:authorization:RoleAssignment", "cache-pe-approver").inputs
    )
    assert approver["roleDefinitionId"].endswith("/b556d68e-0be0-4f35-a333-ad7ee1ce17ea")
    assert approver["scope"].endswith("/mlscore-prod-redis-41eac")
    assert approver["principalType"] == "ServicePrincipal" and approver["principalId"]


def test_no_cache_rule_without_online_endpoints(run_stack) -> None:
    run = run_stack("prod", onlineEndpointEnabled=False)
    rules = engine.to_json(run.one(WORKSPACE, "workspace").inputs)["managedNetwork"]
    assert "cache-pe" not in (rules.get("outboundRules") or {})
    assert run.one(AMR).urn not in run.one(WORKSPACE, "workspace").dependencies
    roles = run.of_type("azure-native:authorization:RoleAssignment")
    assert "cache-pe-approver" not in {r.name for r in roles}


def test_dev_has_no_managed_network_rule(dev):
    assert not dev.of_type(RULE)


# --- dev: unchanged, public ------------------------------------------------------------------
def test_dev_data_planes_stay_public_without_network_rules(dev):
    acr = _named(dev, REGISTRY, "acr")
    assert acr["publicNetworkAccess"] == "Enabled"
    assert "networkRuleSet" not in acr  # no firewall (Basic has none)
    vault = _named(dev, VAULT, "keyvault")["properties"]
    assert vault["publicNetworkAccess"] == "Enabled"
    assert vault["networkAcls"]["defaultAction"] == "Allow"
    assert not vault["networkAcls"].get("ipRules")
    for account in dev.of_type(STORAGE):
        assert account.inputs["publicNetworkAccess"] == "Enabled", account.name
        assert account.inputs["networkRuleSet"]["defaultAction"] == "Allow", account.name
        assert not account.inputs["networkRuleSet"].get("ipRules"), account.name
    ws = _named(dev, WORKSPACE, "workspace")
    assert ws["publicNetworkAccess"] == "Enabled"
    assert "managedNetwork" not in ws and "provisionNetworkNow" not in ws
    assert dev.one(AMR).inputs["publicNetworkAccess"] == "Enabled"


def test_every_prod_storage_account_denies_by_default(prod):
    """Workspace storage and the Functions host and trigger accounts all have private endpoints:
    each denies by default and admits only the deployer."""
    accounts = prod.of_type(STORAGE)
    assert {a.name for a in accounts} >= {"storage", "host-storage", "trigger-storage"}
    for account in accounts:
        rules = account.inputs["networkRuleSet"]
        assert rules["defaultAction"] == "Deny", account.name
        assert rules["bypass"] == "AzureServices", account.name
        assert [r["iPAddressOrRange"] for r in rules["ipRules"]] == [DEPLOYER], account.name
