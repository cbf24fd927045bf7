"""App Service target under mocks with the real stack files: plan, web app, secrets, autoscale."""

from __future__ import annotations

import pytest

from components.targets.app_service.target import plan_tier
from preview import engine, fakes
from tests.infra.keys import vault_key

COMPONENT = "mlscore:target:AppService"
PLAN = "azure-native:web:AppServicePlan"
APP = "azure-native:web:WebApp"
AUTOSCALE = "azure-native:monitor:AutoscaleSetting"
SECRET = "azure-native:keyvault:Secret"


def own(run: engine.Run, type_: str) -> list[engine.Registered]:
    """Resources of ``type_`` in the App Service component (the function app is a WebApp too)."""
    (component,) = [r for r in run.resources if r.type == COMPONENT]
    return [r for r in run.children(component.urn) if r.type == type_]


def one(run: engine.Run, type_: str) -> engine.Registered:
    (found,) = own(run, type_)
    return found


def settings_of(run: engine.Run) -> dict[str, object]:
    """App settings as sent (Secret wrappers kept)."""
    raw = one(run, APP).inputs["siteConfig"]["appSettings"]
    items = engine.reveal(raw) if isinstance(raw, engine.Secret) else raw
    return {s["name"]: s["value"] for s in items}


def vault_uri(run: engine.Run, secret_name: str) -> str:
    vault = run.one("azure-native:keyvault:Vault").azure_name
    return f"https://{vault}.vault.azure.net/secrets/{secret_name}"


def kv_ref(run: engine.Run, secret_name: str) -> str:
    return f"@Microsoft.KeyVault(SecretUri={vault_uri(run, secret_name)})"


@pytest.mark.parametrize(
    ("stack", "sku", "tier", "capacity"),
    [("dev", "B1", "Basic", 1), ("prod", "P1v3", "PremiumV3", 2)],
)
def test_linux_plan_sized_per_stack(run_stack, dev, prod, stack, sku, tier, capacity) -> None:
    run = {"dev": dev, "prod": prod}[stack]
    plan = one(run, PLAN).inputs
    assert plan["reserved"] is True and plan["kind"] == "linux"
    assert plan["sku"] == {"name": sku, "tier": tier, "capacity": capacity}
    assert plan["zoneRedundant"] is (stack == "prod")  # prod across zones, dev in one


def test_plan_tier_of_every_allowed_sku() -> None:
    from components.targets.app_service.settings import APP_SERVICE_SKUS

    tiers = {sku: plan_tier(sku) for sku in APP_SERVICE_SKUS}
    assert tiers["B1"] == "Basic" and tiers["S2"] == "Standard"
    assert tiers["P1v2"] == "PremiumV2" and tiers["P0v3"] == "PremiumV3"
    assert tiers["P2mv3"] == "PremiumMV3"


def test_web_app_runs_the_image_by_digest_pulled_by_the_identity(each_stack) -> None:
    app = one(each_stack, APP).inputs
    identity = each_stack.one("azure-native:managedidentity:UserAssignedIdentity", "pull-identity")
    identity_id = fakes.arm_id(identity.type, identity.azure_name)
    image = each_stack.outputs["image"]
    assert "@sha256:" in image
    site = app["siteConfig"]
    assert site["linuxFxVersion"] == f"DOCKER|{image}"
    assert site["acrUseManagedIdentityCreds"] is True
    assert site["acrUserManagedIdentityID"] == fakes.fake_uuid(f"client:{identity.azure_name}")
    assert app["identity"]["type"] == "UserAssigned"
    assert app["identity"]["userAssignedIdentities"] == [identity_id]
    assert app["keyVaultReferenceIdentity"] == identity_id
    assert app["kind"] == "app,linux,container" and app["reserved"] is True
    assert app["serverFarmId"] == fakes.arm_id(PLAN, one(each_stack, PLAN).azure_name)


def test_web_app_waits_for_acrpull_and_secrets_user(each_stack) -> None:
    app = one(each_stack, APP)
    grants = {
        r.urn
        for r in each_stack.of_type("azure-native:authorization:RoleAssignment")
        if r.name in ("acrpull", "kv-secrets-user")
    }
    assert len(grants) == 2 and grants <= set(app.dependencies)


def test_web_app_is_hardened(each_stack) -> None:
    app = one(each_stack, APP).inputs
    site = app["siteConfig"]
    assert app["httpsOnly"] is True
    assert site["minTlsVersion"] == "1.2" and site["scmMinTlsVersion"] == "1.2"
    assert site["ftpsState"] == "Disabled"
    assert site["http20Enabled"] is True
    assert site["healthCheckPath"] == "/ready"
    assert site["remoteDebuggingEnabled"] is False
    for type_ in ("azure-native:web:WebAppFtpAllowed", "azure-native:web:WebAppScmAllowed"):
        basic_auth = one(each_stack, type_).inputs
        assert basic_auth["allow"] is False
        assert basic_auth["name"] == one(each_stack, APP).azure_name


def test_always_on_in_prod_not_on_basic_dev(dev, prod) -> None:
    assert one(dev, APP).inputs["siteConfig"]["alwaysOn"] is False
    assert one(prod, APP).inputs["siteConfig"]["alwaysOn"] is True


def test_always_on_follows_the_sku_in_dev(run_stack) -> None:
    run = run_stack("dev", appServiceSku="S1", functionsEnabled=False, aciEnabled=False)
    assert run.error is None, run.error
    assert one(run, APP).inputs["siteConfig"]["alwaysOn"] is True


def test_port_and_runtime_settings(each_stack) -> None:
    settings = settings_of(each_stack)
    assert settings["WEBSITES_PORT"] == "5001"
    assert settings["AZUREML_SERVER_PORT"] == "5001"
    assert settings["WEBSITES_ENABLE_APP_SERVICE_STORAGE"] == "false"
    redis = each_stack.one("azure-native:redisenterprise:RedisEnterprise").azure_name
    assert settings["REDIS_HOST"] == f"{redis}.westeurope.redis.azure.net"
    assert settings["REDIS_PORT"] == "10000" and settings["REDIS_SSL"] == "true"


def test_secrets_are_key_vault_references(each_stack) -> None:
    settings = settings_of(each_stack)
    assert settings["SCORING_AUTH_KEYS"] == kv_ref(each_stack, "appservice-scoring-auth-keys")
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == kv_ref(
        each_stack, "appservice-appinsights-connection"
    )


def test_redis_is_reached_as_the_pull_identity_with_no_key(each_stack) -> None:
    settings = settings_of(each_stack)
    identity = each_stack.one("azure-native:managedidentity:UserAssignedIdentity", "pull-identity")
    assert settings["REDIS_USE_ENTRA_ID"] == "true"
    assert settings["REDIS_USERNAME"] == identity.outputs["principalId"]
    assert settings["AZURE_CLIENT_ID"] == identity.outputs["clientId"]
    assert "REDIS_PASSWORD" not in settings


def test_the_auth_keys_secret_holds_primary_and_secondary(each_stack) -> None:
    (secret,) = [
        r
        for r in own(each_stack, "azure-native:keyvault:Secret")
        if r.name.endswith("auth-keys-secret")
    ]
    assert isinstance(secret.inputs["properties"], engine.Secret)
    value = engine.reveal(secret.inputs["properties"])["value"]
    # The Key Vault secrets are named by role; which random slot backs each one alternates with
    # the rotation generation (components/platform/scoring_keys.py), so read the roles.
    keys = [vault_key(each_stack, f"scoring-key-{w}") for w in ("primary", "secondary")]
    assert value == ",".join(keys) and len(keys) == 2 and keys[0] != keys[1]


def test_autoscale_only_when_max_above_min(dev, prod) -> None:
    assert own(dev, AUTOSCALE) == []
    scale = one(prod, AUTOSCALE).inputs
    plan_id = fakes.arm_id(PLAN, one(prod, PLAN).azure_name)
    assert scale["targetResourceUri"] == plan_id and scale["enabled"] is True
    (profile,) = scale["profiles"]
    assert profile["capacity"] == {"minimum": "2", "maximum": "6", "default": "2"}
    out, in_ = profile["rules"]
    assert out["metricTrigger"]["metricName"] == "CpuPercentage"
    assert out["metricTrigger"]["metricResourceUri"] == plan_id
    assert (out["metricTrigger"]["operator"], out["metricTrigger"]["threshold"]) == (
        "GreaterThan",
        70,
    )
    assert out["scaleAction"]["direction"] == "Increase"
    assert (in_["metricTrigger"]["operator"], in_["metricTrigger"]["threshold"]) == ("LessThan", 30)
    assert in_["scaleAction"]["direction"] == "Decrease"
    # Scale out fast, scale in slowly.
    assert (out["scaleAction"]["cooldown"], out["metricTrigger"]["timeWindow"]) == ("PT5M", "PT5M")
    assert (in_["scaleAction"]["cooldown"], in_["metricTrigger"]["timeWindow"]) == (
        "PT10M",
        "PT10M",
    )


def test_endpoint_is_https_on_the_default_host_with_a_bearer_key(each_stack) -> None:
    app = one(each_stack, APP)
    host = f"{app.azure_name}.azurewebsites.net"
    ep = each_stack.outputs["endpoints"]["app_service"]
    assert ep["scoring_uri"] == f"https://{host}/score"
    assert ep["swagger_uri"] == f"https://{host}/swagger.json"
    assert ep["health_uri"] == f"https://{host}/ready"
    assert ep["tls"] is True
    assert ep["auth"]["scheme"] == "bearer-key"
    assert ep["auth"]["header"] == "Authorization: Bearer <key>"
    assert isinstance(ep["auth"]["key"], engine.Secret)
    primary = [s for s in each_stack.of_type(SECRET) if s.azure_name == "scoring-key-primary"]
    value = engine.reveal(primary[0].inputs["properties"])["value"]
    assert engine.reveal(ep["auth"]["key"]) == value


def test_switched_off_leaves_nothing(run_stack) -> None:
    run = run_stack("dev", appServiceEnabled=False)
    assert run.error is None, run.error
    assert [r for r in run.resources if r.type == COMPONENT] == []
    assert [p for p in run.of_type(PLAN) if p.azure_name == "mlscore-dev-plan"] == []
    assert run.of_type(AUTOSCALE) == []
    assert [a for a in run.of_type(APP) if a.azure_name.startswith("mlscore-dev-app-")] == []
    assert [r for r in run.of_type("azure-native:keyvault:Secret") if "appservice" in r.name] == []
    assert "app_service" not in run.outputs["endpoints"]
