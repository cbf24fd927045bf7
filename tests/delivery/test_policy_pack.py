"""The policy pack on the real program (every policy passes on dev and prod) and on bad arguments
(every policy fires): real resources with one property broken, and minimal bad fixtures.

The resources are those ``preview.engine`` captured from the real ``__main__.py`` under mocks,
with secrets revealed, as the Pulumi engine hands them to an analyzer. Each policy runs through
the pulumi-policy objects themselves (``ResourceValidationPolicy.validate`` with a real
``ResourceValidationArgs``), not only through the plain check functions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy import hygiene as H
from policy import network as N
from policy import policies as P
from preview import engine

ROOT = Path(__file__).resolve().parents[2]
Resources = list[tuple[str, dict[str, Any]]]


def captured(run: engine.Run) -> Resources:
    return [(r.type, engine.reveal(r.inputs)) for r in run.resources if r.custom]


@pytest.fixture(scope="module")
def dev_resources(dev: engine.Run) -> Resources:
    return captured(dev)


@pytest.fixture(scope="module")
def prod_resources(prod: engine.Run) -> Resources:
    return captured(prod)


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def run_policy(
    policy: Policy, type_: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None
) -> list[str]:
    """Violations reported by the pulumi-policy object for one resource (``config``: the
    policy's entry in policy/config.<stack>.json)."""
    assert isinstance(policy, ResourceValidationPolicy)
    found: list[str] = []
    args = ResourceValidationArgs(type_, props, f"urn:x::{type_}::r", "r", _opts(), None, config)
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


def run_stack_policy(
    policy: Policy, resources: Resources, config: Mapping[str, Any] | None = None
) -> list[str]:
    assert isinstance(policy, StackValidationPolicy)
    found: list[str] = []
    res = [
        PolicyResource(t, p, f"urn:x::{t}::r{i}", f"r{i}", _opts(), None, None, [], {})
        for i, (t, p) in enumerate(resources)
    ]
    args = StackValidationArgs(res, config)
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


POLICIES = {p.name: p for p in P.policies()}


def stack_policy_config(stack: str) -> dict[str, Any]:
    return json.loads((ROOT / "policy" / f"config.{stack}.json").read_text())


def all_violations(resources: Resources, stack: str = "dev") -> dict[str, list[str]]:
    """Every violation, through the pulumi-policy objects, with the stack's policy config."""
    out: dict[str, list[str]] = {}
    config = stack_policy_config(stack)
    for name, policy in POLICIES.items():
        own = config.get(name) if isinstance(config.get(name), dict) else None
        if isinstance(policy, StackValidationPolicy):
            msgs = run_stack_policy(policy, resources, own)
        else:
            msgs = [m for t, p in resources for m in run_policy(policy, t, p, own)]
        if msgs:
            out[name] = msgs
    return out


# --- the real program passes ---------------------------------------------------------------------
def test_the_pack_has_every_policy_of_the_issue():
    assert set(POLICIES) == {
        "registry-admin-disabled",
        "https-only",
        "tls-1-2-minimum",
        "redis-non-tls-port-disabled",
        "storage-no-public-blob-access",
        "key-vault-purge-protection",
        "key-vault-secret-expiry",
        "zone-redundancy",
        "aks-rbac",
        "aks-min-12-vcpus",
        "no-plaintext-secrets",
        "images-pulled-by-identity",
        "data-plane-private",
        "data-plane-private-endpoints",
        "monthly-budget",
    }


def test_every_policy_passes_on_real_dev(dev_resources: Resources):
    assert all_violations(dev_resources, "dev") == {}


def test_every_policy_passes_on_real_prod(prod_resources: Resources):
    assert all_violations(prod_resources, "prod") == {}


def test_the_plain_evaluation_agrees_with_the_pack(dev_resources: Resources):
    assert P.evaluate_stack(dev_resources) == {}
    # dev is single-zone and public by design: with prod's config the zone and network rules
    # would object
    by_design = {"zone-redundancy", "data-plane-private", "data-plane-private-endpoints"}
    assert set(all_violations(dev_resources, "prod")) == by_design
    required = P.evaluate_stack(dev_resources, zones_required=True, network_required=True)
    assert set(required) == by_design


# Which real resource each rule inspects: a pass on the real program means something only if the
# rule looked at resources of the types it is written for.
INSPECTED = {
    "registry-admin-disabled": [P.REGISTRY],
    "https-only": [P.WEB_APP, P.STORAGE],
    "tls-1-2-minimum": [P.WEB_APP, P.STORAGE, P.REDIS_ENTERPRISE, P.SERVICE_BUS, P.IOT_HUB],
    "redis-non-tls-port-disabled": [P.REDIS_ENTERPRISE_DB],
    "storage-no-public-blob-access": [P.STORAGE],
    "key-vault-purge-protection": [P.KEY_VAULT],
    "key-vault-secret-expiry": [H.KEY_VAULT_SECRET],
    "zone-redundancy": [H.APP_SERVICE_PLAN, P.STORAGE],
    "aks-rbac": [P.AKS],
    "aks-min-12-vcpus": [P.AKS, P.AKS_POOL],
    "no-plaintext-secrets": [P.WEB_APP, P.ACI, "kubernetes:apps/v1:Deployment"],
    "images-pulled-by-identity": [P.WEB_APP, P.ACI],
    "data-plane-private": list(N.DATA_PLANES.keys() - {N.REDIS}),  # dev: Azure Managed Redis
    "data-plane-private-endpoints": list(N.DATA_PLANES.keys() - {N.REDIS}),
}


@pytest.mark.parametrize("rule", sorted(INSPECTED))
def test_the_real_dev_program_declares_what_each_policy_inspects(
    rule: str, dev_resources: Resources
):
    types = {t for t, _ in dev_resources}
    missing = [t for t in INSPECTED[rule] if t not in types]
    assert not missing, f"{rule}: the dev program declares no {missing}"


# --- real resources with one property broken: the policy fires ----------------------------------
def _set(props: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node: Any = props
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is _DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value


_DELETE = object()


def _setting(props: dict[str, Any], name: str, value: str) -> None:
    settings = props["siteConfig"]["appSettings"]
    settings[:] = [s for s in settings if s["name"] != name] + [{"name": name, "value": value}]


def _env_plain(props: dict[str, Any], name: str) -> None:
    """ACI: turn a secure environment variable into a plain one."""
    for container in props["containers"]:
        for var in container["environmentVariables"]:
            if var["name"] == name:
                var["value"] = var.pop("secureValue")


def _k8s_env_plain(props: dict[str, Any], name: str) -> None:
    for container in props["spec"]["template"]["spec"]["containers"]:
        for var in container.get("env", []):
            if var["name"] == name:
                var.pop("valueFrom", None)
                var["value"] = "s3cret-value"


def _is_app(props: Mapping[str, Any]) -> bool:
    return "functionapp" not in str(props.get("kind"))


def _is_function(props: Mapping[str, Any]) -> bool:
    return "functionapp" in str(props.get("kind"))


def _any(_: Mapping[str, Any]) -> bool:
    return True


Mutation = Callable[[dict[str, Any]], None]
# (policy, resource type, which of that type, how to break it, what the message must say)
BROKEN: list[tuple[str, str, Callable[[Mapping[str, Any]], bool], Mutation, str]] = [
    ("registry-admin-disabled", P.REGISTRY, _any,
     lambda p: _set(p, "adminUserEnabled", True), "adminUserEnabled"),
    ("https-only", P.WEB_APP, _is_app, lambda p: _set(p, "httpsOnly", False), "httpsOnly"),
    ("https-only", P.WEB_APP, _is_function, lambda p: _set(p, "httpsOnly", _DELETE), "httpsOnly"),
    ("https-only", P.STORAGE, _any,
     lambda p: _set(p, "enableHttpsTrafficOnly", False), "enableHttpsTrafficOnly"),
    ("tls-1-2-minimum", P.WEB_APP, _is_app,
     lambda p: _set(p, "siteConfig.minTlsVersion", "1.0"), "minTlsVersion"),
    ("tls-1-2-minimum", P.WEB_APP, _is_function,
     lambda p: _set(p, "siteConfig.scmMinTlsVersion", "1.1"), "scmMinTlsVersion"),
    ("tls-1-2-minimum", P.STORAGE, _any,
     lambda p: _set(p, "minimumTlsVersion", "TLS1_0"), "minimumTlsVersion"),
    ("tls-1-2-minimum", P.STORAGE, _any,
     lambda p: _set(p, "minimumTlsVersion", _DELETE), "minimumTlsVersion"),
    ("tls-1-2-minimum", P.REDIS_ENTERPRISE, _any,
     lambda p: _set(p, "minimumTlsVersion", "1.1"), "minimumTlsVersion"),
    ("tls-1-2-minimum", P.SERVICE_BUS, _any,
     lambda p: _set(p, "minimumTlsVersion", "1.0"), "minimumTlsVersion"),
    ("tls-1-2-minimum", P.IOT_HUB, _any,
     lambda p: _set(p, "properties.minTlsVersion", _DELETE), "minTlsVersion"),
    ("redis-non-tls-port-disabled", P.REDIS_ENTERPRISE_DB, _any,
     lambda p: _set(p, "clientProtocol", "Plaintext"), "clientProtocol"),
    ("storage-no-public-blob-access", P.STORAGE, _any,
     lambda p: _set(p, "allowBlobPublicAccess", True), "allowBlobPublicAccess"),
    ("key-vault-purge-protection", P.KEY_VAULT, _any,
     lambda p: _set(p, "properties.enablePurgeProtection", False), "enablePurgeProtection"),
    ("key-vault-secret-expiry", H.KEY_VAULT_SECRET, _any,
     lambda p: _set(p, "properties.contentType", _DELETE), "contentType"),
    ("key-vault-secret-expiry", H.KEY_VAULT_SECRET, _any,
     lambda p: _set(p, "properties.attributes.expires", _DELETE), "expires"),
    ("key-vault-secret-expiry", H.KEY_VAULT_SECRET, _any,
     lambda p: _set(p, "properties.attributes.expires", 1_000_000_000), "is past"),
    ("aks-rbac", P.AKS, _any, lambda p: _set(p, "enableRBAC", False), "enableRBAC"),
    ("no-plaintext-secrets", P.WEB_APP, _is_app,
     lambda p: _setting(p, "SCORING_AUTH_KEYS", "k1,k2"), "SCORING_AUTH_KEYS"),
    ("no-plaintext-secrets", P.WEB_APP, _is_function,
     lambda p: _setting(p, "REDIS_PASSWORD", "hunter2"), "REDIS_PASSWORD"),
    ("no-plaintext-secrets", P.WEB_APP, _is_function,
     lambda p: _setting(
         p, "AzureWebJobsStorage",
         "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc123==;"),
     "AzureWebJobsStorage"),
    ("no-plaintext-secrets", P.ACI, _any,
     lambda p: _env_plain(p, "SCORING_AUTH_KEYS"), "SCORING_AUTH_KEYS"),
    ("no-plaintext-secrets", "kubernetes:apps/v1:Deployment", _any,
     lambda p: _k8s_env_plain(p, "SCORING_AUTH_KEYS"), "SCORING_AUTH_KEYS"),
    ("images-pulled-by-identity", P.WEB_APP, _is_app,
     lambda p: _set(p, "siteConfig.acrUseManagedIdentityCreds", False),
     "acrUseManagedIdentityCreds"),
    ("images-pulled-by-identity", P.WEB_APP, _is_function,
     lambda p: _setting(p, "DOCKER_REGISTRY_SERVER_PASSWORD", "pw"),
     "DOCKER_REGISTRY_SERVER_PASSWORD"),
    ("images-pulled-by-identity", P.ACI, _any,
     lambda p: p["imageRegistryCredentials"][0].update(
         {"username": "acr", "password": "pw", "identity": None}),
     "imageRegistryCredentials"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "type_", "which", "breaks", "says"),
    BROKEN,
    ids=[f"{b[0]}-{b[1].split(':')[-1]}-{b[4]}" for b in BROKEN],
)
def test_policy_fires_on_a_real_resource_broken(
    rule: str,
    type_: str,
    which: Callable[[Mapping[str, Any]], bool],
    breaks: Mutation,
    says: str,
    dev_resources: Resources,
):
    targets = [p for t, p in dev_resources if t == type_ and which(p)]
    assert targets, f"the dev program has no {type_} to break"
    props = copy.deepcopy(targets[0])
    assert run_policy(POLICIES[rule], type_, props) == []
    breaks(props)
    found = run_policy(POLICIES[rule], type_, props)
    assert found, f"{rule} did not fire"
    assert any(says in m for m in found), found
    # only the rule meant for it fires (a registry password in app settings is also a
    # plaintext secret, so that one case fires both)
    others = {n for n in P.evaluate(type_, props) if n != rule}
    assert others <= ({"no-plaintext-secrets"} if "PASSWORD" in says else set())


def _pool_of(resources: Resources) -> dict[str, Any]:
    return next(p for t, p in resources if t == P.AKS_POOL)


def test_vcpu_policy_fires_when_the_real_user_pool_shrinks(dev_resources: Resources):
    resources = copy.deepcopy(dev_resources)
    pool = _pool_of(resources)
    pool["minCount"] = pool["count"] = 2  # 2 x Standard_D4s_v5 = 8 vCPUs
    found = run_stack_policy(POLICIES["aks-min-12-vcpus"], resources)
    assert len(found) == 1
    assert "= 8 vCPUs" in found[0] and ">= 12" in found[0]


def test_vcpu_policy_counts_the_autoscaler_minimum_not_the_count(dev_resources: Resources):
    resources = copy.deepcopy(dev_resources)
    pool = _pool_of(resources)
    pool.update(enableAutoScaling=True, minCount=1, count=5, maxCount=5)
    assert run_stack_policy(POLICIES["aks-min-12-vcpus"], resources)


def test_vcpu_policy_ignores_the_tainted_system_pool(dev_resources: Resources):
    resources = [(t, p) for t, p in copy.deepcopy(dev_resources) if t != P.AKS_POOL]
    cluster = next(p for t, p in resources if t == P.AKS)
    cluster["agentPoolProfiles"][0]["count"] = 10  # 10 x D2s_v5 = 20 vCPUs, but system only
    found = run_stack_policy(POLICIES["aks-min-12-vcpus"], resources)
    assert found and "no workload pool" in found[0]


def test_vcpu_policy_refuses_a_size_it_cannot_count(dev_resources: Resources):
    resources = copy.deepcopy(dev_resources)
    _pool_of(resources)["vmSize"] = "Standard_Made_Up_v9"
    found = run_stack_policy(POLICIES["aks-min-12-vcpus"], resources)
    assert any("unknown to components/config/sizes.py" in m for m in found)


# --- minimal bad fixtures, for resource types the program may not declare today ------------------
FIXTURES: list[tuple[str, str, dict[str, Any]]] = [
    ("https-only", P.WEB_APP_SLOT, {"httpsOnly": False, "siteConfig": {"minTlsVersion": "1.2"}}),
    ("tls-1-2-minimum", P.REDIS_ENTERPRISE, {"minimumTlsVersion": "1.0"}),
    ("redis-non-tls-port-disabled", P.REDIS_ENTERPRISE_DB, {"clientProtocol": "Plaintext"}),
    ("storage-no-public-blob-access", P.BLOB_CONTAINER, {"publicAccess": "Blob"}),
    ("no-plaintext-secrets", P.WEB_APP_SETTINGS, {"properties": {"API_TOKEN": "abc"}}),
    ("no-plaintext-secrets", P.ONLINE_DEPLOYMENT,
     {"properties": {"environmentVariables": {"REDIS_PASSWORD": "pw"}}}),
    ("no-plaintext-secrets", "kubernetes:batch/v1:CronJob",
     {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
         {"name": "c", "env": [{"name": "DB_PASSWORD", "value": "pw"}]}]}}}}}}),
    ("no-plaintext-secrets", P.WEB_APP,
     {"siteConfig": {"connectionStrings": [{"name": "db", "value": "Server=x;Password=pw"}]}}),
    ("images-pulled-by-identity", P.WEB_APP_SETTINGS,
     {"properties": {"DOCKER_REGISTRY_SERVER_PASSWORD": "pw"}}),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "type_", "props"), FIXTURES, ids=[f[1] for f in FIXTURES])
def test_policy_fires_on_a_bad_fixture(rule: str, type_: str, props: dict[str, Any]):
    assert run_policy(POLICIES[rule], type_, props)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("REDIS_PASSWORD", True),
        ("SCORING_AUTH_KEYS", True),
        ("STORAGE_KEY", True),
        ("GITHUB_TOKEN", True),
        ("APPLICATIONINSIGHTS_CONNECTION_STRING", True),
        ("TRIGGER_STORAGE__credential", False),
        ("SERVICEBUS__clientId", False),
        ("AZURE_CLIENT_ID", False),
        ("REDIS_HOST", False),
        ("CACHE_TTL_SECONDS", False),
        ("KEYVAULT_URI", False),
    ],
)
def test_secret_names(name: str, secret: bool):
    assert P.secret_like(name) is secret


def test_key_vault_references_and_secure_values_pass():
    web = {
        "siteConfig": {
            "appSettings": [
                {"name": "REDIS_PASSWORD", "value": "@Microsoft.KeyVault(SecretUri=https://v/s)"},
                {"name": "TRIGGER_STORAGE__credential", "value": "managedidentity"},
            ]
        }
    }
    aci = {"containers": [{"name": "c", "environmentVariables": [
        {"name": "REDIS_PASSWORD", "secureValue": "pw"}]}]}  # fmt: skip
    assert P.check_plaintext_secrets(P.WEB_APP, web) == []
    assert P.check_plaintext_secrets(P.ACI, aci) == []


def test_kubernetes_dependent_variables_are_references_not_values():
    def pod(value: str) -> dict[str, Any]:
        env = [{"name": "SCORING_AUTH_KEYS", "value": value}]
        return {"spec": {"template": {"spec": {"containers": [{"name": "c", "env": env}]}}}}

    deployment = "kubernetes:apps/v1:Deployment"
    assert P.check_plaintext_secrets(deployment, pod("$(KEY_PRIMARY),$(KEY_SECONDARY)")) == []
    assert P.check_plaintext_secrets(deployment, pod("k1,$(KEY_SECONDARY)"))


# --- enforcement per stack ------------------------------------------------------------------------
@pytest.mark.parametrize(("stack", "level"), [("prod", "mandatory"), ("dev", "advisory")])
def test_enforcement_config_per_stack(stack: str, level: str):
    config = stack_policy_config(stack)
    required = {"required": stack == "prod"}
    assert config == {
        "all": level,
        "zone-redundancy": required,
        "data-plane-private": required,
        "data-plane-private-endpoints": required,
    }


# --- zones: prod's resources broken, with prod's config -------------------------------------------
ZONE_BROKEN: list[tuple[str, Mutation, str]] = [
    (H.APP_SERVICE_PLAN, lambda p: _set(p, "zoneRedundant", False), "zoneRedundant"),
    (H.APP_SERVICE_PLAN, lambda p: _set(p, "sku.capacity", 1), "sku.capacity"),
    (P.STORAGE, lambda p: _set(p, "sku.name", "Standard_LRS"), "Standard_LRS"),
    (P.STORAGE, lambda p: _set(p, "sku.name", "Standard_GRS"), "Standard_GRS"),
]


@pytest.mark.parametrize(("type_", "breaks", "says"), ZONE_BROKEN, ids=[z[2] for z in ZONE_BROKEN])
def test_zone_policy_fires_on_a_real_prod_resource_broken(
    type_: str, breaks: Mutation, says: str, prod_resources: Resources
):
    policy, config = POLICIES["zone-redundancy"], stack_policy_config("prod")["zone-redundancy"]
    for props in [copy.deepcopy(p) for t, p in prod_resources if t == type_]:
        assert run_policy(policy, type_, props, config) == []
        breaks(props)
        found = run_policy(policy, type_, props, config)
        assert any(says in m for m in found), found
        assert run_policy(policy, type_, props, {"required": False}) == []


def test_zone_policy_remediation_gives_the_reason_of_the_azure_check():
    from policy.azure_checks import reason

    assert reason("CKV_AZURE_212") in (POLICIES["zone-redundancy"].remediation_steps or "")


def test_the_pack_builds_without_starting_a_server():
    # importing policy.policies never starts the gRPC server (policy/__main__.py does)
    assert all(p.name for p in P.policies())
    assert P.DEFAULT_ENFORCEMENT.value == "mandatory"
    text = (ROOT / "policy" / "__main__.py").read_text()
    assert "PolicyPack(" in text and "from policies import" in text
