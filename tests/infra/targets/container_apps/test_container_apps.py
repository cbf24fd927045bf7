"""Container Apps target under mocks with the real stack files: the environment and its logs, the
app's image, identity, Key Vault secrets, HTTPS ingress, probes and HTTP scale rule."""

from __future__ import annotations

import pytest

from preview import engine, fakes
from tests.infra.keys import vault_key

ENV = "azure-native:app:ManagedEnvironment"
APP = "azure-native:app:ContainerApp"
DIAG = "azure-native:monitor:DiagnosticSetting"


def inputs(r: engine.Registered) -> dict:
    return engine.reveal(r.inputs)


def container(app: engine.Registered) -> dict:
    (c,) = inputs(app)["template"]["containers"]
    return c


def env_of(app: engine.Registered) -> dict[str, dict]:
    return {e["name"]: e for e in container(app)["env"]}


def identity_id(run: engine.Run) -> str:
    identity = run.one("azure-native:managedidentity:UserAssignedIdentity", "pull-identity")
    return fakes.arm_id(identity.type, identity.azure_name)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_on_in_dev_and_prod_with_an_endpoint(stack, dev, prod) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    assert len(run.of_type(ENV)) == 1 and len(run.of_type(APP)) == 1
    app = run.one(APP)
    fqdn = app.outputs["configuration"]["ingress"]["fqdn"]
    assert fqdn.endswith(".westeurope.azurecontainerapps.io")
    ep = run.outputs["endpoints"]["container_apps"]
    assert ep["scoring_uri"] == f"https://{fqdn}/score"
    assert ep["swagger_uri"] == f"https://{fqdn}/swagger.json"
    assert ep["health_uri"] == f"https://{fqdn}/ready"
    assert ep["tls"] is True and ep["auth"]["scheme"] == "bearer-key"
    assert isinstance(ep["auth"]["key"], engine.Secret)
    primary = vault_key(run, "scoring-key-primary")
    assert engine.reveal(ep["auth"]["key"]) == primary


def test_switched_off_leaves_nothing(run_stack) -> None:
    run = run_stack("dev", containerAppsEnabled=False)
    assert run.error is None, run.error
    assert run.of_type(ENV) == [] and run.of_type(APP) == []
    assert "container_apps" not in run.outputs["endpoints"]


def test_environment_logs_through_azure_monitor_to_log_analytics(each_stack) -> None:
    env = each_stack.one(ENV)
    i = inputs(env)
    assert i["appLogsConfiguration"] == {"destination": "azure-monitor"}  # no shared key
    assert i["workloadProfiles"][0]["workloadProfileType"] == "Consumption"
    (setting,) = [d for d in each_stack.of_type(DIAG) if d.name == "container-apps-env"]
    s = inputs(setting)
    assert s["resourceUri"] == fakes.arm_id(env.type, env.azure_name)
    workspace = each_stack.one("azure-native:operationalinsights:Workspace")
    assert s["workspaceId"] == fakes.arm_id(workspace.type, workspace.azure_name)
    assert {"categoryGroup": "allLogs", "enabled": True} in s["logs"]


def test_image_by_digest_pulled_by_the_pull_identity(each_stack) -> None:
    app = each_stack.one(APP)
    i = inputs(app)
    assert container(app)["image"] == each_stack.outputs["image"]
    assert "@sha256:" in container(app)["image"]
    ident = identity_id(each_stack)
    assert i["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [ident]}
    registry = each_stack.one("azure-native:containerregistry:Registry").azure_name
    assert i["configuration"]["registries"] == [
        {"server": f"{registry}.azurecr.io", "identity": ident}
    ]
    acrpull = each_stack.one("azure-native:authorization:RoleAssignment", "acrpull")
    assert acrpull.urn in app.dependencies


def test_secrets_are_key_vault_references_through_the_identity(each_stack) -> None:
    app = each_stack.one(APP)
    secrets = {s["name"]: s for s in inputs(app)["configuration"]["secrets"]}
    assert set(secrets) == {"scoring-auth-keys", "appinsights-connection"}
    vault = each_stack.one("azure-native:keyvault:Vault").azure_name
    for name, s in secrets.items():
        assert "value" not in s, name
        assert s["identity"] == identity_id(each_stack)
        assert s["keyVaultUrl"].startswith(
            f"https://{vault}.vault.azure.net/secrets/containerapps-"
        )
    env = env_of(app)
    assert env["SCORING_AUTH_KEYS"] == {
        "name": "SCORING_AUTH_KEYS",
        "secretRef": "scoring-auth-keys",
    }
    assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"]["secretRef"] == "appinsights-connection"
    keys = each_stack.one("azure-native:keyvault:Secret", "containerapps-auth-keys-secret")
    primary, secondary = (
        vault_key(each_stack, f"scoring-key-{w}") for w in ("primary", "secondary")
    )
    assert engine.reveal(keys.inputs["properties"])["value"] == f"{primary},{secondary}"
    # the identity signs in to Redis with Entra ID: no key at all
    assert env["REDIS_USE_ENTRA_ID"]["value"] == "true" and "REDIS_PASSWORD" not in env
    plain = {n for n, e in env.items() if "value" in e}
    assert not plain & {"SCORING_AUTH_KEYS", "APPLICATIONINSIGHTS_CONNECTION_STRING"}


def test_external_https_ingress_only(each_stack) -> None:
    ingress = inputs(each_stack.one(APP))["configuration"]["ingress"]
    assert ingress["external"] is True and ingress["allowInsecure"] is False
    assert ingress["targetPort"] == 5001 and ingress["transport"] == "http"
    assert ingress["traffic"] == [{"latestRevision": True, "weight": 100}]


def test_startup_readiness_and_liveness_probes_on_the_hosts_routes(each_stack) -> None:
    probes = {p["type"]: p for p in container(each_stack.one(APP))["probes"]}
    assert set(probes) == {"Startup", "Readiness", "Liveness"}
    assert probes["Readiness"]["httpGet"] == {"path": "/ready", "port": 5001, "scheme": "HTTP"}
    for kind in ("Startup", "Liveness"):
        assert probes[kind]["httpGet"] == {"path": "/", "port": 5001, "scheme": "HTTP"}
    for p in probes.values():  # Container Apps' limits (health-probes)
        assert 1 <= p["failureThreshold"] <= 10 and 1 <= p["periodSeconds"] <= 240
    assert probes["Startup"]["failureThreshold"] * probes["Startup"]["periodSeconds"] >= 60


def test_the_host_gets_the_settings_every_container_target_gets(each_stack) -> None:
    env = {n: e.get("value") for n, e in env_of(each_stack.one(APP)).items()}
    assert env["SCORING_ENDPOINT_NAME"] == env["OTEL_SERVICE_NAME"] == "container_apps"
    assert env["AZUREML_SERVER_PORT"] == "5001"
    for key in ("WORKER_COUNT", "SCORING_TIMEOUT_MS", "SCORING_RUN_THREADS", "CACHE_TTL_SECONDS"):
        assert env[key], key
    assert env["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].endswith(";Authorization=AAD")
    assert env["DATA_COLLECTION_ENABLED"] == "true" and env["DATA_COLLECTION_BLOB_URL"]
    assert "AZUREML_ENTRY_SCRIPT" not in env and "AZUREML_MODEL_DIR" not in env


def scale(run: engine.Run) -> dict:
    return inputs(run.one(APP))["template"]["scale"]


def test_dev_scales_to_zero_on_concurrent_requests(dev) -> None:
    s = scale(dev)
    assert s["minReplicas"] == 0 and s["maxReplicas"] == 3
    (rule,) = s["rules"]
    # maxConcurrentRequestsPerContainer 1 x 70 % = 0.7: at least one request per replica
    assert rule["http"]["metadata"] == {"concurrentRequests": "1"}


def test_prod_keeps_three_warm_replicas_across_zones(prod) -> None:
    s = scale(prod)
    assert s["minReplicas"] == 3 and s["maxReplicas"] == 12
    assert inputs(prod.one(ENV))["zoneRedundant"] is True


@pytest.mark.parametrize(
    ("concurrency", "utilization", "target"), [(10, 70, "7"), (3, 70, "3"), (4, 25, "1")]
)
def test_the_rule_aims_at_the_seeds_utilisation_of_a_replica(
    run_stack, concurrency, utilization, target
) -> None:
    run = run_stack(
        "dev",
        maxConcurrentRequestsPerContainer=concurrency,
        autoscaleTargetUtilization=utilization,
    )
    assert run.error is None, run.error
    (rule,) = scale(run)["rules"]
    assert rule["http"]["metadata"]["concurrentRequests"] == target  # ceil(c x u / 100)


def test_dev_has_no_vnet_and_a_consumption_replica(dev) -> None:
    assert "vnetConfiguration" not in inputs(dev.one(ENV))
    app = inputs(dev.one(APP))
    assert app["workloadProfileName"] == "Consumption"
    assert container(dev.one(APP))["resources"] == {"cpu": 1.0, "memory": "2Gi"}
