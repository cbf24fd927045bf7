"""The prediction cache under mocks with the real stack files: sizing, TLS, access, wiring."""

from __future__ import annotations

import itertools

import pytest

from preview import engine, fakes
from tests.infra.settings_helpers import load, problems

REDIS = "azure-native:redis:Redis"
POLICY = "azure-native:redis:AccessPolicyAssignment"
AMR = "azure-native:redisenterprise:RedisEnterprise"
AMR_DB = "azure-native:redisenterprise:Database"
AMR_POLICY = "azure-native:redisenterprise:AccessPolicyAssignment"
AZURE_CACHE = {"redisService": "azure-cache", "redisPort": 6380}
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
    ("stack", "sku", "ha"), [("dev", "Balanced_B0", "Disabled"), ("prod", "Balanced_B5", "Enabled")]
)
def test_a_new_stack_creates_azure_managed_redis_sized_per_stack(run_stack, stack, sku, ha) -> None:
    """New tenants cannot create Azure Cache for Redis (DESIGN.md, "Azure facts")."""
    run = run_stack(stack)
    assert run.error is None, run.error
    assert run.of_type(REDIS) == []
    cluster = run.one(AMR).inputs
    assert cluster["sku"] == {"name": sku} and cluster["highAvailability"] == ha
    assert cluster["clusterName"] == load(stack).naming.redis()
    assert cluster["minimumTlsVersion"] == "1.2"


def test_the_database_is_tls_only_on_port_10000_and_entra_only(each_stack) -> None:
    db = each_stack.one(AMR_DB)
    i = db.inputs
    assert i["clusterName"] == each_stack.one(AMR).azure_name and i["databaseName"] == "default"
    assert i["clientProtocol"] == "Encrypted" and i["port"] == 10000
    assert i["clusteringPolicy"] == "EnterpriseCluster"  # port 10000; OSS cluster uses 85xx
    assert i["accessKeysAuthentication"] == "Disabled"
    assert i["evictionPolicy"] == "AllKeysLRU"


@pytest.mark.parametrize("public", [True, False])
def test_public_network_access_follows_the_stack_setting(run_stack, public) -> None:
    run = run_stack("dev", publicNetworkAccess=public)
    assert run.error is None, run.error
    assert run.one(AMR).inputs["publicNetworkAccess"] == ("Enabled" if public else "Disabled")


def test_pull_identity_holds_the_default_access_policy(each_stack) -> None:
    identity = each_stack.one(IDENTITY, "pull-identity")
    policy = each_stack.one(AMR_POLICY, "redis-pull-identity-access").inputs
    assert policy["accessPolicyName"] == "default"
    assert policy["clusterName"] == each_stack.one(AMR).azure_name
    assert policy["databaseName"] == "default"
    assert policy["user"] == {"objectId": fakes.fake_uuid(f"principal:{identity.azure_name}")}


def _waits_for(run: engine.Run, later: engine.Registered, earlier: engine.Registered) -> bool:
    """``later`` depends on ``earlier``, directly or through others."""
    by_urn = {r.urn: r for r in run.resources}
    seen: set[str] = set()
    todo = list(later.dependencies)
    while todo:
        urn = todo.pop()
        if urn == earlier.urn:
            return True
        if urn not in seen and urn in by_urn:
            seen.add(urn)
            todo.extend(by_urn[urn].dependencies)
    return False


def test_access_policy_assignments_on_the_cache_are_chained(prod) -> None:
    """A cache takes one update at a time: a second assignment at once fails with 409 "busy
    processing a previous update request" (Azure/bicep-types-az#1760)."""
    first = prod.one(AMR_POLICY, "redis-pull-identity-access")
    second = prod.one(AMR_POLICY, "redis-endpoint-access")
    assert _waits_for(prod, second, first)
    assert _waits_for(prod, first, prod.one(AMR_DB))


def test_every_update_of_the_prod_cache_waits_for_the_one_before(prod) -> None:
    """Private endpoint connections are updates too (ours and the Azure ML managed VNet's):
    the database, the workspace (its inline rule to the cache), the pull identity's access, the
    VNet's endpoint, the online endpoint's access, each after the one before."""
    order = [
        prod.one(AMR_DB),
        prod.one("azure-native:machinelearningservices:Workspace", "workspace"),
        prod.one(AMR_POLICY, "redis-pull-identity-access"),
        prod.one("azure-native:network:PrivateEndpoint", "pe-redis"),
        prod.one(AMR_POLICY, "redis-endpoint-access"),
    ]
    for earlier, later in itertools.pairwise(order):
        assert earlier.urn in later.dependencies, (later.name, earlier.name)


def test_no_key_is_read_stored_or_given_to_any_target(each_stack) -> None:
    """Access keys are off: every target, AKS pods included (workload identity), signs in with
    Entra ID as the pull identity."""
    assert [r for r in each_stack.of_type(SECRET) if r.name == "redis-key-secret"] == []
    assert not any("listDatabaseKeys" in t or "listRedisKeys" in t for t, _ in each_stack.calls)
    pods = engine.reveal(each_stack.one("kubernetes:apps/v1:Deployment", "deployment").inputs)
    (container,) = pods["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    identity = each_stack.one("azure-native:managedidentity:UserAssignedIdentity", "pull-identity")
    assert env["REDIS_USE_ENTRA_ID"] == "true"
    assert env["REDIS_USERNAME"] == fakes.fake_uuid(f"principal:{identity.azure_name}")
    assert "REDIS_PASSWORD" not in env and "REDIS_PASSWORD" not in str(engine.reveal(pods))
    settings = app_settings(each_stack)
    assert settings["REDIS_USE_ENTRA_ID"] == "true" and "REDIS_PASSWORD" not in settings


def test_cache_resources_belong_to_the_component(dev) -> None:
    types = sorted(r.type for r in children_of(dev, "mlscore:platform:PredictionCache"))
    assert types == sorted([AMR, AMR_DB, AMR_POLICY])


def test_redis_output_is_the_managed_host_and_tls_port(each_stack) -> None:
    cluster = each_stack.one(AMR)
    host = f"{cluster.azure_name}.westeurope.redis.azure.net"
    assert each_stack.outputs["redis"] == {"host": host, "port": 10000}
    assert cluster.outputs["hostName"] == host  # what Azure answers, known before it exists
    assert each_stack.one(AMR_DB).outputs["port"] == 10000


def test_targets_do_not_wait_for_the_cache_to_be_created(each_stack) -> None:
    """Creating a cache takes 10-20 minutes: the host name is known from the name."""
    cache_side = {r.urn for t in (AMR, AMR_DB, AMR_POLICY) for r in each_stack.of_type(t)}
    for type_ in (
        "azure-native:web:WebApp",  # App Service and Functions
        "azure-native:containerinstance:ContainerGroup",
        "azure-native:machinelearningservices:OnlineDeployment",
        "kubernetes:apps/v1:Deployment",
    ):
        for target in each_stack.of_type(type_):
            assert not cache_side & set(target.dependencies), target.name


def test_other_clouds_read_the_host_name_from_azure(run_stack) -> None:
    run = run_stack("dev", **{"azure-native:environment": "china"})
    assert run.error is None, run.error
    cluster = run.one(AMR)
    assert app_settings(run)["REDIS_HOST"] == cluster.outputs["hostName"]
    (app,) = [
        r
        for r in children_of(run, "mlscore:target:AppService")
        if r.type == "azure-native:web:WebApp"
    ]
    assert cluster.urn in app.dependencies  # the suffix differs there: wait for Azure's answer


# --- Azure Cache for Redis: only as an explicit choice ------------------------------------------
def test_azure_cache_for_redis_is_an_explicit_choice(run_stack) -> None:
    run = run_stack("prod", redisSku="Premium", redisFamily="P", redisCapacity=1, **AZURE_CACHE)
    assert run.error is None, run.error
    assert run.of_type(AMR) == [] and run.of_type(AMR_DB) == []
    cache = run.one(REDIS).inputs
    assert cache["sku"] == {"name": "Premium", "family": "P", "capacity": 1}
    assert cache["enableNonSslPort"] is False and cache["minimumTlsVersion"] == "1.2"
    assert cache["redisConfiguration"]["aadEnabled"] == "true"
    assert run.outputs["redis"] == {
        "host": f"{cache['name']}.redis.cache.windows.net",
        "port": 6380,
    }
    first = run.one(POLICY, "redis-pull-identity-access")
    second = run.one(POLICY, "redis-endpoint-access")
    assert first.inputs["accessPolicyName"] == "Data Contributor"
    assert _waits_for(run, second, first)  # one update at a time here too


def test_azure_cache_for_redis_is_entra_only_and_no_key_is_stored(run_stack) -> None:
    run = run_stack("dev", redisSku="Basic", redisFamily="C", redisCapacity=0, **AZURE_CACHE)
    assert run.error is None, run.error
    cache = run.one(REDIS).inputs
    assert cache["disableAccessKeyAuthentication"] is True
    assert cache["redisConfiguration"]["aadEnabled"] == "true"
    assert not any(t == "azure-native:redis:listRedisKeys" for t, _ in run.calls)
    assert [r for r in run.of_type(SECRET) if "redis" in r.name] == []
    pods = engine.reveal(run.one("kubernetes:apps/v1:Deployment", "deployment").inputs)
    (container,) = pods["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REDIS_USE_ENTRA_ID"] == "true" and env["REDIS_PORT"] == "6380"
    assert "REDIS_PASSWORD" not in env


def test_an_existing_host_creates_nothing(run_stack) -> None:
    run = run_stack("dev", redisHost="mlscore.westeurope.redis.azure.net", redisPort=10000)
    assert run.error is None, run.error
    assert run.of_type(REDIS) == [] and run.of_type(POLICY) == []
    assert run.of_type(AMR) == [] and run.of_type(AMR_POLICY) == []
    assert [r for r in run.of_type(SECRET) if r.name == "redis-key-secret"] == []
    assert not any(t == "azure-native:redis:listRedisKeys" for t, _ in run.calls)
    assert run.outputs["redis"] == {"host": "mlscore.westeurope.redis.azure.net", "port": 10000}
    # ...and the targets that run as the pull identity sign in to that host with Entra ID ...
    settings = app_settings(run)
    assert settings["REDIS_HOST"] == "mlscore.westeurope.redis.azure.net"
    assert settings["REDIS_PORT"] == "10000"
    assert settings["REDIS_USE_ENTRA_ID"] == "true"
    assert "REDIS_PASSWORD" not in settings
    # ... and so do AKS pods, as the pull identity through workload identity.
    pods = engine.reveal(run.one("kubernetes:apps/v1:Deployment", "deployment").inputs["spec"])
    (container,) = pods["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REDIS_HOST"] == "mlscore.westeurope.redis.azure.net"
    assert env["REDIS_USE_ENTRA_ID"] == "true" and "REDIS_PASSWORD" not in env


def test_redis_disabled_leaves_no_cache_no_output_and_no_redis_settings(run_stack) -> None:
    run = run_stack("dev", redisEnabled=False)
    assert run.error is None, run.error
    assert run.of_type(REDIS) == [] and run.of_type(AMR) == [] and run.of_type(AMR_DB) == []
    assert [r for r in run.resources if r.type == "mlscore:platform:PredictionCache"] == []
    assert "redis" not in run.outputs
    assert not [name for name in app_settings(run) if name.startswith("REDIS_")]


# --- settings rules of the cache ----------------------------------------------------------------
def test_stack_files_size_the_cache() -> None:
    dev, prod = load("dev").redis, load("prod").redis
    assert (dev.service, dev.sku, dev.high_availability, dev.port) == (
        "managed",
        "Balanced_B0",
        False,
        10000,
    )
    assert (prod.service, prod.sku, prod.high_availability, prod.port) == (
        "managed",
        "Balanced_B5",
        True,
        10000,
    )
    assert dev.create and prod.create


def test_a_managed_cache_must_use_port_10000() -> None:
    (problem,) = problems(redisPort=6380)
    assert problem.keys == ("redisPort", "redisService")
    assert "10000" in problem.problem and "mlscore:redisPort to 10000" in problem.fix


def test_an_azure_cache_sku_needs_the_explicit_choice() -> None:
    (problem,) = problems(redisSku="Premium")
    assert problem.keys == ("redisSku", "redisService")
    assert "Balanced_B0" in problem.fix and "azure-cache" in problem.fix


@pytest.mark.parametrize("sku", ["Enterprise_E10", "EnterpriseFlash_F300", "Balanced_B2"])
def test_retiring_or_unknown_managed_skus_are_refused(sku: str) -> None:
    (problem,) = problems(redisSku=sku)
    assert problem.keys == ("redisSku",) and "Balanced_B0" in problem.fix


def test_the_service_must_be_managed_or_azure_cache() -> None:
    assert [p.keys for p in problems(redisService="cache")] == [("redisService",)]


def test_an_azure_cache_must_use_the_tls_port() -> None:
    (problem,) = problems(redisService="azure-cache", redisSku="Basic", redisPort=6379)
    assert problem.keys == ("redisPort", "redisService")
    assert "6380" in problem.problem and "mlscore:redisPort to 6380" in problem.fix


def test_an_existing_host_may_use_another_port() -> None:
    s = load(redisHost="cache.example.net", redisPort=6379).redis
    assert not s.create and s.existing_host == "cache.example.net"


@pytest.mark.parametrize(
    ("host", "port"),
    [("c.westeurope.redis.azure.net", 6380), ("c.redis.cache.windows.net", 10000)],
)
def test_an_existing_azure_host_must_use_its_tls_port(host: str, port: int) -> None:
    (problem,) = problems(redisHost=host, redisPort=port)
    assert problem.keys == ("redisPort", "redisHost") and "mlscore:redisPort to" in problem.fix


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
        ({"redisSku": "Balanced_B0"}, ("redisSku", "redisService")),
    ],
)
def test_azure_cache_sku_family_and_capacity_must_match(overrides, keys) -> None:
    assert [p.keys for p in problems(**AZURE_CACHE, **overrides)] == [keys]


def test_the_caches_private_endpoint_waits_for_its_access_assignment(prod) -> None:
    # a private endpoint connection is an update of the cache, which takes one at a time
    endpoint = prod.one("azure-native:network:PrivateEndpoint", "pe-redis")
    assignment = prod.one(
        "azure-native:redisenterprise:AccessPolicyAssignment", "redis-pull-identity-access"
    )
    assert assignment.urn in endpoint.dependencies
    target = engine.reveal(endpoint.inputs)["privateLinkServiceConnections"][0]
    assert target["privateLinkServiceId"].endswith("/mlscore-prod-redis-41eac")  # unchanged
