"""The policy pack's network rules (policy/network.py) on the real prod program, broken one
property or one resource at a time, through the pulumi-policy objects with prod's config; dev's
config leaves them off (public by design).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from policy import network as N
from policy import policies as P
from tests.delivery.test_policy_pack import (
    POLICIES,
    Resources,
    _set,
    all_violations,
    run_policy,
    run_stack_policy,
    stack_policy_config,
)
from tests.delivery.test_policy_pack import prod_resources as prod_resources  # the fixture

PRIVATE = POLICIES[N.PRIVATE_NAME]
ENDPOINTS = POLICIES[N.ENDPOINTS_NAME]
PROD = stack_policy_config("prod")


def _of(resources: Resources, type_: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(p) for t, p in resources if t == type_]


def test_prod_declares_every_data_plane_the_rules_check(prod_resources: Resources):
    types = {t for t, _ in prod_resources}
    assert set(N.DATA_PLANES) - {N.REDIS} <= types  # prod's cache is Azure Managed Redis
    assert {N.PRIVATE_ENDPOINT, N.ZONE_GROUP} <= types


def test_the_rules_pass_on_prod_and_stay_off_in_dev(prod_resources: Resources):
    assert not {N.PRIVATE_NAME, N.ENDPOINTS_NAME} & set(all_violations(prod_resources, "prod"))
    # dev's config: not required, so prod's graph opened up would not be reported either
    opened = [(t, {**p, "publicNetworkAccess": "Enabled"}) for t, p in prod_resources]
    assert not {N.PRIVATE_NAME, N.ENDPOINTS_NAME} & set(all_violations(opened, "dev"))


Mutation = Callable[[dict[str, Any]], None]
OPENED: list[tuple[str, Mutation, str]] = [
    (N.KEY_VAULT, lambda p: _set(p, "properties.networkAcls.defaultAction", "Allow"), "Vault"),
    (N.STORAGE, lambda p: _set(p, "networkRuleSet.defaultAction", "Allow"), "StorageAccount"),
    (N.REGISTRY, lambda p: _set(p, "networkRuleSet.defaultAction", "Allow"), "Registry"),
    (N.REGISTRY, lambda p: p.pop("networkRuleSet"), "Registry"),
    (N.REDIS_ENTERPRISE, lambda p: _set(p, "publicNetworkAccess", "Enabled"), "RedisEnterprise"),
    (N.WORKSPACE, lambda p: _set(p, "publicNetworkAccess", "Enabled"), "Workspace"),
]


@pytest.mark.parametrize(("type_", "opens", "says"), OPENED, ids=[f"{o[2]}-{i}" for i, o in
                                                                    enumerate(OPENED)])  # fmt: skip
def test_private_rule_fires_on_a_real_prod_data_plane_opened(
    type_: str, opens: Mutation, says: str, prod_resources: Resources
):
    config = PROD[N.PRIVATE_NAME]
    targets = _of(prod_resources, type_)
    assert targets, type_
    for props in targets:
        assert run_policy(PRIVATE, type_, props, config) == []
        opens(props)
        found = run_policy(PRIVATE, type_, props, config)
        assert found and all(m.startswith(says) for m in found), found
        assert run_policy(PRIVATE, type_, props, {"required": False}) == []


def test_allow_list_and_private_rows_both_pass() -> None:
    config = PROD[N.PRIVATE_NAME]
    allow_list = {"publicNetworkAccess": "Enabled", "networkRuleSet": {"defaultAction": "Deny"}}
    assert run_policy(PRIVATE, N.STORAGE, allow_list, config) == []
    assert run_policy(PRIVATE, N.REGISTRY, {"publicNetworkAccess": "Disabled"}, config) == []
    # no firewall to lean on: the caches and the workspace need public access off
    assert run_policy(PRIVATE, N.REDIS, {"publicNetworkAccess": "Enabled"}, config)
    assert run_policy(PRIVATE, N.REDIS, {"publicNetworkAccess": "Disabled"}, config) == []


@pytest.mark.parametrize("endpoint", ["pe-kv", "pe-acr", "pe-st-blob", "pe-redis", "pe-mlw"])
def test_endpoints_rule_fires_when_a_data_plane_loses_its_private_endpoint(
    endpoint: str, prod_resources: Resources
):
    config = PROD[N.ENDPOINTS_NAME]
    assert run_stack_policy(ENDPOINTS, prod_resources, config) == []
    name = f"mlscore-prod-{endpoint}"
    kept = [
        (t, p)
        for t, p in prod_resources
        if not (t in (N.PRIVATE_ENDPOINT, N.ZONE_GROUP) and p.get("privateEndpointName") == name)
    ]
    assert len(kept) == len(prod_resources) - 2  # the endpoint and its zone group
    found = run_stack_policy(ENDPOINTS, kept, config)
    assert len(found) == 1 and "has no private endpoint" in found[0], found
    assert run_stack_policy(ENDPOINTS, kept, {"required": False}) == []


def test_endpoints_rule_fires_on_an_endpoint_without_a_zone_group(prod_resources: Resources):
    kept = [
        (t, p)
        for t, p in prod_resources
        if not (t == N.ZONE_GROUP and p.get("privateEndpointName") == "mlscore-prod-pe-kv")
    ]
    found = run_stack_policy(ENDPOINTS, kept, PROD[N.ENDPOINTS_NAME])
    assert found == [
        "private endpoint 'mlscore-prod-pe-kv' has no private DNS zone group: its clients "
        "resolve the public address"
    ]


def test_an_endpoint_id_unknown_at_preview_counts_for_its_group() -> None:
    vault = (N.KEY_VAULT, {"vaultName": "kv1"})
    endpoint = {
        "privateEndpointName": "pe",
        "privateLinkServiceConnections": [{"groupIds": ["vault"], "privateLinkServiceId": None}],
    }
    group = (N.ZONE_GROUP, {"privateEndpointName": "pe"})
    assert N.check_private_endpoints([vault, (N.PRIVATE_ENDPOINT, endpoint), group]) == []
    wrong = copy.deepcopy(endpoint)
    wrong["privateLinkServiceConnections"][0]["privateLinkServiceId"] = "/x/vaults/other"
    assert N.check_private_endpoints([vault, (N.PRIVATE_ENDPOINT, wrong), group])


def test_the_plain_evaluation_agrees_on_prod(prod_resources: Resources):
    found = P.evaluate_stack(prod_resources, zones_required=True, network_required=True)
    assert not {N.PRIVATE_NAME, N.ENDPOINTS_NAME} & set(found)


def test_public_by_design_is_said_in_the_remediation_and_exists_in_prod(
    prod_resources: Resources,
):
    types = {t for t, _ in prod_resources}
    for type_, why in N.PUBLIC_BY_DESIGN.items():
        assert type_ in types, type_
        assert why in (PRIVATE.remediation_steps or "")
        assert type_ not in N.DATA_PLANES
