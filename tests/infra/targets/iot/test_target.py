"""IoT Hub / IoT Edge target under mocks with the real stack files: hub, scope map, token,
device and deployment resources, outputs, secrets."""

from __future__ import annotations

import json

import pytest

from components.providers.iot_edge import EdgeDeploymentProvider
from components.providers.iot_hub_api import secret_ref
from preview import engine, fakes

HUB = "azure-native:iothub:IotHubResource"
SCOPE_MAP = "azure-native:containerregistry:ScopeMap"
TOKEN = "azure-native:containerregistry:Token"
DEVICE = "pulumi-python:dynamic/iotedge:Device"
DEPLOYMENT = "pulumi-python:dynamic/iotedge:Deployment"
PASSWORD = "pulumi-python:dynamic/acr:TokenPassword"
IOT_TYPES = (HUB, SCOPE_MAP, TOKEN, DEVICE, DEPLOYMENT, PASSWORD)


def arm_id(run: engine.Run, type_: str) -> str:
    return fakes.arm_id(type_, run.one(type_).azure_name)


def desired(run: engine.Run, twin: str) -> dict:
    return run.one(DEPLOYMENT).inputs["modules_content"][twin]["properties.desired"]


def test_hub_sku_tls_and_local_auth(dev, prod) -> None:
    for run, sku, units in ((dev, "S1", 1), (prod, "S2", 2)):
        hub = run.one(HUB).inputs
        assert hub["sku"] == {"name": sku, "capacity": units}
        props = hub["properties"]
        assert props["minTlsVersion"] == "1.2"
        # SAS stays on: the deployment provider, the device and its modules authenticate with it
        assert props["disableLocalAuth"] is False
        assert props["disableDeviceSAS"] is False and props["disableModuleSAS"] is False
        assert props["authorizationPolicies"] == [
            {"keyName": "edge-deployer", "rights": "RegistryRead, RegistryWrite, ServiceConnect"}
        ]
        assert hub["resourceName"] == run.one(HUB).azure_name == run.outputs["iot"]["hub_name"]


def test_scope_map_is_pull_only_on_the_scoring_repository(each_stack) -> None:
    scope = each_stack.one(SCOPE_MAP).inputs
    assert scope["actions"] == [
        "repositories/scoring/content/read",
        "repositories/scoring/metadata/read",
    ]
    assert not any(a.endswith(("/write", "/delete")) for a in scope["actions"])
    assert (
        scope["registryName"]
        == each_stack.one("azure-native:containerregistry:Registry").azure_name
    )


def test_token_is_bound_to_the_scope_map_and_its_password_generated(each_stack) -> None:
    token = each_stack.one(TOKEN).inputs
    assert token["scopeMapId"] == arm_id(each_stack, SCOPE_MAP)
    assert token["status"] == "enabled"
    assert "credentials" not in token  # no password is declared, it is generated
    password = each_stack.one(PASSWORD).inputs
    assert password["token_id"] == arm_id(each_stack, TOKEN)
    assert password["registry_id"] == arm_id(each_stack, "azure-native:containerregistry:Registry")
    assert password["password_name"] == "password1"


def test_device_is_registered_in_the_hub_with_a_secret_policy_key(dev) -> None:
    device = dev.one(DEVICE).inputs
    assert device["device_id"] == "edge-device-01"
    assert device["host_name"] == f"{dev.one(HUB).azure_name}.azure-devices.net"
    assert device["policy_name"] == "edge-deployer"
    assert isinstance(device["policy_key"], engine.Secret)
    assert ("azure-native:iothub:listIotHubResourceKeysForKeyName") in [c[0] for c in dev.calls]
    assert isinstance(device["__provider"], engine.Secret)


def test_deployment_carries_edge_agent_and_edge_hub(each_stack) -> None:
    run = each_stack
    agent = desired(run, "$edgeAgent")
    module = agent["modules"]["scoring"]
    assert module["settings"]["image"] == run.outputs["image"]
    assert "@sha256:" in module["settings"]["image"]  # by digest: a new build rolls out
    options = json.loads(module["settings"]["createOptions"])
    assert options == {"HostConfig": {"PortBindings": {"5001/tcp": [{"HostPort": "5001"}]}}}
    assert module["restartPolicy"] == "always" and module["status"] == "running"
    env = {k: v["value"] for k, v in module["env"].items()}
    assert env["AZUREML_SERVER_PORT"] == "5001"
    assert env["SCORING_AUTH_KEYS"] == secret_ref("scoring_auth_keys")
    assert not {"AZURE_CLIENT_ID", "REDIS_HOST"} & set(env)  # cloud-only settings stay out
    creds = agent["runtime"]["settings"]["registryCredentials"]["scoringregistry"]
    assert creds["address"] == run.outputs["registry"]["login_server"]
    assert creds["username"] == run.one(TOKEN).azure_name
    assert creds["password"] == secret_ref("registry_password")
    assert agent["systemModules"]["edgeHub"]["settings"]["image"].endswith(":1.6")
    hub = desired(run, "$edgeHub")
    assert hub["storeAndForwardConfiguration"] == {"timeToLiveSecs": 7200}
    assert "INTO $upstream" in hub["routes"]["scoringToUpstream"]["route"]


def test_deployment_secrets_are_secret_and_come_from_the_token_and_the_keys(dev) -> None:
    dep = dev.one(DEPLOYMENT).inputs
    assert isinstance(dep["secrets"], engine.Secret)
    secrets = engine.reveal(dep["secrets"])
    token_password = fakes.fake_secret(f"acr-token:{arm_id(dev, TOKEN)}", 52)
    assert secrets["registry_password"] == token_password
    assert secrets["scoring_auth_keys"].count(",") == 1
    assert dep["device_id"] == "edge-device-01"  # from the device resource: a real dependency
    assert dev.one(DEVICE).urn in dev.one(DEPLOYMENT).dependencies


def test_no_registry_admin_password_anywhere(each_stack) -> None:
    assert (
        each_stack.one("azure-native:containerregistry:Registry").inputs["adminUserEnabled"]
        is False
    )
    assert "azure-native:containerregistry:listRegistryCredentials" not in [
        c[0] for c in each_stack.calls
    ]
    for r in each_stack.resources:
        if r.type in IOT_TYPES:
            text = json.dumps(engine.to_json(r.inputs))
            assert "adminUser" not in text and "listRegistryCredentials" not in text


def test_iot_output_with_the_device_connection_string_secret(dev) -> None:
    iot = dev.outputs["iot"]
    hub = dev.one(HUB).azure_name
    assert iot["hub_name"] == hub
    assert iot["hostname"] == f"{hub}.azure-devices.net"
    assert iot["device_id"] == "edge-device-01"
    assert iot["deployment_id"]
    assert isinstance(iot["device_connection_string"], engine.Secret)
    cs = engine.reveal(iot["device_connection_string"])
    assert cs.startswith(f"HostName={hub}.azure-devices.net;DeviceId=edge-device-01;")
    assert "SharedAccessKey=" in cs
    assert "iot_edge" not in dev.outputs["endpoints"]  # the device has no address by default


def test_an_addressable_device_gets_an_endpoint_entry(run_stack) -> None:
    run = run_stack("dev", iotEdgeDeviceHost="edge01.plant.local")
    assert run.error is None, run.error
    ep = run.outputs["endpoints"]["iot_edge"]
    assert ep["scoring_uri"] == "http://edge01.plant.local:5001/score"
    assert ep["health_uri"] == "http://edge01.plant.local:5001/ready"
    assert ep["auth"]["scheme"] == "bearer-key"
    assert isinstance(ep["auth"]["key"], engine.Secret)
    assert ep["tls"] is False


def test_iot_off_leaves_no_resources_and_no_output(run_stack) -> None:
    run = run_stack("dev", iotEnabled="false")
    assert run.error is None, run.error
    assert not [r for r in run.resources if r.type in IOT_TYPES or "IotEdge" in r.type]
    assert "iot" not in run.outputs


def test_preview_shows_a_readable_manifest(run_stack) -> None:
    run = run_stack("dev", preview=True)
    assert run.error is None, run.error
    dep = run.one(DEPLOYMENT).inputs
    content = dep["modules_content"]
    assert set(content) == {"$edgeAgent", "$edgeHub"}  # not one opaque secret
    module = content["$edgeAgent"]["properties.desired"]["modules"]["scoring"]
    assert module["settings"]["image"] is engine.COMPUTED  # the digest is known after the push
    assert isinstance(dep["secrets"], engine.Secret)


def test_a_new_image_digest_is_an_update_of_the_deployment(run_stack, dev) -> None:
    newer = run_stack("dev", modelVersion="2")  # a new tag, a new build, a new digest
    assert newer.error is None, newer.error
    olds = engine.reveal(dev.one(DEPLOYMENT).inputs)
    news = engine.reveal(newer.one(DEPLOYMENT).inputs)
    old_image = olds["modules_content"]["$edgeAgent"]["properties.desired"]["modules"]["scoring"]
    new_image = news["modules_content"]["$edgeAgent"]["properties.desired"]["modules"]["scoring"]
    assert old_image["settings"]["image"] != new_image["settings"]["image"]
    diff = EdgeDeploymentProvider().diff("id", olds, news)
    assert diff.changes is True and diff.replaces == []


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        ({"iotEdgeRuntimeVersion": "1.5"}, "mlscore:iotEdgeRuntimeVersion"),
        ({"iotEdgeRuntimeVersion": "lts"}, "mlscore:iotEdgeRuntimeVersion"),
        ({"iotEdgeHostPort": "8883"}, "mlscore:iotEdgeHostPort"),
        ({"iotEdgeStoreForwardTtlSeconds": "0"}, "mlscore:iotEdgeStoreForwardTtlSeconds"),
        ({"iotEdgeDeviceHost": "not a host"}, "mlscore:iotEdgeDeviceHost"),
    ],
)
def test_bad_iot_settings_are_reported_with_key_and_fix(run_stack, overrides, keys) -> None:
    run = run_stack("dev", **overrides)
    assert run.problems, run.error
    text = "\n".join(str(p) for p in run.problems)
    assert keys in text and "fix:" in text


@pytest.mark.parametrize(
    "overrides",
    [
        {"iotEdgeRuntimeVersion": "1.6.3"},
        {"iotEdgeHostPort": "8080"},
        {"iotEdgeStoreForwardTtlSeconds": "86400"},
        {"iotEdgeDeviceHost": "edge01"},
    ],
)
def test_good_iot_settings_pass(run_stack, overrides) -> None:
    run = run_stack("dev", **overrides)
    assert run.error is None, run.error
