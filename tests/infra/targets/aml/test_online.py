"""The Azure ML managed online endpoint under mocks with the real stack files: blue/green
deployments of the scoring image, traffic and mirroring, the Redis access of the endpoint's
identity, the contract output; the prod preview of all Azure ML resources; the settings rules;
the ARM traffic patch against a fake ARM."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.providers import arm_patch
from preview import engine, fakes
from tests.infra.targets.aml.helpers import DYNAMIC, ML, arm_id, child, inputs, under


@pytest.fixture(scope="module")
def prod_preview(run_stack) -> engine.Run:
    run = run_stack("prod", preview=True)
    assert run.error is None, run.error
    return run


# --- what the prod preview must show --------------------------------------------------------------
def test_prod_preview_shows_model_version_endpoints_traffic_and_scale_to_zero(prod_preview) -> None:
    run = prod_preview
    (version,) = run.of_type(f"{ML}:ModelVersion")
    assert inputs(version)["version"] == "1" and inputs(version)["name"] == "diabetes-ridge"
    assert len(run.of_type(f"{ML}:OnlineEndpoint")) == 1
    slots = sorted(inputs(d)["deploymentName"] for d in run.of_type(f"{ML}:OnlineDeployment"))
    assert slots == ["blue", "green"]
    traffic = child(run, "mlscore:target:AmlOnline", DYNAMIC, "traffic")
    assert inputs(traffic)["values"]["traffic"] == {"blue": 90, "green": 10}
    (compute,) = run.of_type(f"{ML}:Compute")
    assert inputs(compute)["properties"]["properties"]["scaleSettings"]["minNodeCount"] == 0
    assert len(run.of_type(f"{ML}:BatchEndpoint")) == 1
    assert len(run.of_type(f"{ML}:BatchDeployment")) == 1
    assert run.outputs["model"]["version"] == "1"
    # what Azure computes stays unknown in a preview, as in `pulumi preview`
    assert run.outputs["endpoints"]["aml_online"]["scoring_uri"] is engine.COMPUTED


def test_prod_preview_cli_prints_the_azure_ml_resources(prod_preview) -> None:
    from preview.__main__ import render

    text = render(prod_preview)
    for needle in (
        "machinelearningservices:ModelVersion",
        "machinelearningservices:OnlineEndpoint",
        "machinelearningservices:OnlineDeployment  blue",
        "machinelearningservices:OnlineDeployment  green",
        "values.traffic.blue: 90",
        "values.traffic.green: 10",
        "machinelearningservices:Compute",
        "minNodeCount: 0",
        "machinelearningservices:BatchEndpoint",
        "machinelearningservices:BatchDeployment",
    ):
        assert needle in text, needle


# --- online endpoint -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def online(prod) -> dict[str, engine.Registered]:
    t = "mlscore:target:AmlOnline"
    return {
        "endpoint": child(prod, t, f"{ML}:OnlineEndpoint", "endpoint"),
        "env": child(prod, t, f"{ML}:EnvironmentContainer", "environment"),
        "env_version": child(prod, t, f"{ML}:EnvironmentVersion", "environment-version"),
        "blue": child(prod, t, f"{ML}:OnlineDeployment", "blue"),
        "green": child(prod, t, f"{ML}:OnlineDeployment", "green"),
        "traffic": child(prod, t, DYNAMIC, "traffic"),
    }


def test_online_endpoint_uses_key_auth_and_a_system_identity(prod, online) -> None:
    i = inputs(online["endpoint"])
    assert i["properties"]["authMode"] == "Key"
    assert "kind" not in i  # portal-only metadata, left unset
    assert i["identity"] == {"type": "SystemAssigned"}
    assert i["properties"]["publicNetworkAccess"] == "Enabled"
    assert i["workspaceName"] == prod.outputs["workspace"]["name"]
    name = i["endpointName"]
    assert 3 <= len(name) <= 32 and name.startswith("mlscore-prod-score")
    # traffic is not declared on the endpoint (it would name deployments that do not exist yet)
    assert "traffic" not in i["properties"] and "mirrorTraffic" not in i["properties"]


def test_environment_is_the_scoring_image_with_its_routes_on_the_scoring_port(prod, online) -> None:
    assert inputs(online["env"])["name"] == "mlscore-scoring"
    i = inputs(online["env_version"])
    assert i["name"] == "mlscore-scoring"
    assert i["properties"]["image"] == prod.outputs["image"]
    digest = prod.outputs["image"].rsplit("sha256:", 1)[1]
    assert i["version"] == digest[:16]
    assert i["properties"]["osType"] == "Linux"
    assert i["properties"]["inferenceConfig"] == {
        "livenessRoute": {"path": "/", "port": 5001},
        "readinessRoute": {"path": "/ready", "port": 5001},
        "scoringRoute": {"path": "/score", "port": 5001},
    }


@pytest.mark.parametrize("slot", ["blue", "green"])
def test_deployments_run_the_image_and_the_registered_model(prod, online, slot) -> None:
    d = inputs(online[slot])
    p = d["properties"]
    (version,) = prod.of_type(f"{ML}:ModelVersion")
    assert d["deploymentName"] == slot
    assert d["endpointName"] == inputs(online["endpoint"])["endpointName"]
    assert d["sku"] == {"name": "Default", "capacity": 2}  # onlineInstanceCount in prod
    assert p["endpointComputeType"] == "Managed"
    assert p["instanceType"] == "Standard_DS3_v2"
    assert p["model"] == arm_id(prod, version)
    assert p["environmentId"] == arm_id(prod, online["env_version"])
    assert p["appInsightsEnabled"] is True
    assert p["scaleSettings"] == {"scaleType": "Default"}
    assert p["requestSettings"]["requestTimeout"] == "PT60S"  # scoringTimeoutMs 60000
    assert p["requestSettings"]["maxConcurrentRequestsPerInstance"] == 2  # scoringWorkers
    # maxQueueWait is deprecated for managed online endpoints: not sent
    assert set(p["requestSettings"]) == {"requestTimeout", "maxConcurrentRequestsPerInstance"}
    for probe in (p["livenessProbe"], p["readinessProbe"]):
        assert probe["timeout"] == "PT2S" and probe["failureThreshold"] == 30
    env = p["environmentVariables"]
    assert env["AZUREML_SERVER_PORT"] == "5001"
    assert env["MODEL_NAME"] == "diabetes-ridge" and env["MODEL_VERSION"] == "1"
    # Azure ML sets the model folder; the deployments run as the endpoint's identity, which
    # signs in to Redis with Entra ID: no pull identity and no key in the plain environment
    for key in ("AZUREML_MODEL_DIR", "AZURE_CLIENT_ID", "REDIS_PASSWORD"):
        assert key not in env
    assert not any("KEY" in k or "PASSWORD" in k for k in env)
    redis = prod.one("azure-native:redisenterprise:RedisEnterprise").outputs
    assert env["REDIS_HOST"] == redis["hostName"] and env["REDIS_PORT"] == "10000"
    assert env["REDIS_USE_ENTRA_ID"] == "true"
    assert env["REDIS_USERNAME"] == online["endpoint"].outputs["identity"]["principalId"]


def test_environment_versions_stay_in_azure_when_a_new_build_replaces_them(online) -> None:
    assert online["env_version"].retain_on_delete is True
    assert not any(r.retain_on_delete for k, r in online.items() if k != "env_version")


def blue_pin(run: engine.Run, digest: str = "ab" * 32) -> str:
    registry = run.outputs["registry"]["login_server"]
    return f"{registry}/scoring@sha256:{digest}"


def test_blue_keeps_a_pinned_build_while_green_runs_the_current_one(prod, run_stack) -> None:
    pinned = blue_pin(prod)
    run = run_stack("prod", onlineBlueImage=pinned)
    assert run.error is None, run.error
    t = "mlscore:target:AmlOnline"
    env = child(run, t, f"{ML}:EnvironmentContainer", "environment")
    current = child(run, t, f"{ML}:EnvironmentVersion", "environment-version")
    blue = inputs(child(run, t, f"{ML}:OnlineDeployment", "blue"))["properties"]
    green = inputs(child(run, t, f"{ML}:OnlineDeployment", "green"))["properties"]
    assert green["environmentId"] == arm_id(run, current)
    assert inputs(current)["properties"]["image"] == run.outputs["image"] != pinned
    # blue names the pinned build's version, kept since that build was current
    assert blue["environmentId"] == f"{arm_id(run, env)}/versions/{'ab' * 8}"
    assert pinned in blue["description"]
    versions = [r for r in under(run, t) if r.type == f"{ML}:EnvironmentVersion"]
    assert versions == [current]  # no second resource for the pinned build


# --- model data collection: Azure ML's own data collector ---------------------------------------
@pytest.mark.parametrize("slot", ["blue", "green"])
def test_deployments_collect_with_azure_mls_data_collector(online, slot) -> None:
    p = inputs(online[slot])["properties"]
    collector = p["dataCollector"]
    assert collector["rollingRate"] == "Hour"  # modelDataCollector/.../yyyy/MM/dd/HH
    # payload logging (Azure ML captures the HTTP bodies) and custom logging (azureml-ai-monitoring)
    assert set(collector["collections"]) == {"request", "response", "model_inputs", "model_outputs"}
    for name, collection in collector["collections"].items():
        assert collection == {"dataCollectionMode": "Enabled", "samplingRate": 0.25}, name
    env = p["environmentVariables"]
    # the host's own blob writer stays off: the deployments hold no grant on `modeldata`
    assert env["DATA_COLLECTION_ENABLED"] == "false"
    assert "DATA_COLLECTION_BLOB_URL" not in env
    assert env["SCORING_ENDPOINT_NAME"] == "aml_online" and env["SCORING_DEPLOYMENT_NAME"] == slot


def test_no_data_collector_when_the_stack_collects_nothing(run_stack) -> None:
    # prod's sampling rate back to the default: with collection off it has no effect (refused)
    run = run_stack("prod", dataCollectionEnabled=False, dataCollectionSamplingRate="1.0")
    assert run.error is None, run.error
    for d in run.of_type(f"{ML}:OnlineDeployment"):
        assert "dataCollector" not in inputs(d)["properties"], d.name


def test_the_sampling_rate_is_the_stacks(run_stack) -> None:
    run = run_stack("prod", dataCollectionSamplingRate="0.05")
    assert run.error is None, run.error
    (blue,) = [d for d in run.of_type(f"{ML}:OnlineDeployment") if d.name == "blue"]
    rates = {
        c["samplingRate"]
        for c in inputs(blue)["properties"]["dataCollector"]["collections"].values()
    }
    assert rates == {0.05}


POLICY = "azure-native:redisenterprise:AccessPolicyAssignment"


def test_the_endpoint_identity_gets_redis_access_without_holding_up_the_deployments(
    prod, online
) -> None:
    """The deployments (10+ minutes each) start without waiting for the cache, its database or
    the access policy: the scoring host serves without the cache until it can sign in."""
    t = "mlscore:target:AmlOnline"
    access = child(prod, t, POLICY, "redis-endpoint-access")
    principal = online["endpoint"].outputs["identity"]["principalId"]
    i = inputs(access)
    assert i["user"] == {"objectId": principal} and i["accessPolicyName"] == "default"
    cluster = prod.one("azure-native:redisenterprise:RedisEnterprise")
    database = prod.one("azure-native:redisenterprise:Database")
    assert i["clusterName"] == cluster.azure_name and i["databaseName"] == "default"
    cache_side = {access.urn, cluster.urn, database.urn} | {r.urn for r in prod.of_type(POLICY)}
    for slot in ("blue", "green"):
        assert not cache_side & set(online[slot].dependencies), slot
    out = engine.to_json(prod.outputs, show_secrets=True)["endpoints"]["aml_online"]
    assert out["principal_id"] == principal


def test_green_is_created_after_blue(online) -> None:
    """An endpoint takes one deployment at a time: "Cannot create a deployment in endpoint ...
    because it is in Updating provisioning state" (Azure/azure-sdk-for-net#36961)."""
    assert online["blue"].urn in online["green"].dependencies
    assert online["green"].urn not in online["blue"].dependencies


def test_online_endpoint_on_an_existing_redis_only_names_its_principal(run_stack) -> None:
    run = run_stack("prod", redisHost="cache.example.redis.azure.net", redisPort=10000)
    assert run.error is None, run.error
    assert (
        run.of_type(POLICY) == [] and run.of_type("azure-native:redis:AccessPolicyAssignment") == []
    )
    blue = inputs(child(run, "mlscore:target:AmlOnline", f"{ML}:OnlineDeployment", "blue"))
    env = blue["properties"]["environmentVariables"]
    assert env["REDIS_HOST"] == "cache.example.redis.azure.net"
    assert env["REDIS_USE_ENTRA_ID"] == "true"
    out = engine.to_json(run.outputs, show_secrets=True)["endpoints"]["aml_online"]
    assert env["REDIS_USERNAME"] == out["principal_id"]  # what the cache's owner grants


def test_traffic_and_mirror_are_set_after_both_deployments(prod, online) -> None:
    t = inputs(online["traffic"])
    assert t["resource_id"] == arm_id(prod, online["endpoint"])
    assert t["api_version"] == "2025-12-01"
    assert t["values"] == {"traffic": {"blue": 90, "green": 10}, "mirrorTraffic": {}}
    assert t["on_delete"] == {"traffic": {"blue": 0, "green": 0}, "mirrorTraffic": {}}
    assert arm_id(prod, online["blue"]) in t["after"]
    assert arm_id(prod, online["green"]) in t["after"]
    assert {online["blue"].urn, online["green"].urn} <= set(online["traffic"].dependencies)


def test_mirror_to_green_while_blue_takes_all_live_traffic(run_stack) -> None:
    run = run_stack("prod", onlineTrafficBlue=100, onlineTrafficGreen=0, onlineMirrorGreen=20)
    assert run.error is None, run.error
    t = inputs(child(run, "mlscore:target:AmlOnline", DYNAMIC, "traffic"))
    assert t["values"] == {"traffic": {"blue": 100, "green": 0}, "mirrorTraffic": {"green": 20}}
    out = run.outputs["endpoints"]["aml_online"]
    assert out["traffic"] == {"blue": 100, "green": 0} and out["mirror_traffic"] == {"green": 20}


def test_promoting_green_to_100_percent_is_a_config_change(run_stack) -> None:
    run = run_stack("prod", onlineTrafficBlue=0, onlineTrafficGreen=100)
    assert run.error is None, run.error
    t = inputs(child(run, "mlscore:target:AmlOnline", DYNAMIC, "traffic"))
    assert t["values"]["traffic"] == {"blue": 0, "green": 100}
    assert len(run.of_type(f"{ML}:OnlineDeployment")) == 2  # blue stays until removed by hand


def test_online_endpoint_contract_output_with_secret_keys(prod, online) -> None:
    out = prod.outputs["endpoints"]["aml_online"]
    name = inputs(online["endpoint"])["endpointName"]
    host = f"https://{name}.westeurope.inference.ml.azure.com"
    assert out["scoring_uri"] == f"{host}/score"
    assert out["swagger_uri"] == f"{host}/swagger.json"
    assert out["health_uri"] is None
    assert out["auth"]["scheme"] == "aml-key"
    assert out["auth"]["header"] == "Authorization: Bearer <key>"
    assert isinstance(out["auth"]["key"], engine.Secret)
    assert isinstance(out["secondary_key"], engine.Secret)
    assert engine.reveal(out["auth"]["key"]) == fakes.fake_secret(f"aml-primary:{name}", 32)
    assert engine.reveal(out["secondary_key"]) == fakes.fake_secret(f"aml-secondary:{name}", 32)
    assert out["traffic"] == {"blue": 90, "green": 10}
    assert out["deployments"]["green"] == {"instance_type": "Standard_DS3_v2", "instance_count": 2}
    calls = [a for t, a in prod.calls if t == f"{ML}:listOnlineEndpointKeys"]
    assert calls and all(a["endpointName"] == name for a in calls)
    assert all(a["workspaceName"] == prod.outputs["workspace"]["name"] for a in calls)


def test_online_endpoint_off_leaves_nothing(dev) -> None:
    assert "aml_online" not in dev.outputs["endpoints"]
    assert [r for r in dev.resources if r.type == "mlscore:target:AmlOnline"] == []
    for t in ("OnlineEndpoint", "OnlineDeployment"):
        assert dev.of_type(f"{ML}:{t}") == []
    assert not [c for c in dev.calls if c[0] == f"{ML}:listOnlineEndpointKeys"]


# --- validation ----------------------------------------------------------------------------------
def problems(run_stack, **overrides: Any) -> list[str]:
    run = run_stack("prod", preview=True, **overrides)
    return [str(p) for p in run.problems]


@pytest.mark.parametrize(
    "image",
    [
        "scoring:latest",  # a tag, not a digest
        "other.azurecr.io/scoring@sha256:" + "ab" * 32,  # another registry
        "{registry}/scoring-functions@sha256:" + "ab" * 32,  # another repository
        "{registry}/scoring@sha256:abc",  # not a whole digest
    ],
)
def test_blue_can_only_keep_a_build_of_this_stack_by_digest(prod, run_stack, image) -> None:
    image = image.format(registry=prod.outputs["registry"]["login_server"])
    found = [p for p in problems(run_stack, onlineBlueImage=image) if "onlineBlueImage" in p]
    assert len(found) == 1, found
    assert "by its digest" in found[0] and "pulumi stack output image" in found[0]


def test_traffic_80_30_is_refused_naming_both_keys(run_stack) -> None:
    found = problems(run_stack, onlineTrafficBlue=80, onlineTrafficGreen=30)
    (p,) = [p for p in found if "add up to 100" in p]
    assert "mlscore:onlineTrafficBlue" in p and "mlscore:onlineTrafficGreen" in p
    assert "80 + 30 = 110" in p


@pytest.mark.parametrize(
    ("overrides", "keys", "words"),
    [
        ({"onlineMirrorGreen": 60, "onlineTrafficGreen": 0, "onlineTrafficBlue": 100},
         ("onlineMirrorGreen",), "between 0 and 50"),
        ({"onlineMirrorGreen": 10}, ("onlineMirrorGreen", "onlineTrafficGreen"), "no live traffic"),
        ({"onlineInstanceType": "Standard_D4s_v5"}, ("onlineInstanceType",), "managed online"),
        ({"onlineInstanceType": "Standard_X9"}, ("onlineInstanceType",), "unknown VM size"),
        ({"onlineInstanceCount": 0}, ("onlineInstanceCount",), "between 1 and 100"),
        ({"onlineInstanceCount": 21}, ("onlineInstanceCount",), "quota"),
        ({"batchMaxNodes": 0}, ("batchMaxNodes",), "between 1 and 1000"),
        ({"batchInstanceCount": 9}, ("batchInstanceCount", "batchMaxNodes"), "more nodes"),
        ({"modelPath": "aml/model/nope"}, ("modelPath",), "model files"),
    ],
)  # fmt: skip
def test_bad_azure_ml_config_is_refused_with_the_key(run_stack, overrides, keys, words) -> None:
    found = [p for p in problems(run_stack, **overrides) if words in p]
    assert found, problems(run_stack, **overrides)
    assert all(f"mlscore:{k}" in found[0] for k in keys)
    assert "fix:" in found[0]


@pytest.mark.parametrize(
    "overrides",
    [
        {"onlineTrafficBlue": 100, "onlineTrafficGreen": 0, "onlineMirrorGreen": 50},
        {"onlineTrafficBlue": 0, "onlineTrafficGreen": 100},
        {"onlineInstanceType": "Standard_F4s_v2", "onlineInstanceCount": 20},
        {"batchInstanceCount": 8},
    ],
)
def test_good_azure_ml_config_is_accepted(run_stack, overrides) -> None:
    assert problems(run_stack, **overrides) == []


# --- the traffic patch (GET, set, PUT, wait) against a fake ARM ----------------------------------
class FakeResponse:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status_code = status
        self._body = body
        self.headers = headers or {}
        self.content = b"" if body is None else json.dumps(body).encode()
        self.text = self.content.decode()

    def json(self) -> Any:
        return self._body


class FakeArm:
    def __init__(self, final: str = "Succeeded", get_status: int = 200):
        self.final = final
        self.get_status = get_status
        self.put_body: dict[str, Any] | None = None
        self.polls = 0

    def get(self, url: str, headers: dict[str, str], timeout: float) -> FakeResponse:
        assert headers["Authorization"] == "Bearer t0ken"
        if "operations" in url:
            self.polls += 1
            status = "InProgress" if self.polls == 1 else self.final
            return FakeResponse(200, {"status": status}, {"Retry-After": "0"})
        return FakeResponse(
            self.get_status,
            {
                "id": "/x",
                "name": "ep",
                "location": "westeurope",
                "identity": {"type": "SystemAssigned"},
                "tags": {"a": "b"},
                "kind": "Managed",
                "properties": {
                    "authMode": "Key",
                    "traffic": {"blue": 100},
                    "provisioningState": "Succeeded",
                    "scoringUri": "https://ep/score",
                    "swaggerUri": "https://ep/swagger.json",
                },
            },
        )

    def put(self, url: str, json: dict[str, Any], headers: dict[str, str], timeout: float):
        assert url.startswith(arm_patch.ARM + "/subs/ep?api-version=2025-12-01")
        self.put_body = json
        return FakeResponse(202, {}, {"Azure-AsyncOperation": arm_patch.ARM + "/operations/1"})


def test_patch_keeps_the_endpoint_and_sets_only_the_given_properties() -> None:
    arm = FakeArm()
    values = {"traffic": {"blue": 90, "green": 10}, "mirrorTraffic": {}}
    arm_patch.apply_patch("/subs/ep", "2025-12-01", values, session=arm, token="t0ken")
    assert arm.put_body == {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned"},
        "tags": {"a": "b"},
        "kind": "Managed",
        "properties": {
            "authMode": "Key",
            "traffic": {"blue": 90, "green": 10},
            "mirrorTraffic": {},
        },
    }
    assert arm.polls == 2  # waited through InProgress until Succeeded


def test_patch_reports_a_failed_operation_and_a_missing_endpoint() -> None:
    with pytest.raises(arm_patch.ArmPatchError, match="Failed"):
        arm_patch.apply_patch(
            "/subs/ep", "2025-12-01", {"traffic": {}}, session=FakeArm("Failed"), token="t0ken"
        )
    with pytest.raises(arm_patch.ArmPatchError, match="GET /subs/ep: 404"):
        arm_patch.apply_patch(
            "/subs/ep", "2025-12-01", {}, session=FakeArm(get_status=404), token="t0ken"
        )
