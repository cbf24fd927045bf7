"""Functions target under mocks with the real stack files: every property, the wiring, the
secrets, and switching it off."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from components import PROJECT_ROOT
from components import settings as cfg
from components.contract import ROLE_ACR_PULL
from components.targets.functions import target as fn
from preview import engine, fakes

ROOT = PROJECT_ROOT
COMPONENT = "mlscore:target:Functions"
ROLE = "azure-native:authorization:RoleAssignment"
STORAGE = "azure-native:storage:StorageAccount"
WEBAPP = "azure-native:web:WebApp"
PLAN = "azure-native:web:AppServicePlan"
NAMESPACE = "azure-native:servicebus:Namespace"
QUEUE = "azure-native:servicebus:Queue"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
DOCKER_IMAGE = "docker:index/image:Image"
PASSWORD = "random:index/randomPassword:RandomPassword"


# --- helpers ----------------------------------------------------------------------------------
def mine(run: engine.Run, type_: str, name: str | None = None) -> engine.Registered:
    """The one resource of ``type_`` (named ``name``) inside the Functions component."""
    urn = run.one(COMPONENT).urn
    found = [r for r in run.children(urn) if r.type == type_ and (name is None or r.name == name)]
    assert len(found) == 1, (type_, name, [r.name for r in run.children(urn)])
    return found[0]


def app_settings(run: engine.Run) -> dict[str, Any]:
    pairs = mine(run, WEBAPP).inputs["siteConfig"]["appSettings"]
    return {p["name"]: p["value"] for p in pairs}


def arm(run: engine.Run, type_: str, name: str) -> str:
    return fakes.arm_id(type_, mine(run, type_, name).azure_name)


def pull_identity(run: engine.Run) -> engine.Registered:
    return run.one(IDENTITY, "pull-identity")


def settings_of(stack: str, **overrides: Any) -> cfg.Settings:
    config, _ = engine.stack_config(stack, overrides)
    values = {k.split(":", 1)[1]: v for k, v in config.items()}
    return cfg.load(values.get, project="mlscore", stack=stack)


def secret_values(run: engine.Run) -> set[str]:
    """The secret values of a run: random keys, every Key Vault secret's value, the App
    Insights connection string and key, and the function app's host keys."""
    found = {engine.reveal(r.outputs["result"]) for r in run.of_type(PASSWORD)}
    for secret in run.of_type("azure-native:keyvault:Secret"):
        found.add(engine.reveal(secret.inputs["properties"])["value"])
    insights = run.one("azure-native:applicationinsights:Component").outputs
    found |= {insights["connectionString"], insights["instrumentationKey"]}
    app = mine(run, WEBAPP).azure_name
    found |= {fakes.fake_secret(f"function:{app}"), fakes.fake_secret(f"master:{app}")}
    return {v for v in found if isinstance(v, str) and v}


# --- plan -------------------------------------------------------------------------------------
def test_plan_is_linux_elastic_premium_sized_per_stack(dev, prod) -> None:
    # prod is zone redundant: two instances, one per zone it spreads over; dev one, one zone
    for run, sku, burst, count in ((dev, "EP1", 3, 1), (prod, "EP2", 10, 2)):
        plan = mine(run, PLAN).inputs
        assert plan["kind"] == "elastic" and plan["reserved"] is True
        sku_args = {"name": sku, "tier": "ElasticPremium", "family": "EP", "capacity": count}
        assert plan["sku"] == sku_args
        assert plan.get("zoneRedundant", False) is (run is prod)
        assert plan["maximumElasticWorkerCount"] == burst
        site = mine(run, WEBAPP).inputs["siteConfig"]
        assert site["functionAppScaleLimit"] == burst
        assert site["minimumElasticInstanceCount"] == count
        assert site["alwaysOn"] is False


def test_dedicated_sku_gives_a_linux_premium_v3_plan_with_always_on(run_stack) -> None:
    run = run_stack("dev", functionsSku="P1v3")
    assert run.error is None, run.error
    plan = mine(run, PLAN).inputs
    assert plan["kind"] == "linux" and plan["reserved"] is True
    assert plan["sku"]["tier"] == "PremiumV3" and plan["sku"]["name"] == "P1v3"
    assert "maximumElasticWorkerCount" not in plan
    site = mine(run, WEBAPP).inputs["siteConfig"]
    assert site["alwaysOn"] is True
    assert "functionAppScaleLimit" not in site


# --- function app -----------------------------------------------------------------------------
def test_function_app_runs_the_function_image_pulled_by_the_pull_identity(each_stack) -> None:
    app = mine(each_stack, WEBAPP).inputs
    s = settings_of(each_stack.stack)
    assert app["name"] == s.naming.function_app()
    assert app["kind"] == "functionapp,linux,container" and app["reserved"] is True
    assert app["serverFarmId"] == arm(each_stack, PLAN, "plan")
    image = each_stack.one(DOCKER_IMAGE, "functions-image")
    site = app["siteConfig"]
    assert site["linuxFxVersion"] == "DOCKER|" + image.outputs["repoDigest"]
    assert "/scoring-functions@sha256:" in site["linuxFxVersion"]
    pull = pull_identity(each_stack).outputs
    assert site["acrUseManagedIdentityCreds"] is True
    assert site["acrUserManagedIdentityID"] == pull["clientId"]
    runtime = fakes.arm_id(IDENTITY, mine(each_stack, IDENTITY).azure_name)
    pull_id = fakes.arm_id(IDENTITY, pull_identity(each_stack).azure_name)
    assert app["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": [pull_id, runtime],
    }
    assert app["keyVaultReferenceIdentity"] == pull_id


def test_function_app_is_https_only_tls12_without_ftp(each_stack) -> None:
    app = mine(each_stack, WEBAPP).inputs
    site = app["siteConfig"]
    assert app["httpsOnly"] is True
    assert site["minTlsVersion"] == "1.2" and site["scmMinTlsVersion"] == "1.2"
    assert site["ftpsState"] == "Disabled"
    assert site["healthCheckPath"] == fn.HEALTH_PATH


def test_function_image_is_built_from_functions_dockerfile_next_to_the_scoring_image(
    each_stack,
) -> None:
    # Two ScoringImage components: both images must exist (a shared child name would give them
    # one URN, which Pulumi refuses).
    images = {r.name: r.inputs for r in each_stack.of_type(DOCKER_IMAGE)}
    assert set(images) == {"scoring-image", "functions-image"}
    login = each_stack.one("azure-native:containerregistry:Registry").outputs["loginServer"]
    build = images["functions-image"]["build"]
    digest = build["args"]["CONTEXT_DIGEST"][:12]
    name = f"{login}/scoring-functions:diabetes-ridge-1-{digest}"
    assert images["functions-image"]["imageName"] == name
    # built from the context the program assembles, with scoring/functions.Dockerfile in it
    assert (
        Path(build["dockerfile"]).read_bytes()
        == (ROOT / "scoring" / "functions.Dockerfile").read_bytes()
    )
    assert build["context"] == str(Path(build["dockerfile"]).parent)
    assert images["scoring-image"]["imageName"].startswith(f"{login}/scoring:diabetes-ridge-1-")


def test_runtime_settings_and_no_content_share(each_stack) -> None:
    env = app_settings(each_stack)
    assert env["FUNCTIONS_EXTENSION_VERSION"] == "~4"
    assert env["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert env["WEBSITES_ENABLE_APP_SERVICE_STORAGE"] == "false"
    assert env["WEBSITES_PORT"] == "8080"  # scoring/functions.Dockerfile: non-root on 8080
    # The code is in the image: no Azure Files share, so no setting that needs an account key.
    for absent in (
        "AzureWebJobsStorage",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "DOCKER_REGISTRY_SERVER_PASSWORD",
    ):
        assert absent not in env
    # The scoring core's plain settings, shared with every target.
    assert env["MODEL_NAME"] == "diabetes-ridge" and env["MODEL_VERSION"] == "1"


def test_identity_based_connections_point_at_the_right_resources(each_stack) -> None:
    env = app_settings(each_stack)
    runtime = mine(each_stack, IDENTITY).outputs["clientId"]
    host = mine(each_stack, STORAGE, "host-storage").azure_name
    trigger = mine(each_stack, STORAGE, "trigger-storage").azure_name
    namespace = mine(each_stack, NAMESPACE).azure_name
    s = settings_of(each_stack.stack)
    assert env["AzureWebJobsStorage__accountName"] == host == s.naming.storage("fnh")
    assert trigger == s.naming.storage("fnd")
    assert env["TRIGGER_STORAGE__blobServiceUri"] == f"https://{trigger}.blob.core.windows.net/"
    assert env["TRIGGER_STORAGE__queueServiceUri"] == f"https://{trigger}.queue.core.windows.net/"
    assert env["SERVICEBUS__fullyQualifiedNamespace"] == f"{namespace}.servicebus.windows.net"
    assert env["SERVICEBUS_QUEUE_NAME"] == s.functions.queue_name
    assert env["OUTPUT_CONTAINER"] == "output"
    for prefix in ("AzureWebJobsStorage", "TRIGGER_STORAGE", "SERVICEBUS"):
        assert env[f"{prefix}__credential"] == "managedidentity"
        assert env[f"{prefix}__clientId"] == runtime
    # The scoring core itself runs as the pull identity (Redis with Entra ID, Key Vault).
    assert env["AZURE_CLIENT_ID"] == pull_identity(each_stack).outputs["clientId"]


def test_connection_names_match_the_function_app() -> None:
    """The settings above are only right if the function app asks for these names."""
    source = (ROOT / "scoring" / "functions" / "function_app.py").read_text()
    assert re.search(rf'STORAGE_CONNECTION = "{fn.TRIGGER_CONNECTION}"', source)
    assert 'path="input/{blobname}.json"' in source
    assert f'connection="{fn.SERVICE_BUS_CONNECTION}"' in source
    assert 'queue_name="%SERVICEBUS_QUEUE_NAME%"' in source
    assert 'route="score"' in source
    assert 'OUTPUT_CONTAINER_SETTING = "OUTPUT_CONTAINER"' in source
    host = json.loads((ROOT / "scoring" / "functions" / "host.json").read_text())
    assert "/" + host["extensions"]["http"]["routePrefix"] == fn.ROUTE_PREFIX


# --- Redis --------------------------------------------------------------------------------------
def test_redis_host_and_port_plain_and_entra_id_instead_of_a_key(each_stack) -> None:
    env = app_settings(each_stack)
    redis = each_stack.one("azure-native:redisenterprise:RedisEnterprise").outputs
    assert env["REDIS_HOST"] == redis["hostName"]
    assert env["REDIS_PORT"] == "10000" and env["REDIS_SSL"] == "true"
    assert env["REDIS_USE_ENTRA_ID"] == "true"
    assert env["REDIS_USERNAME"] == pull_identity(each_stack).outputs["principalId"]
    assert "REDIS_PASSWORD" not in env


def test_existing_redis_without_a_key_is_reached_with_entra_id(run_stack) -> None:
    run = run_stack("dev", redisHost="cache.example.redis.azure.net", redisPort=10000)
    assert run.error is None, run.error
    env = app_settings(run)
    assert env["REDIS_HOST"] == "cache.example.redis.azure.net" and env["REDIS_PORT"] == "10000"
    assert env["REDIS_USE_ENTRA_ID"] == "true"
    assert env["REDIS_USERNAME"] == pull_identity(run).outputs["principalId"]
    assert "REDIS_PASSWORD" not in env


def test_no_redis_no_redis_settings(run_stack) -> None:
    run = run_stack("dev", redisEnabled=False)
    assert run.error is None, run.error
    assert not [k for k in app_settings(run) if k.startswith("REDIS_")]


# --- secrets ----------------------------------------------------------------------------------
def test_no_plaintext_secret_in_app_settings_or_outputs(each_stack) -> None:
    secrets = secret_values(each_stack)
    assert len(secrets) >= 6  # scoring keys, Redis key, App Insights, host keys
    key = engine.reveal(each_stack.outputs["endpoints"]["functions"]["auth"]["key"])
    assert key in secrets
    env = app_settings(each_stack)
    for name, value in env.items():
        # Settings are plain strings (a reference is not a secret), so the state shows them...
        assert isinstance(value, str), name
        # ...and none holds a secret value or a part of one.
        for secret in secrets:
            assert secret not in value, name
        if re.search(r"PASSWORD|KEY|SECRET|CONNECTION_STRING", name, re.IGNORECASE):
            assert value.startswith("@Microsoft.KeyVault(SecretUri=https://"), name
    assert "InstrumentationKey=" not in json.dumps(env)
    # The functions output carries names only; the host key appears once, as a secret.
    exported = json.dumps(engine.to_json(each_stack.outputs))
    for secret in secrets:
        assert secret not in exported


def test_app_insights_connection_string_is_a_key_vault_reference(each_stack) -> None:
    env = app_settings(each_stack)
    secret = mine(each_stack, "azure-native:keyvault:Secret")
    vault = each_stack.one("azure-native:keyvault:Vault").azure_name
    assert secret.inputs["secretName"] == "functions-appinsights-connection"
    assert isinstance(secret.inputs["properties"], engine.Secret)
    assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"] == (
        f"@Microsoft.KeyVault(SecretUri=https://{vault}.vault.azure.net/secrets/"
        "functions-appinsights-connection)"
    )


# --- storage ----------------------------------------------------------------------------------
def test_host_and_trigger_storage_are_keyless_private_https_tls12(each_stack) -> None:
    for name in ("host-storage", "trigger-storage"):
        i = mine(each_stack, STORAGE, name).inputs
        assert i["allowSharedKeyAccess"] is False, name
        assert i["allowBlobPublicAccess"] is False, name
        assert i["enableHttpsTrafficOnly"] is True, name
        assert i["minimumTlsVersion"] == "TLS1_2", name
        assert i["kind"] == "StorageV2", name


def test_trigger_storage_has_private_input_and_output_containers(each_stack) -> None:
    trigger = mine(each_stack, STORAGE, "trigger-storage").azure_name
    for name in ("input", "output"):
        c = mine(each_stack, "azure-native:storage:BlobContainer", f"{name}-container").inputs
        assert c["containerName"] == name
        assert c["accountName"] == trigger
        assert c["publicAccess"] == "None"


# --- Service Bus --------------------------------------------------------------------------------
def test_service_bus_is_entra_only_tls12_with_the_trigger_queue(dev, prod) -> None:
    for run, sku in ((dev, "Basic"), (prod, "Standard")):
        ns = mine(run, NAMESPACE).inputs
        s = settings_of(run.stack)
        assert ns["namespaceName"] == s.naming.service_bus()
        assert ns["disableLocalAuth"] is True
        assert ns["minimumTlsVersion"] == "1.2"
        assert ns["sku"] == {"name": sku, "tier": sku}
        q = mine(run, QUEUE).inputs
        assert q["queueName"] == s.functions.queue_name == "score-requests"
        assert q["namespaceName"] == ns["namespaceName"]
        assert q["deadLetteringOnMessageExpiration"] is True


# --- roles ------------------------------------------------------------------------------------
def test_runtime_identity_gets_exactly_the_data_roles_it_needs(each_stack) -> None:
    runtime = mine(each_stack, IDENTITY).outputs["principalId"]
    urn = each_stack.one(COMPONENT).urn
    grants = {
        (r.inputs["roleDefinitionId"].rsplit("/", 1)[1], r.inputs["scope"])
        for r in each_stack.children(urn)
        if r.type == ROLE
    }
    host = arm(each_stack, STORAGE, "host-storage")
    trigger = arm(each_stack, STORAGE, "trigger-storage")
    queue = arm(each_stack, QUEUE, "queue")
    assert grants == {
        (fn.ROLE_STORAGE_BLOB_DATA_OWNER, host),
        (fn.ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR, host),
        (fn.ROLE_STORAGE_BLOB_DATA_OWNER, trigger),
        (fn.ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR, trigger),
        (fn.ROLE_SERVICE_BUS_DATA_RECEIVER, queue),
        (fn.ROLE_SERVICE_BUS_DATA_OWNER, queue),  # both stacks run Elastic Premium
    }
    for r in each_stack.children(urn):
        if r.type == ROLE:
            assert r.inputs["principalId"] == runtime, r.name
            assert r.inputs["principalType"] == "ServicePrincipal", r.name
            assert r.inputs["roleDefinitionId"].startswith(f"/subscriptions/{fakes.SUBSCRIPTION}/")
    # The shared pull identity gets no data-plane rights here (other targets run as it).
    pull = pull_identity(each_stack).outputs["principalId"]
    scopes = {host, trigger, queue, arm(each_stack, NAMESPACE, "service-bus")}
    assert not [
        r
        for r in each_stack.of_type(ROLE)
        if r.inputs["principalId"] == pull and r.inputs["scope"] in scopes
    ]


def test_function_app_waits_for_its_roles_and_for_acr_pull(each_stack) -> None:
    deps = set(mine(each_stack, WEBAPP).dependencies)
    urn = each_stack.one(COMPONENT).urn
    for r in each_stack.children(urn):
        if r.type == ROLE:
            assert r.urn in deps, r.name
    pull = pull_identity(each_stack).outputs["principalId"]
    acr_pull = [
        r
        for r in each_stack.of_type(ROLE)
        if r.inputs["roleDefinitionId"].endswith(ROLE_ACR_PULL) and r.inputs["principalId"] == pull
    ]
    assert acr_pull and all(r.urn in deps for r in acr_pull)


# --- endpoint and outputs ---------------------------------------------------------------------
def test_endpoint_is_built_from_the_app_host_with_the_host_key_as_a_secret(each_stack) -> None:
    app = mine(each_stack, WEBAPP)
    host = app.outputs["defaultHostName"]
    assert host == f"{app.azure_name}.azurewebsites.net"
    ep = each_stack.outputs["endpoints"]["functions"]
    assert ep["scoring_uri"] == f"https://{host}/api/score"
    assert ep["health_uri"] == f"https://{host}/admin/host/ping"
    assert ep["swagger_uri"] is None
    assert ep["auth"]["scheme"] == "function-key"
    assert ep["auth"]["header"] == "x-functions-key: <key>"
    assert isinstance(ep["auth"]["key"], engine.Secret)
    assert engine.reveal(ep["auth"]["key"]) == fakes.fake_secret(f"function:{app.azure_name}")
    # Read by a bounded wait once the host answers, not by an invoke right after create.
    assert not [t for t, _ in each_stack.calls if t == "azure-native:web:listWebAppHostKeys"]


HOST_KEYS = "pulumi-python:dynamic/functions:HostKeys"


def test_host_keys_are_read_from_the_app_once_it_exists(each_stack) -> None:
    keys = mine(each_stack, HOST_KEYS)
    app = mine(each_stack, WEBAPP)
    assert engine.reveal(keys.inputs["site_id"]) == fakes.arm_id(WEBAPP, app.azure_name)
    assert app.urn in keys.dependencies
    assert keys.parent == each_stack.one(COMPONENT).urn


def test_service_bus_data_owner_only_where_elastic_premium_scales_on_queue_depth(
    each_stack, run_stack
) -> None:
    queue = arm(each_stack, QUEUE, "queue")
    roles = {
        r.name: r.inputs
        for r in each_stack.of_type("azure-native:authorization:RoleAssignment")
        if r.inputs.get("scope") == queue
    }
    assert roles["servicebus-owner"]["roleDefinitionId"].endswith(fn.ROLE_SERVICE_BUS_DATA_OWNER)
    dedicated = run_stack("dev", functionsSku="P1v3")
    assert dedicated.error is None, dedicated.error
    names = {r.name for r in dedicated.of_type("azure-native:authorization:RoleAssignment")}
    assert "servicebus-receiver" in names and "servicebus-owner" not in names


def test_the_plan_leaves_its_instance_count_to_the_platform(each_stack) -> None:
    assert mine(each_stack, PLAN).ignore_changes == ("sku.capacity",)


def test_functions_output_names_storage_containers_and_queue(each_stack) -> None:
    namespace = mine(each_stack, NAMESPACE).azure_name
    assert engine.to_json(each_stack.outputs["functions"]) == {
        "function_app": mine(each_stack, WEBAPP).azure_name,
        "host_storage_account": mine(each_stack, STORAGE, "host-storage").azure_name,
        "trigger_storage_account": mine(each_stack, STORAGE, "trigger-storage").azure_name,
        "input_container": "input",
        "output_container": "output",
        "service_bus_namespace": f"{namespace}.servicebus.windows.net",
        "queue_name": "score-requests",
    }


def test_preview_lists_the_functions_resources_with_computed_values_unknown(run_stack) -> None:
    run = run_stack("dev", preview=True)
    assert run.error is None, run.error
    urn = run.one(COMPONENT).urn
    types = sorted(r.type for r in run.children(urn))
    assert types.count(STORAGE) == 2 and types.count("azure-native:storage:BlobContainer") == 2
    assert NAMESPACE in types and QUEUE in types and WEBAPP in types and PLAN in types
    ep = run.outputs["endpoints"]["functions"]
    assert ep["scoring_uri"] is engine.COMPUTED


def test_switching_functions_off_leaves_no_resource_and_no_output(run_stack) -> None:
    run = run_stack("dev", functionsEnabled=False)
    assert run.error is None, run.error
    assert not run.of_type(COMPONENT)
    assert not run.of_type(NAMESPACE) and not run.of_type(QUEUE)
    s = settings_of("dev")
    accounts = {s.naming.storage("fnh"), s.naming.storage("fnd")}
    assert not [
        c
        for c in run.of_type("azure-native:storage:BlobContainer")
        if c.inputs["accountName"] in accounts
    ]
    assert [r.name for r in run.of_type(DOCKER_IMAGE)] == ["scoring-image"]
    names = {r.azure_name for r in run.resources}
    for gone in (s.naming.storage("fnh"), s.naming.storage("fnd"), s.naming.function_app()):
        assert gone not in names
    assert "functions" not in run.outputs
    assert "functions" not in run.outputs["endpoints"]
    assert not run.of_type(HOST_KEYS)


# --- settings rules -------------------------------------------------------------------------------
@pytest.mark.parametrize("good", ["1", "20", "100"])
def test_burst_limit_in_range_is_accepted(good: str) -> None:
    assert settings_of("dev", functionsMaxElasticWorkers=good).functions.max_elastic_workers == int(
        good
    )


@pytest.mark.parametrize("bad", ["0", "101", "many"])
def test_burst_limit_out_of_range_is_refused_naming_the_key(bad: str) -> None:
    with pytest.raises(cfg.SettingsError) as err:
        settings_of("dev", functionsMaxElasticWorkers=bad)
    (problem,) = err.value.problems
    assert problem.keys == ("functionsMaxElasticWorkers",)
    assert "mlscore:functionsMaxElasticWorkers" in problem.fix


@pytest.mark.parametrize("good", ["Basic", "Standard", "Premium"])
def test_service_bus_sku_is_checked(good: str) -> None:
    assert settings_of("dev", functionsServiceBusSku=good).functions.service_bus_sku == good
    with pytest.raises(cfg.SettingsError) as err:
        settings_of("dev", functionsServiceBusSku=good.lower() + "x")
    (problem,) = err.value.problems
    assert problem.keys == ("functionsServiceBusSku",)
    assert "Basic, Standard, Premium" in problem.fix


def test_websites_port_is_the_port_the_function_image_listens_on(dev) -> None:
    dockerfile = (ROOT / "scoring" / "functions.Dockerfile").read_text()
    listens = re.search(r"ASPNETCORE_URLS=http://\+:(\d+)", dockerfile)
    assert listens, "functions.Dockerfile no longer sets the host's port"
    assert app_settings(dev)["WEBSITES_PORT"] == listens.group(1)
    assert f"EXPOSE {listens.group(1)}" in dockerfile
