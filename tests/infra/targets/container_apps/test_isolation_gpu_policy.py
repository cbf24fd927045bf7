"""Container Apps: the prod environment in its delegated subnet, the serverless GPU opt-in (refused
where Azure does not offer it, before any resource), the settings' rules and the policy pack."""

from __future__ import annotations

import pytest

from policy.policies import evaluate
from preview import engine, fakes
from tests.infra.settings_helpers import keys_of, load, problems

ENV = "azure-native:app:ManagedEnvironment"
APP = "azure-native:app:ContainerApp"
VNET = "azure-native:network:VirtualNetwork"
NSG = "azure-native:network:NetworkSecurityGroup"


def subnets(run: engine.Run) -> dict[str, dict]:
    return {s["name"]: s for s in run.one(VNET).inputs["subnets"]}


# --- network isolation (prod) ---------------------------------------------------------------------
def test_prod_environment_in_its_delegated_subnet_with_internal_ingress(prod) -> None:
    vnet = prod.one(VNET)
    subnet = subnets(prod)["container-apps"]
    assert subnet["addressPrefix"] == "10.20.2.64/26"
    assert [d["serviceName"] for d in subnet["delegations"]] == ["Microsoft.App/environments"]
    vnet_config = engine.reveal(prod.one(ENV).inputs)["vnetConfiguration"]
    vnet_id = fakes.arm_id(vnet.type, vnet.azure_name)
    assert vnet_config == {
        "infrastructureSubnetId": f"{vnet_id}/subnets/container-apps",
        "internal": True,  # the secure default: reachable from the VNet only
    }
    assert prod.outputs["endpoints"]["container_apps"]["internal"] is True
    nsg = prod.one(NSG, "nsg-container-apps")
    assert "securityRules" not in nsg.inputs  # Azure's defaults: internet inbound denied


def test_public_ingress_is_a_setting_that_opens_https_only(run_stack) -> None:
    run = run_stack("prod", containerAppsInternalOnly=False)
    assert run.error is None, run.error
    assert engine.reveal(run.one(ENV).inputs)["vnetConfiguration"]["internal"] is False
    (rule,) = run.one(NSG, "nsg-container-apps").inputs["securityRules"]
    assert rule["direction"] == "Inbound" and rule["access"] == "Allow"
    assert rule["sourceAddressPrefix"] == "Internet" and rule["protocol"] == "Tcp"
    assert sorted(rule["destinationPortRanges"]) == ["443", "80"]  # 80 only redirects
    ingress = engine.reveal(run.one(APP).inputs)["configuration"]["ingress"]
    assert ingress["allowInsecure"] is False


def test_the_subnet_must_be_a_27_or_larger() -> None:
    found = problems("prod", subnetContainerApps="10.20.2.64/28")
    assert keys_of(found) == {"subnetContainerApps"} and "/27" in found[0].problem
    assert load("prod", subnetContainerApps="10.20.2.64/27").network.subnets["container_apps"]


def test_no_subnet_when_switched_off_or_not_isolated() -> None:
    assert "container_apps" not in load("prod", containerAppsEnabled=False).network.subnets
    assert load("dev").network.subnets == {}


def test_zone_redundancy_needs_the_vnet_and_three_replicas() -> None:
    found = problems("prod", containerAppsMinReplicas=1)
    assert keys_of(found) == {"containerAppsMinReplicas", "zoneRedundant"}
    found = problems(
        "dev", zoneRedundant=True, storageRedundancy="ZRS", appServiceEnabled=False,
        functionsEnabled=False, containerAppsMinReplicas=3,
    )  # fmt: skip
    assert {"networkIsolation", "containerAppsEnabled"} <= keys_of(found)


# --- serverless GPU ------------------------------------------------------------------------------
def test_gpu_places_the_app_on_a_serverless_gpu_profile(run_stack) -> None:
    run = run_stack("dev", location="swedencentral", containerAppsGpu="T4")
    assert run.error is None, run.error
    profiles = engine.reveal(run.one(ENV).inputs)["workloadProfiles"]
    assert {"name": "gpu-t4", "workloadProfileType": "Consumption-GPU-NC8as-T4"} in [
        {k: p[k] for k in ("name", "workloadProfileType")} for p in profiles
    ]
    app = engine.reveal(run.one(APP).inputs)
    assert app["workloadProfileName"] == "gpu-t4"
    (c,) = app["template"]["containers"]
    assert c["resources"] == {"cpu": 8.0, "memory": "56Gi", "gpu": 1.0}


@pytest.mark.parametrize(
    ("gpu", "location"), [("A100", "westeurope"), ("T4", "westus"), ("T4", "eastus2")]
)
def test_gpu_is_refused_where_azure_does_not_offer_it_before_any_resource(
    run_stack, gpu, location
) -> None:
    found = problems("dev", location=location, containerAppsGpu=gpu)
    assert keys_of(found) == {"containerAppsGpu", "location"}
    assert "gpu-serverless-overview" in found[0].problem
    run = run_stack("dev", location=location, containerAppsGpu=gpu)
    assert run.error is not None and run.resources == []


def test_gpu_replicas_need_addresses_in_the_subnet() -> None:
    found = problems(
        "prod", location="swedencentral", containerAppsGpu="A100", containerAppsMaxReplicas=60
    )
    assert keys_of(found) == {"subnetContainerApps"} and "60 GPU replicas" in found[0].problem


def test_unknown_gpu_and_bad_sizes_are_refused() -> None:
    assert keys_of(problems("dev", containerAppsGpu="H100")) == {"containerAppsGpu"}
    assert keys_of(problems("dev", containerAppsCpu="0.3")) == {"containerAppsCpu"}
    assert keys_of(problems("dev", containerAppsCpu="5")) == {"containerAppsCpu"}
    found = problems("dev", containerAppsMinReplicas=5, containerAppsMaxReplicas=2)
    assert keys_of(found) == {"containerAppsMinReplicas", "containerAppsMaxReplicas"}


# --- policy pack ---------------------------------------------------------------------------------
def test_the_policy_pack_passes_the_program_and_fails_insecure_apps(each_stack) -> None:
    props = engine.to_json(engine.reveal(each_stack.one(APP).inputs))
    assert evaluate(APP, props) == {}
    insecure = {**props, "configuration": {**props["configuration"]}}
    insecure["configuration"]["ingress"] = {**props["configuration"]["ingress"]}
    insecure["configuration"]["ingress"]["allowInsecure"] = True
    assert set(evaluate(APP, insecure)) == {"https-only"}
    admin = {**props, "configuration": {**props["configuration"]}}
    admin["configuration"]["registries"] = [
        {"server": "x.azurecr.io", "username": "x", "passwordSecretRef": "acr-password"}
    ]
    assert set(evaluate(APP, admin)) == {"images-pulled-by-identity"}
    plain = {**props, "template": {"containers": [dict(props["template"]["containers"][0])]}}
    plain["template"]["containers"][0]["env"] = [{"name": "SCORING_AUTH_KEYS", "value": "k1,k2"}]
    assert "no-plaintext-secrets" in evaluate(APP, plain)
