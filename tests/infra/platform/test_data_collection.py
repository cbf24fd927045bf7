"""Model data collection and telemetry access under mocks with the real stack files: the
``modeldata`` container in the workspace's storage, the pull identity's rights (scoped to the
container, and to App Insights), and what each target's environment carries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.contract import (
    ROLE_MONITORING_METRICS_PUBLISHER,
    ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR,
)
from preview import engine, fakes, manifests

CONTAINER = "azure-native:storage:BlobContainer"
ROLE = "azure-native:authorization:RoleAssignment"
COMPONENT = "mlscore:platform:DataCollection"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"


def rid(r: engine.Registered) -> str:
    """A resource's ARM ID as the fake Azure gives it."""
    return r.outputs["id"] if "id" in r.outputs else fakes.arm_id(r.type, r.azure_name)


def own(run: engine.Run, type_: str) -> list[engine.Registered]:
    parents = {r.urn for r in run.resources if r.type == COMPONENT}
    return [r for r in run.of_type(type_) if r.parent in parents]


def pull_identity(run: engine.Run) -> engine.Registered:
    return next(r for r in run.of_type(IDENTITY) if r.name == "pull-identity")


def ml_storage(run: engine.Run) -> engine.Registered:
    return next(
        r for r in run.of_type("azure-native:storage:StorageAccount") if r.name == "storage"
    )


def collection_url(run: engine.Run) -> str:
    return f"https://{ml_storage(run).azure_name}.blob.core.windows.net/modeldata"


# --- the container and its grant ------------------------------------------------------------------
def test_the_container_is_private_and_in_the_workspace_storage_account(each_stack) -> None:
    (container,) = own(each_stack, CONTAINER)
    i = engine.reveal(container.inputs)
    assert i["containerName"] == "modeldata"
    assert i["accountName"] == ml_storage(each_stack).azure_name
    assert i["publicAccess"] == "None"


def test_the_pull_identity_may_write_the_container_and_nothing_wider(each_stack) -> None:
    (container,) = own(each_stack, CONTAINER)
    (grant,) = own(each_stack, ROLE)
    i = engine.reveal(grant.inputs)
    assert i["roleDefinitionId"].endswith(f"/roleDefinitions/{ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR}")
    assert i["principalId"] == pull_identity(each_stack).outputs["principalId"]
    assert i["principalType"] == "ServicePrincipal"
    assert i["scope"] == rid(container)  # the container, not the account
    assert i["scope"] != rid(ml_storage(each_stack))


def test_azure_ml_reads_the_container_through_an_identity_based_datastore(each_stack) -> None:
    (store,) = own(each_stack, "azure-native:machinelearningservices:Datastore")
    i = engine.reveal(store.inputs)
    assert i["name"] == "modeldata"
    assert (
        i["workspaceName"]
        == each_stack.one("azure-native:machinelearningservices:Workspace").azure_name
    )
    p = i["properties"]
    assert p["datastoreType"] == "AzureBlob" and p["containerName"] == "modeldata"
    assert p["accountName"] == ml_storage(each_stack).azure_name
    assert p["credentials"] == {"credentialsType": "None"}  # no key or SAS stored


def test_switched_off_there_is_no_container_and_no_grant(run_stack) -> None:
    run = run_stack("dev", dataCollectionEnabled=False)
    assert run.error is None, run.error
    assert not run.of_type(COMPONENT) and not own(run, CONTAINER)
    assert all(env["DATA_COLLECTION_ENABLED"] == "false" for env in target_envs(run).values())


def test_the_pull_identity_publishes_telemetry_to_app_insights(each_stack) -> None:
    (grant,) = [r for r in each_stack.of_type(ROLE) if r.name == "telemetry-publisher"]
    i = engine.reveal(grant.inputs)
    assert i["roleDefinitionId"].endswith(f"/roleDefinitions/{ROLE_MONITORING_METRICS_PUBLISHER}")
    assert i["principalId"] == pull_identity(each_stack).outputs["principalId"]
    assert i["scope"] == rid(each_stack.one("azure-native:applicationinsights:Component"))


def test_app_insights_keeps_local_auth_for_senders_without_entra(each_stack) -> None:
    component = each_stack.one("azure-native:applicationinsights:Component")
    assert component.inputs["disableLocalAuth"] is False


# --- each target's environment --------------------------------------------------------------------
def _settings(app: engine.Registered) -> dict[str, Any]:
    raw = engine.reveal(app.inputs["siteConfig"]["appSettings"])
    return {s["name"]: s["value"] for s in raw}


def target_envs(run: engine.Run) -> dict[str, dict[str, Any]]:
    """The plain environment each target's scoring host gets, by endpoints output key."""
    envs: dict[str, dict[str, Any]] = {}
    for app in run.of_type("azure-native:web:WebApp"):
        kind = "functions" if app.inputs["kind"].startswith("functionapp") else "app_service"
        envs[kind] = _settings(app)
    for group in run.of_type("azure-native:containerinstance:ContainerGroup"):
        (c,) = engine.reveal(group.inputs["containers"])
        envs["aci"] = {e["name"]: e.get("value") for e in c["environmentVariables"]}
    for ca in run.of_type("azure-native:app:ContainerApp"):
        (c,) = engine.reveal(ca.inputs["template"])["containers"]
        envs["container_apps"] = {e["name"]: e.get("value") for e in c["env"]}
    for doc in manifests.render(run):
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "scoring":
            (c,) = doc["spec"]["template"]["spec"]["containers"]
            envs["aks"] = {e["name"]: e.get("value") for e in c["env"]}
    for deployment in run.of_type("pulumi-python:dynamic/iotedge:Deployment"):
        content = engine.reveal(deployment.inputs["modules_content"])
        module = content["$edgeAgent"]["properties.desired"]["modules"]["scoring"]
        envs["iot_edge"] = {k: v["value"] for k, v in module["env"].items()}
    for slot in run.of_type("azure-native:machinelearningservices:OnlineDeployment"):
        env = engine.reveal(slot.inputs["properties"]["environmentVariables"])
        envs[f"aml_online/{slot.name}"] = env
    return envs


@pytest.fixture(scope="module")
def dev_envs(dev) -> dict[str, dict[str, Any]]:
    return target_envs(dev)


@pytest.fixture(scope="module")
def prod_envs(prod) -> dict[str, dict[str, Any]]:
    return target_envs(prod)


IDENTITY_TARGETS = ("app_service", "functions", "aci", "container_apps", "aks")


def test_every_target_is_found(dev_envs, prod_envs) -> None:
    assert set(dev_envs) == {*IDENTITY_TARGETS, "iot_edge"}
    assert set(prod_envs) == {
        "app_service",
        "functions",
        "container_apps",
        "aks",
        "iot_edge",
        "aml_online/blue",
        "aml_online/green",
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_container_targets_write_to_the_container_as_the_pull_identity(
    stack, dev, prod, dev_envs, prod_envs
) -> None:
    run, envs = (dev, dev_envs) if stack == "dev" else (prod, prod_envs)
    client_id = pull_identity(run).outputs["clientId"]
    rate = "1" if stack == "dev" else "0.25"
    for target in IDENTITY_TARGETS:
        if target not in envs:  # no ACI in prod
            continue
        env = envs[target]
        assert env["DATA_COLLECTION_ENABLED"] == "true", target
        assert env["DATA_COLLECTION_BLOB_URL"] == collection_url(run), target
        assert env["DATA_COLLECTION_CONTAINER"] == "modeldata", target
        assert env["DATA_COLLECTION_SAMPLING_RATE"] == rate, target
        assert env["AZURE_CLIENT_ID"] == client_id, target
        assert env["SCORING_ENDPOINT_NAME"] == target and env["OTEL_SERVICE_NAME"] == target
        assert env["SCORING_DEPLOYMENT_NAME"] == "diabetes-ridge-1", target
        assert env["TELEMETRY_PAYLOADS"] == "false", target
        auth = env["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        assert auth == f"ClientId={client_id};Authorization=AAD", target


def test_every_endpoint_name_is_its_key_in_the_endpoints_output(prod, prod_envs) -> None:
    named = {env["SCORING_ENDPOINT_NAME"] for env in prod_envs.values()}
    assert named == {"app_service", "functions", "container_apps", "aks", "iot_edge", "aml_online"}
    assert {"app_service", "functions", "aks", "aml_online"} <= set(prod.outputs["endpoints"])


def test_the_edge_device_collects_nothing_it_could_not_sign_in_for(dev_envs) -> None:
    env = dev_envs["iot_edge"]
    assert env["DATA_COLLECTION_ENABLED"] == "false"
    assert not {"DATA_COLLECTION_BLOB_URL", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"} & set(env)
    assert env["SCORING_ENDPOINT_NAME"] == "iot_edge"


def test_azure_ml_deployments_leave_collection_to_azure_ml(prod_envs) -> None:
    for slot in ("blue", "green"):
        env = prod_envs[f"aml_online/{slot}"]
        assert env["DATA_COLLECTION_ENABLED"] == "false"
        assert "DATA_COLLECTION_BLOB_URL" not in env and "AZURE_CLIENT_ID" not in env
        assert env["SCORING_ENDPOINT_NAME"] == "aml_online"
        assert env["SCORING_DEPLOYMENT_NAME"] == slot


def test_telemetry_payloads_reach_every_target(run_stack) -> None:
    run = run_stack("dev", telemetryPayloads=True)
    assert run.error is None, run.error
    envs = target_envs(run)
    assert {t: e["TELEMETRY_PAYLOADS"] for t, e in envs.items()} == dict.fromkeys(envs, "true")


def test_no_secret_is_added_to_a_plain_environment(prod_envs) -> None:
    for target, env in prod_envs.items():
        added = {k: v for k, v in env.items() if k.startswith(("DATA_COLLECTION", "SCORING_"))}
        text = json.dumps(added)
        assert "AccountKey" not in text and "sig=" not in text, target
