"""The IoT Edge dynamic providers against a loopback server that plays IoT Hub and ARM.

The providers are the production classes; only their ``endpoint`` input points at the fake.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from components import PROJECT_ROOT
from components.providers.iot_edge import (
    EdgeDeploymentProvider,
    EdgeDeviceProvider,
    RegistryTokenPasswordProvider,
)
from components.providers.iot_hub_api import IOTHUB_API_VERSION, IotHubError, sas_token, secret_ref
from components.targets.iot.manifest import (
    EdgeManifestSpec,
    EdgeModule,
    RegistryCredential,
    build_modules_content,
    runtime_only_modules_content,
)
from tests.infra.fake_iothub import FakeIotHub

ROOT = PROJECT_ROOT
HOST = "mlscore-dev-iot-abcde.azure-devices.net"
POLICY = "edge-deployer"
KEY = base64.b64encode(b"k" * 32).decode()
REGISTRY_ID = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr1"
)
TOKEN_ID = f"{REGISTRY_ID}/tokens/mlscore-dev-edge"


@pytest.fixture
def hub():
    with FakeIotHub(HOST, {POLICY: KEY}) as fake:
        yield fake


def device_props(hub: FakeIotHub, **extra: Any) -> dict[str, Any]:
    return {
        "host_name": HOST,
        "device_id": "edge-01",
        "policy_name": POLICY,
        "policy_key": KEY,
        "status": "enabled",
        "endpoint": hub.url,
        **extra,
    }


def as_pulumi_sends(value: Any) -> Any:
    """Numbers as Pulumi hands them to a dynamic provider (protobuf doubles)."""
    if isinstance(value, dict):
        return {k: as_pulumi_sends(v) for k, v in value.items()}
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    return value


def manifest(image: str) -> dict[str, Any]:
    spec = EdgeManifestSpec(
        modules=(
            EdgeModule(
                "scoring",
                image,
                {"SCORING_AUTH_KEYS": secret_ref("keys"), "MODEL_NAME": "m"},
                {5001: 5001},
            ),
        ),
        registries={
            "acr": RegistryCredential("acr1.azurecr.io", "tok", secret_ref("registry_password"))
        },
    )
    return as_pulumi_sends(build_modules_content(spec))


def deployment_props(hub: FakeIotHub, image: str = "acr1.azurecr.io/scoring@sha256:aa") -> dict:
    return {
        **device_props(hub),
        "modules_content": manifest(image),
        "secrets": {"registry_password": "pw-1", "keys": "k1,k2"},
        "removal_content": as_pulumi_sends(runtime_only_modules_content()),
    }


# --- SAS ---------------------------------------------------------------------------------------
def test_sas_token_has_the_documented_shape_and_an_hour_of_validity():
    token = sas_token("MyHub.azure-devices.net", POLICY, KEY, now=1_000_000)
    assert token.startswith("SharedAccessSignature sr=myhub.azure-devices.net&sig=")
    fields = dict(p.split("=", 1) for p in token.split(" ", 1)[1].split("&"))
    assert fields["se"] == str(1_000_000 + 3600)
    assert fields["skn"] == POLICY
    assert "%" in fields["sig"] or fields["sig"].isalnum()  # URL-encoded base64


# --- device ------------------------------------------------------------------------------------
def test_create_registers_an_edge_device_with_hub_generated_keys(hub):
    result = EdgeDeviceProvider().create(device_props(hub))
    [put] = hub.of("PUT", "/devices/edge-01")
    assert put.query == {"api-version": IOTHUB_API_VERSION}
    assert put.auth_shape == "sas"
    assert put.body["capabilities"] == {"iotEdge": True}
    assert put.body["authentication"] == {
        "type": "sas",
        "symmetricKey": {"primaryKey": None, "secondaryKey": None},
    }
    assert "if-match" not in put.headers
    primary = hub.devices["edge-01"]["authentication"]["symmetricKey"]["primaryKey"]
    assert result.id == f"{HOST}/devices/edge-01"
    assert result.outs["primary_key"] == primary
    assert result.outs["connection_string"] == (
        f"HostName={HOST};DeviceId=edge-01;SharedAccessKey={primary}"
    )


def test_create_adopts_an_existing_device_and_makes_it_an_edge_device(hub):
    hub.devices["edge-01"] = {"deviceId": "edge-01", "etag": "MQ==", "version": 1,
                              "generationId": "g", "status": "enabled",
                              "capabilities": {"iotEdge": False},
                              "authentication": {"type": "sas", "symmetricKey": {
                                  "primaryKey": "cA==", "secondaryKey": "cw=="}}}  # fmt: skip
    result = EdgeDeviceProvider().create(device_props(hub))
    puts = hub.of("PUT", "/devices/edge-01")
    assert [p.headers.get("if-match") for p in puts] == [None, '"MQ=="']  # 409, then If-Match
    assert hub.devices["edge-01"]["capabilities"]["iotEdge"] is True
    assert result.outs["primary_key"] == "cA=="  # the device keeps its keys


def test_create_twice_is_idempotent(hub):
    first = EdgeDeviceProvider().create(device_props(hub))
    second = EdgeDeviceProvider().create(device_props(hub))
    assert first.outs["connection_string"] == second.outs["connection_string"]
    assert len(hub.of("PUT")) == 2  # the second PUT got 409 and the device was adopted as is


def test_update_puts_with_if_match_and_keeps_the_keys(hub):
    created = EdgeDeviceProvider().create(device_props(hub))
    updated = EdgeDeviceProvider().update(
        created.id or "", created.outs, device_props(hub, status="disabled")
    )
    last = hub.of("PUT")[-1]
    assert last.headers["if-match"] == f'"{created.outs["etag"]}"'
    assert hub.devices["edge-01"]["status"] == "disabled"
    assert updated.outs["primary_key"] == created.outs["primary_key"]


def test_update_rereads_and_retries_on_412(hub):
    created = EdgeDeviceProvider().create(device_props(hub))
    hub.fail_next("PUT", "/devices/edge-01", 412)
    EdgeDeviceProvider().update(
        created.id or "", created.outs, device_props(hub, status="disabled")
    )
    assert [r.method for r in hub.requests[1:]] == ["GET", "PUT", "GET", "PUT"]
    assert hub.devices["edge-01"]["status"] == "disabled"


def test_diff_replaces_on_a_new_device_id_and_updates_on_status(hub):
    olds = device_props(hub)
    p = EdgeDeviceProvider()
    assert p.diff("x", olds, dict(olds)).changes is False
    renamed = p.diff("x", olds, device_props(hub, device_id="edge-02"))
    assert renamed.replaces == ["device_id"] and renamed.delete_before_replace
    status = p.diff("x", olds, device_props(hub, status="disabled"))
    assert status.changes and not status.replaces


def test_delete_removes_the_device_and_tolerates_it_being_gone(hub):
    created = EdgeDeviceProvider().create(device_props(hub))
    EdgeDeviceProvider().delete(created.id or "", created.outs)
    assert "edge-01" not in hub.devices
    assert hub.of("DELETE")[0].headers["if-match"] == "*"
    EdgeDeviceProvider().delete(created.id or "", created.outs)  # 404: nothing left to do
    assert len(hub.of("DELETE")) == 2


def test_read_reports_a_deleted_device_as_gone(hub):
    created = EdgeDeviceProvider().create(device_props(hub))
    del hub.devices["edge-01"]
    assert EdgeDeviceProvider().read(created.id or "", created.outs).id is None


# --- retries and errors ------------------------------------------------------------------------
def test_throttling_is_retried_honouring_retry_after(hub):
    hub.fail_next("PUT", "/devices/edge-01", 429, times=2, headers={"Retry-After": "0"})
    EdgeDeviceProvider().create(device_props(hub))
    assert [r.method for r in hub.requests] == ["PUT", "PUT", "PUT"]
    assert "edge-01" in hub.devices


def test_a_5xx_is_retried_with_backoff(hub):
    hub.fail_next("PUT", "/devices/edge-01", 503)
    started = time.monotonic()
    EdgeDeviceProvider().create(device_props(hub))
    assert time.monotonic() - started >= 0.9  # the first backoff step is one second
    assert len(hub.of("PUT")) == 2


def test_it_gives_up_after_six_attempts_with_a_clear_message(hub):
    hub.fail_next("PUT", "/devices/edge-01", 429, times=6, headers={"Retry-After": "0"})
    with pytest.raises(IotHubError, match=r"answered 429 after 6 attempts.*try again later"):
        EdgeDeviceProvider().create(device_props(hub))
    assert len(hub.of("PUT")) == 6


def test_a_wrong_key_fails_at_once_naming_the_policy(hub):
    wrong = base64.b64encode(b"x" * 32).decode()
    with pytest.raises(IotHubError) as err:
        EdgeDeviceProvider().create(device_props(hub, policy_key=wrong))
    message = str(err.value)
    assert "answered 401" in message and "IotHubUnauthorizedAccess" in message
    assert "shared access policy" in message
    assert len(hub.requests) == 1  # no retry on 401


def test_a_forbidden_answer_names_the_rights_needed(hub):
    hub.fail_next("PUT", "/devices/edge-01", 403)
    with pytest.raises(IotHubError, match="RegistryRead, RegistryWrite and ServiceConnect"):
        EdgeDeviceProvider().create(device_props(hub))
    assert len(hub.requests) == 1


# --- deployment --------------------------------------------------------------------------------
def test_deployment_applies_the_manifest_with_secrets_filled_in(hub):
    EdgeDeviceProvider().create(device_props(hub))
    props = deployment_props(hub)
    result = EdgeDeploymentProvider().create(props)
    [post] = hub.of("POST", "/devices/edge-01/applyConfigurationContent")
    assert post.query == {"api-version": IOTHUB_API_VERSION} and post.auth_shape == "sas"
    desired = post.body["modulesContent"]["$edgeAgent"]["properties.desired"]
    creds = desired["runtime"]["settings"]["registryCredentials"]["acr"]
    assert creds["password"] == "pw-1"
    assert desired["modules"]["scoring"]["env"]["SCORING_AUTH_KEYS"] == {"value": "k1,k2"}
    assert desired["modules"]["scoring"]["startupOrder"] == 1  # an integer again, not 1.0
    hub_desired = post.body["modulesContent"]["$edgeHub"]["properties.desired"]
    assert hub_desired["storeAndForwardConfiguration"] == {"timeToLiveSecs": 7200}
    assert "{{secret:" not in json.dumps(post.body)
    assert "pw-1" not in json.dumps(result.outs["modules_content"])  # state keeps placeholders
    assert hub.edge_agent["edge-01"]["modules"]["scoring"]["settings"]["image"].endswith("aa")


def test_a_new_image_digest_is_an_update_that_rolls_out(hub):
    EdgeDeviceProvider().create(device_props(hub))
    provider = EdgeDeploymentProvider()
    created = provider.create(deployment_props(hub))
    newer = deployment_props(hub, image="acr1.azurecr.io/scoring@sha256:bb")
    assert provider.diff("x", created.outs, deployment_props(hub)).changes is False
    diff = provider.diff("x", created.outs, newer)
    assert diff.changes is True and diff.replaces == []
    updated = provider.update("x", created.outs, newer)
    assert hub.edge_agent["edge-01"]["modules"]["scoring"]["settings"]["image"].endswith("bb")
    assert updated.outs["content_sha256"] != created.outs["content_sha256"]
    assert len(hub.applied) == 2


def test_a_rotated_registry_password_is_an_update(hub):
    olds = deployment_props(hub)
    news = {**olds, "secrets": {**olds["secrets"], "registry_password": "pw-2"}}
    assert EdgeDeploymentProvider().diff("x", olds, news).changes is True


def test_deployment_to_an_unknown_device_fails_with_404_explained(hub):
    with pytest.raises(IotHubError, match=r"404 \(not found: .*DeviceNotFound.*device ID"):
        EdgeDeploymentProvider().create(deployment_props(hub))


def test_deleting_the_deployment_leaves_only_the_runtime_modules(hub):
    EdgeDeviceProvider().create(device_props(hub))
    created = EdgeDeploymentProvider().create(deployment_props(hub))
    EdgeDeploymentProvider().delete("x", created.outs)
    assert hub.edge_agent["edge-01"]["modules"] == {}
    assert set(hub.edge_agent["edge-01"]["systemModules"]) == {"edgeAgent", "edgeHub"}
    del hub.devices["edge-01"]
    EdgeDeploymentProvider().delete("x", created.outs)  # device gone: nothing to remove


def test_read_detects_an_image_changed_behind_pulumis_back(hub):
    EdgeDeviceProvider().create(device_props(hub))
    created = EdgeDeploymentProvider().create(deployment_props(hub))
    assert EdgeDeploymentProvider().read("x", created.outs).outs == created.outs
    hub.edge_agent["edge-01"]["modules"]["scoring"]["settings"]["image"] = "other@sha256:cc"
    drifted = EdgeDeploymentProvider().read("x", created.outs).outs
    assert drifted["content_sha256"].startswith("drifted:")
    assert EdgeDeploymentProvider().diff("x", drifted, deployment_props(hub)).changes is True


# --- registry token password -------------------------------------------------------------------
class _Credential:
    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes: str, **_: Any) -> Any:
        assert scopes == ("https://management.azure.com/.default",)
        return type("AccessToken", (), {"token": self.token})()


def test_token_password_comes_from_generate_credentials(hub, monkeypatch):
    import azure.identity

    monkeypatch.setattr(
        azure.identity, "DefaultAzureCredential", lambda: _Credential(hub.arm_token)
    )
    props = {"registry_id": REGISTRY_ID, "token_id": TOKEN_ID, "password_name": "password1",
             "expiry": None, "endpoint": hub.url}  # fmt: skip
    result = RegistryTokenPasswordProvider().create(props)
    post = hub.of("POST", "/generateCredentials")[0]
    assert post.path == f"{REGISTRY_ID}/generateCredentials"
    assert post.query == {"api-version": "2023-07-01"} and post.auth_shape == "bearer"
    assert post.body == {"tokenId": TOKEN_ID, "name": "password1"}
    assert len(hub.of("GET", "/operations/")) == 1  # 202 + Location polled to the result
    assert result.outs["password"] == hub.token_passwords["password1"]
    assert result.outs["username"] == "mlscore-dev-edge"
    diff = RegistryTokenPasswordProvider().diff("x", props, {**props, "password_name": "password2"})
    assert diff.replaces == ["password_name"]


def test_token_password_with_a_refused_login_says_so(hub, monkeypatch):
    import azure.identity

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: _Credential("expired"))
    props = {"registry_id": REGISTRY_ID, "token_id": TOKEN_ID, "password_name": "password1",
             "endpoint": hub.url}  # fmt: skip
    with pytest.raises(IotHubError, match=r"401.*InvalidAuthenticationToken.*Azure login"):
        RegistryTokenPasswordProvider().create(props)


# --- as the Pulumi engine runs it: serialized, then loaded in another process -----------------
def test_the_serialized_provider_works_in_a_fresh_process(hub):
    from pulumi.dynamic.dynamic import serialize_provider

    blob = serialize_provider(EdgeDeviceProvider())
    script = textwrap.dedent(
        """
        import base64, json, sys, dill
        provider = dill.loads(base64.b64decode(sys.argv[1]))
        result = provider.create(json.loads(sys.argv[2]))
        print(json.dumps({"id": result.id, "cs": result.outs["connection_string"]}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, blob, json.dumps(device_props(hub))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["id"] == f"{HOST}/devices/edge-01"
    assert answer["cs"].startswith(f"HostName={HOST};DeviceId=edge-01;SharedAccessKey=")
