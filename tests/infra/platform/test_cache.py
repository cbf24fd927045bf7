"""The prediction cache under mocks with the real stack files: sizing, TLS, access, wiring."""

from __future__ import annotations

import pytest

from preview import engine, fakes
from tests.infra.settings_helpers import load, problems

REDIS = "azure-native:redis:Redis"
POLICY = "azure-native:redis:AccessPolicyAssignment"
SECRET = "azure-native:keyvault:Secret"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"


def children_of(run: engine.Run, component_type: str) -> list[engine.Registered]:
    (component,) = [r for r in run.resources if r.type == component_type]
    return run.children(component.urn)


def app_settings(run: engine.Run) -> dict[str, str]:
    """The App Service target's app settings (secrets revealed)."""
    (app,) = [
        r
        for r in children_of(run, "mlscore:target:AppService")
        if r.type == "azure-native:web:WebApp"
    ]
    return {s["name"]: s["value"] for s in engine.reveal(app.inputs["siteConfig"]["appSettings"])}


@pytest.mark.parametrize(
    ("stack", "sku", "family", "capacity"),
    [("dev", "Basic", "C", 0), ("prod", "Premium", "P", 1)],
)
def test_cache_is_sized_per_stack(run_stack, stack, sku, family, capacity) -> None:
    run = run_stack(stack)
    assert run.error is None, run.error
    cache = run.one(REDIS).inputs
    assert cache["sku"] == {"name": sku, "family": family, "capacity": capacity}
    assert cache["name"] == load(stack).naming.redis()


def test_cache_is_tls_only_with_tls12_and_entra_on(each_stack) -> None:
    cache = each_stack.one(REDIS).inputs
    assert cache["enableNonSslPort"] is False
    assert cache["minimumTlsVersion"] == "1.2"
    assert cache["redisConfiguration"]["aadEnabled"] == "true"
    assert cache["redisConfiguration"]["maxmemoryPolicy"] == "allkeys-lru"
    # Keys stay on for targets without a managed identity (IoT Edge devices).
    assert cache["disableAccessKeyAuthentication"] is False


@pytest.mark.parametrize("public", [True, False])
def test_public_network_access_follows_the_stack_setting(run_stack, public) -> None:
    run = run_stack("dev", publicNetworkAccess=public)
    assert run.error is None, run.error
    assert run.one(REDIS).inputs["publicNetworkAccess"] == ("Enabled" if public else "Disabled")


def test_pull_identity_holds_the_data_contributor_policy(each_stack) -> None:
    identity = each_stack.one(IDENTITY, "pull-identity")
    cache = each_stack.one(REDIS)
    policy = each_stack.one(POLICY, "redis-pull-identity-access").inputs
    assert policy["accessPolicyName"] == "Data Contributor"
    assert policy["cacheName"] == cache.azure_name
    assert policy["objectId"] == fakes.fake_uuid(f"principal:{identity.azure_name}")
    assert policy["objectIdAlias"] == fakes.fake_uuid(f"client:{identity.azure_name}")


def test_access_key_is_listed_and_stored_in_the_key_vault_as_a_secret(each_stack) -> None:
    cache = each_stack.one(REDIS)
    calls = [a for token, a in each_stack.calls if token == "azure-native:redis:listRedisKeys"]
    rg = each_stack.one("azure-native:resources:ResourceGroup").azure_name
    assert calls == [{"name": cache.azure_name, "resourceGroupName": rg}]
    secret = each_stack.one(SECRET, "redis-key-secret")
    props = secret.inputs["properties"]
    # The whole properties object is secret because the value in it is.
    assert isinstance(props, engine.Secret), "the Redis key must reach the vault as a secret"
    key = fakes.CALLS["azure-native:redis:listRedisKeys"](calls[0])["primaryKey"]
    assert engine.reveal(props)["value"] == key
    assert secret.inputs["vaultName"] == each_stack.one("azure-native:keyvault:Vault").azure_name
    assert secret in children_of(each_stack, "mlscore:platform:PredictionCache")


def test_cache_resources_belong_to_the_component(dev) -> None:
    types = sorted(r.type for r in children_of(dev, "mlscore:platform:PredictionCache"))
    assert types == sorted([SECRET, POLICY, REDIS])


def test_redis_output_is_the_cache_host_and_tls_port(each_stack) -> None:
    cache = each_stack.one(REDIS)
    assert each_stack.outputs["redis"] == {
        "host": f"{cache.azure_name}.redis.cache.windows.net",
        "port": 6380,
    }
    assert cache.outputs["sslPort"] == each_stack.outputs["redis"]["port"]


def test_an_existing_host_creates_nothing(run_stack) -> None:
    run = run_stack("dev", redisHost="mlscore.westeurope.redis.azure.net", redisPort=10000)
    assert run.error is None, run.error
    assert run.of_type(REDIS) == [] and run.of_type(POLICY) == []
    assert [r for r in run.of_type(SECRET) if r.name == "redis-key-secret"] == []
    assert not any(t == "azure-native:redis:listRedisKeys" for t, _ in run.calls)
    assert run.outputs["redis"] == {"host": "mlscore.westeurope.redis.azure.net", "port": 10000}
    # ...and the targets that run as the pull identity sign in to that host with Entra ID ...
    settings = app_settings(run)
    assert settings["REDIS_HOST"] == "mlscore.westeurope.redis.azure.net"
    assert settings["REDIS_PORT"] == "10000"
    assert settings["REDIS_USE_ENTRA_ID"] == "true"
    assert "REDIS_PASSWORD" not in settings
    # ... while AKS pods, which cannot (no workload identity, no key), run without the cache.
    pods = engine.reveal(run.one("kubernetes:apps/v1:Deployment").inputs["spec"])
    (container,) = pods["template"]["spec"]["containers"]
    assert not [e for e in container["env"] if e["name"].startswith("REDIS_")]
    assert "REDIS_PASSWORD" not in engine.reveal(
        run.one("kubernetes:core/v1:Secret").inputs["stringData"]
    )


def test_targets_with_an_identity_do_not_wait_for_the_cache_to_be_created(dev) -> None:
    """Creating Redis takes 15-20 minutes: the host name is known from the name, not awaited."""
    redis = dev.one(REDIS)
    assert dev.outputs["redis"]["host"] == f"{redis.azure_name}.redis.cache.windows.net"
    for type_ in (
        "azure-native:web:WebApp",  # App Service and Functions
        "azure-native:containerinstance:ContainerGroup",
    ):
        for target in dev.of_type(type_):
            assert redis.urn not in target.dependencies, target.name
    # AKS reads the key, which exists only once the cache does
    assert redis.urn in dev.one(SECRET, "redis-key-secret").dependencies


def test_other_clouds_read_the_host_name_from_azure(run_stack) -> None:
    run = run_stack("dev", **{"azure-native:environment": "china"})
    assert run.error is None, run.error
    redis = run.one(REDIS)
    assert app_settings(run)["REDIS_HOST"] == redis.outputs["hostName"]
    (app,) = [
        r
        for r in children_of(run, "mlscore:target:AppService")
        if r.type == "azure-native:web:WebApp"
    ]
    assert redis.urn in app.dependencies  # the suffix differs there: wait for Azure's answer


def test_without_aks_the_key_is_never_read_or_stored(run_stack) -> None:
    run = run_stack("dev", aksEnabled=False)
    assert run.error is None, run.error
    assert len(run.of_type(REDIS)) == 1
    assert [r for r in run.of_type(SECRET) if r.name == "redis-key-secret"] == []
    assert not any(t == "azure-native:redis:listRedisKeys" for t, _ in run.calls)
    settings = app_settings(run)  # the targets with an identity are unaffected
    assert settings["REDIS_USE_ENTRA_ID"] == "true" and "REDIS_PASSWORD" not in settings


def test_only_aks_gets_the_redis_key(each_stack) -> None:
    """Every target that can run as the pull identity uses Entra ID: the key reaches AKS only."""
    vault_ref = "secrets/redis-primary-key"
    redis = each_stack.one(REDIS).azure_name
    key = fakes.CALLS["azure-native:redis:listRedisKeys"]({"name": redis})["primaryKey"]
    holders = [
        r.type
        for r in each_stack.resources
        if r.type != SECRET
        and (vault_ref in str(engine.reveal(r.inputs)) or key in str(engine.reveal(r.inputs)))
    ]
    assert holders == ["kubernetes:core/v1:Secret"]


def test_redis_disabled_leaves_no_cache_no_output_and_no_redis_settings(run_stack) -> None:
    run = run_stack("dev", redisEnabled=False)
    assert run.error is None, run.error
    assert run.of_type(REDIS) == [] and run.of_type(POLICY) == []
    assert [r for r in run.resources if r.type == "mlscore:platform:PredictionCache"] == []
    assert "redis" not in run.outputs
    assert not [name for name in app_settings(run) if name.startswith("REDIS_")]


# --- settings rules of the cache ----------------------------------------------------------------
def test_stack_files_size_the_cache() -> None:
    dev, prod = load("dev").redis, load("prod").redis
    assert (dev.sku, dev.family, dev.capacity, dev.port) == ("Basic", "C", 0, 6380)
    assert (prod.sku, prod.family, prod.capacity, prod.port) == ("Premium", "P", 1, 6380)
    assert dev.create and prod.create


def test_a_created_cache_must_use_the_tls_port() -> None:
    (problem,) = problems(redisPort=6379)
    assert problem.keys == ("redisPort", "redisHost")
    assert "6380" in problem.problem and "mlscore:redisPort to 6380" in problem.fix


def test_an_existing_host_may_use_another_port() -> None:
    s = load(redisHost="cache.westeurope.redis.azure.net", redisPort=10000).redis
    assert not s.create and s.existing_host == "cache.westeurope.redis.azure.net"


@pytest.mark.parametrize(
    "host", ["rediss://cache.example.net", "cache.example.net:10000", "bad host", "-x.net"]
)
def test_an_existing_host_must_be_a_bare_host_name(host: str) -> None:
    found = [p for p in problems(redisHost=host) if "redisHost" in p.keys]
    assert found and found[0].value == repr(host)
    assert "no scheme, no port" in found[0].fix


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        (
            {"redisSku": "Premium", "redisFamily": "C", "redisCapacity": 1},
            ("redisSku", "redisFamily"),
        ),
        ({"redisSku": "Premium", "redisFamily": "P", "redisCapacity": 0}, ("redisCapacity",)),
        ({"redisSku": "Basic", "redisFamily": "C", "redisCapacity": 7}, ("redisCapacity",)),
    ],
)
def test_sku_family_and_capacity_must_match(overrides, keys) -> None:
    assert [p.keys for p in problems(**overrides)] == [keys]
