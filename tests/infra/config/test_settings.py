"""Settings: every rule, good and bad; every problem reported at once; schema and reader agree."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components import settings as cfg
from components.config.naming import RULES, Naming
from components.config.reader import PROJECT_FILE
from components.targets.aks.settings import planned_max_replicas
from preview import engine
from tests.infra.settings_helpers import keys_of, load, problems


@pytest.mark.parametrize("stack", engine.stacks())
def test_every_stack_file_is_valid(stack: str) -> None:
    s = load(stack)
    assert s.stack == stack


def test_dev_is_small_and_prod_is_sized() -> None:
    dev, prod = load("dev"), load("prod")
    assert (dev.redis.sku, dev.redis.high_availability) == ("Balanced_B0", False)
    assert dev.app_service.sku == "B1" and dev.functions.sku == "EP1"
    assert dev.aci.enabled and (dev.aci.cpu, dev.aci.memory_gb) == (1.0, 1.0)
    assert (prod.redis.sku, prod.redis.high_availability) == ("Balanced_B5", True)
    assert prod.app_service.sku.startswith("P")
    assert not prod.aci.enabled  # dev/test only, as the seeds say
    assert prod.aks.node_count * 8 >= 24 and prod.aks.max_node_count > prod.aks.node_count
    assert prod.registry_sku == "Premium"


def test_every_declared_key_is_read_and_every_read_key_is_declared() -> None:
    asked: list[str] = []

    def lookup(key: str) -> str | None:
        asked.append(key)
        return None

    # Pulumi.yaml's defaults alone are one stack short of valid, by design: HTTPS on AKS needs
    # the stack's own host name and certificate (or, in dev, an explicit opt-in to plain HTTP).
    with pytest.raises(cfg.SettingsError) as raised:
        cfg.load(lookup, project="mlscore", stack="dev")
    assert {key for p in raised.value.problems for key in p.keys} == {
        "aksTlsEnabled",
        "aksTlsHost",
        "aksTlsCertificateName",
    }
    assert set(asked) == set(cfg.schema())  # every key read although problems were found


def test_schema_declares_type_default_and_description_for_every_key() -> None:
    project = yaml.safe_load(PROJECT_FILE.read_text())
    for key, spec in project["config"].items():
        assert key.startswith("mlscore:"), key
        assert spec["type"] in {"string", "integer", "boolean", "array"}, key
        assert "default" in spec and spec.get("description"), key


def test_unknown_key_in_a_stack_file_is_refused() -> None:
    with pytest.raises(engine.StackConfigError, match="mlscore:nodeCont is not declared"):
        engine.stack_config("dev", {"nodeCont": 3})


# --- AKS: the 12 vCPU rule ---------------------------------------------------------------------
def test_two_four_vcpu_nodes_are_refused_with_one_message_naming_the_rule() -> None:
    found = problems(aksNodeCount=2, aksVmSize="Standard_D4s_v5")
    assert len(found) == 1
    text = str(found[0])
    assert "mlscore:aksNodeCount" in text and "mlscore:aksVmSize" in text
    assert "2 x Standard_D4s_v5 = 8 vCPUs" in text and ">= 12 vCPUs" in text
    assert "raise mlscore:aksNodeCount to 3" in text


@pytest.mark.parametrize(
    ("count", "size", "ok"),
    [
        (3, "Standard_D3_v2", True),  # the seeds' example: 3 x 4 = 12
        (2, "Standard_D3_v2", False),
        (1, "Standard_D16s_v5", True),
        (5, "Standard_D2s_v5", False),
        (6, "Standard_D2s_v5", True),
    ],
)
def test_vcpu_rule(count: int, size: str, ok: bool) -> None:
    overrides = {"aksNodeCount": count, "aksMaxNodeCount": max(count, 3), "aksVmSize": size}
    if ok:
        load(**overrides)
    else:
        assert keys_of(problems(**overrides)) == {"aksNodeCount", "aksVmSize"}


def test_accelerator_pool_counts_towards_the_vcpus() -> None:
    # 2 x 4 vCPUs alone is too small; with a 4-vCPU GPU node it reaches 12.
    base = {"aksNodeCount": 2, "aksVmSize": "Standard_D4s_v5"}
    assert problems(**base)
    load(**base, acceleratorEnabled=True, acceleratorVmSize="Standard_NC4as_T4_v3")


def test_an_unknown_vm_size_says_how_to_proceed() -> None:
    (found,) = problems(aksVmSize="Standard_Imaginary_v9")
    assert found.keys == ("aksVmSize",)
    assert "components/config/sizes.py" in found.fix


def test_an_attached_cluster_is_not_sized_but_its_id_is_checked() -> None:
    good = (
        "/subscriptions/0000/resourceGroups/rg/providers/"
        "Microsoft.ContainerService/managedClusters/aks1"
    )
    load(aksExistingClusterId=good, aksNodeCount=1)
    assert keys_of(problems(aksExistingClusterId="aks1")) == {"aksExistingClusterId"}


def test_autoscaler_min_above_max() -> None:
    assert keys_of(problems(aksNodeCount=4, aksMaxNodeCount=3)) == {
        "aksNodeCount",
        "aksMaxNodeCount",
    }


# --- autoscale ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        (
            {"autoscaleMinReplicas": 5, "autoscaleMaxReplicas": 4},
            {"autoscaleMinReplicas", "autoscaleMaxReplicas"},
        ),
        ({"autoscaleTargetUtilization": 0}, {"autoscaleTargetUtilization"}),
        ({"autoscaleTargetUtilization": 101}, {"autoscaleTargetUtilization"}),
        ({"autoscaleTargetRps": 20}, {"autoscaleTargetRps", "autoscaleRequestMs"}),
        ({"autoscaleMinReplicas": "three"}, {"autoscaleMinReplicas"}),
    ],
)
def test_autoscale_rules(overrides: dict[str, Any], keys: set[str]) -> None:
    assert keys_of(problems(**overrides)) == keys


def test_autoscale_boundaries_are_accepted() -> None:
    load(autoscaleTargetUtilization=1, autoscaleMinReplicas=4, autoscaleMaxReplicas=4)
    load(autoscaleTargetUtilization=100, autoscaleTargetRps=20, autoscaleRequestMs=10000)


def test_replica_planning_with_the_seeds_numbers() -> None:
    # 20 requests/s, 10 s per request, 70 % utilisation, 1 concurrent request per container.
    assert planned_max_replicas(20, 10, 0.7, 1) == 286
    assert planned_max_replicas(20, 10, 0.7, 2) == 143
    with pytest.raises(ValueError):
        planned_max_replicas(20, 10, 70, 1)


# --- Redis -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sku", "family", "capacity", "ok"),
    [
        ("Basic", "C", 0, True),
        ("Standard", "C", 6, True),
        ("Premium", "P", 1, True),
        ("Premium", "P", 5, True),
        ("Basic", "P", 1, False),
        ("Premium", "C", 1, False),
        ("Standard", "C", 7, False),
        ("Premium", "P", 0, False),
        ("Enterprise", "C", 0, False),
    ],
)
def test_redis_sku_family_capacity(sku: str, family: str, capacity: int, ok: bool) -> None:
    overrides = {"redisSku": sku, "redisFamily": family, "redisCapacity": capacity}
    overrides |= {"redisService": "azure-cache", "redisPort": 6380}  # the explicit choice
    if ok:
        load(**overrides)
    else:
        assert keys_of(problems(**overrides)) & {"redisSku", "redisFamily", "redisCapacity"}


def test_an_existing_redis_host_skips_the_sku_rules() -> None:
    s = load(redisHost="cache.westeurope.redis.azure.net", redisPort=10000, redisSku="Basic")
    assert not s.redis.create and s.redis.port == 10000


# --- ACI, App Service, misc --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        ({"aciCpu": "0"}, {"aciCpu"}),
        ({"aciCpu": "4.5"}, {"aciCpu"}),
        ({"aciCpu": "one"}, {"aciCpu"}),
        ({"aciMemoryGb": "17"}, {"aciMemoryGb"}),
        ({"aciMemoryGb": "1.25"}, {"aciMemoryGb"}),
        ({"appServiceSku": "F1"}, {"appServiceSku"}),
        ({"appServiceMaxInstances": 3}, {"appServiceSku", "appServiceMaxInstances"}),
        (
            {"appServiceMinInstances": 4, "appServiceMaxInstances": 2},
            {"appServiceMinInstances", "appServiceMaxInstances"},
        ),
        ({"functionsSku": "Y1"}, {"functionsSku"}),
        ({"functionsQueueName": "-bad-"}, {"functionsQueueName"}),
        ({"scoringPort": 80}, {"scoringPort"}),
        ({"location": "West Europe"}, {"location"}),
        ({"registrySku": "Classic"}, {"registrySku"}),
        ({"iotHubSku": "F1", "iotHubCapacity": 2}, {"iotHubSku", "iotHubCapacity"}),
        ({"iotEdgeDeviceId": "bad id/with slash"}, {"iotEdgeDeviceId"}),
        (
            {"onlineTrafficBlue": 80, "onlineTrafficGreen": 30},
            {"onlineTrafficBlue", "onlineTrafficGreen"},
        ),
        ({"onlineMirrorGreen": 60}, {"onlineMirrorGreen"}),
        (
            {"acceleratorEnabled": True, "acceleratorVmSize": "Standard_D4s_v5"},
            {"acceleratorKind", "acceleratorVmSize"},
        ),
        (
            {
                "acceleratorEnabled": True,
                "acceleratorKind": "fpga",
                "acceleratorVmSize": "Standard_PB6s",
                "location": "northeurope",
            },
            {"acceleratorKind", "location"},
        ),
        ({"acceleratorEnabled": True, "aksEnabled": False}, {"acceleratorEnabled", "aksEnabled"}),
        ({"deployerPrincipalType": "Robot"}, {"deployerPrincipalType"}),
        ({"redisEnabled": "maybe"}, {"redisEnabled"}),
    ],
)
def test_rules(overrides: dict[str, Any], keys: set[str]) -> None:
    assert keys_of(problems(**overrides)) == keys


def test_fpga_in_a_brainwave_region_is_accepted() -> None:
    s = load(
        acceleratorEnabled=True,
        acceleratorKind="fpga",
        acceleratorVmSize="Standard_PB6s",
        location="eastus",
    )
    assert s.accelerator.kind == "fpga"


def test_prod_autoscale_on_standard_plan_is_accepted() -> None:
    load(appServiceSku="S1", appServiceMaxInstances=3)


# --- names -------------------------------------------------------------------------------------
def test_names_follow_azure_rules_for_both_stacks() -> None:
    for stack in engine.stacks():
        naming = load(stack).naming
        for label, (rule, name) in naming.globally_unique().items():
            assert RULES[rule].problem(name) is None, (label, name)


def test_longest_prefix_suffix_and_stack_still_give_valid_names() -> None:
    naming = Naming("abcdefghij", "production-westeurope", "zzzzzz")
    for label, (rule, name) in naming.globally_unique().items():
        assert RULES[rule].problem(name) is None, (label, name)
    assert load(prefix="abcdefghij", nameSuffix="zzzzzz").naming.storage().endswith("zzzzzz")


@pytest.mark.parametrize(
    ("prefix", "suffix"), [("Ml", ""), ("1ml", ""), ("m", ""), ("ml", "UPPER"), ("ml", "1234567")]
)
def test_bad_prefix_or_suffix(prefix: str, suffix: str) -> None:
    assert keys_of(problems(prefix=prefix, nameSuffix=suffix)) & {"prefix", "nameSuffix"}


@pytest.mark.parametrize(
    ("rule", "name", "ok"),
    [
        ("storage", "abc", True),
        ("storage", "ab", False),
        ("storage", "Abc", False),
        ("storage", "a" * 25, False),
        ("registry", "acr01", True),
        ("registry", "acr-1", False),
        ("redis", "my-cache", True),
        ("redis", "my--cache", False),
        ("redis", "-cache", False),
        ("redis", "r" * 60, True),
        ("redis", "r" * 61, False),  # Azure Managed Redis: 1-60 (Azure Cache for Redis: 63)
        ("webapp", "app-1", True),
        ("webapp", "app-", False),
        ("aks_pool", "userpool", True),
        ("aks_pool", "userpool12345", False),
        ("aks_pool", "User", False),
        ("keyvault", "kv-1", True),
        ("keyvault", "1kv", False),
        ("keyvault", "kv--1", False),
    ],
)
def test_name_rules(rule: str, name: str, ok: bool) -> None:
    assert (RULES[rule].problem(name) is None) == ok


def test_suffix_is_stable_per_stack_and_differs_between_stacks() -> None:
    assert load("dev").naming.suffix == load("dev").naming.suffix
    assert load("dev").naming.suffix != load("prod").naming.suffix
    assert load(nameSuffix="ab12").naming.suffix == "ab12"
    assert Naming("ml", "dev", "x1").storage("fnh") == "mldevfnhx1"


# --- all problems at once ----------------------------------------------------------------------
def test_several_bad_values_give_several_messages_in_one_run() -> None:
    found = problems(
        aksNodeCount=2,
        aksVmSize="Standard_D4s_v5",
        aciCpu="9",
        redisSku="Enterprise_E10",  # retiring: refused
        autoscaleTargetUtilization=150,
        location="Mars Base",
    )
    assert keys_of(found) >= {
        "aksNodeCount",
        "aciCpu",
        "redisSku",
        "autoscaleTargetUtilization",
        "location",
    }
    assert len(found) >= 5
    message = str(cfg.SettingsError(found))
    assert f"{len(found)} problem(s)" in message
    for p in found:
        assert "fix:" in str(p) and "mlscore:" in str(p)


def test_an_invalid_config_declares_no_resource(run_stack: Any) -> None:
    run = run_stack("dev", aksNodeCount=2, aksVmSize="Standard_D4s_v5", aciCpu="9")
    assert isinstance(run.error, cfg.SettingsError)
    assert len(run.problems) == 2
    assert run.resources == []
