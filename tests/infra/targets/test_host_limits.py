"""v1's per-replica limits (AksWebservice ``replica_max_concurrent_requests``,
``max_request_wait_time``) reach the scoring host in every target, from the stack's keys.

The host's side (what it does with ``SCORING_RUN_THREADS`` and ``SCORING_MAX_QUEUE_WAIT_MS``:
threads, 503 with Retry-After past the wait) is tested against the running host in
tests/scoring/test_limits.py; tests/scoring/test_own_model.py starts the host with each target's
rendered environment on the image's layout.
"""

from __future__ import annotations

import pytest

from preview import engine
from scoring.config import Settings as HostSettings
from scoring.demo import target_envs

WEB_APP = "azure-native:web:WebApp"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HOST_TARGETS = ("app_service", "functions", "aci", "aks", "iot_edge", "aml_online")


def _envs(run: engine.Run) -> dict[str, dict[str, str]]:
    assert run.error is None, run.error
    return target_envs(run)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_defaults_are_v1s_one_at_a_time_and_half_a_second(run_stack, stack: str) -> None:
    envs = _envs(run_stack(stack, onlineEndpointEnabled=True, iotEdgeDeviceHost=""))
    present = [t for t in HOST_TARGETS if t in envs]
    assert len(present) >= 4, sorted(envs)
    for target in present:
        env = envs[target]
        assert (env["SCORING_RUN_THREADS"], env["SCORING_MAX_QUEUE_WAIT_MS"]) == ("1", "500")


def test_the_stack_keys_set_them_everywhere_and_the_host_reads_them(run_stack) -> None:
    run = run_stack(
        "dev",
        maxConcurrentRequestsPerContainer=4,
        maxRequestWaitTimeMs=250,
        onlineEndpointEnabled=True,
        iotEdgeDeviceHost="",
    )
    for target, env in _envs(run).items():
        if target not in HOST_TARGETS:
            continue
        host = HostSettings.from_env({**env, "AZUREML_ENTRY_SCRIPT": __file__})
        assert (host.run_threads, env["SCORING_MAX_QUEUE_WAIT_MS"]) == (4, "250"), target


def test_a_wait_limit_out_of_range_is_refused_naming_the_key(run_stack) -> None:
    run = run_stack("dev", maxRequestWaitTimeMs=-1)
    assert run.error is not None and "mlscore:maxRequestWaitTimeMs" in str(run.error)


def _cache_env(run: engine.Run) -> dict[str, dict[str, str]]:
    """The cache settings of App Service (app settings) and of the AKS pods (their env)."""
    assert run.error is None, run.error
    (app,) = [a for a in run.of_type(WEB_APP) if a.inputs["kind"] == "app,linux,container"]
    settings = engine.reveal(app.inputs["siteConfig"]["appSettings"])
    pods = engine.reveal(run.one(DEPLOYMENT, "deployment").inputs["spec"])
    (container,) = pods["template"]["spec"]["containers"]
    found = {"app_service": {a["name"]: a["value"] for a in settings}}
    found["aks"] = {e["name"]: e.get("value") for e in container["env"]}
    return {t: {k: v for k, v in env.items() if k.startswith("REDIS_")} for t, env in found.items()}


def test_an_oss_clustered_cache_is_reached_with_the_cluster_client(run_stack) -> None:
    host = "cache.westeurope.redis.azure.net"
    for target, env in _cache_env(
        run_stack("dev", redisHost=host, redisPort=10000, redisCluster=True)
    ).items():
        assert (env["REDIS_HOST"], env["REDIS_CLUSTER"]) == (host, "true"), target
    for target, env in _cache_env(run_stack("dev", redisHost=host, redisPort=10000)).items():
        assert env["REDIS_HOST"] == host and "REDIS_CLUSTER" not in env, target


def test_the_cluster_protocol_is_refused_for_a_cache_the_program_creates(run_stack) -> None:
    run = run_stack("dev", redisCluster=True)
    assert run.error is not None
    assert "mlscore:redisCluster" in str(run.error) and "mlscore:redisHost" in str(run.error)


def _egress_ports(run: engine.Run) -> list[dict[str, object]]:
    policy = engine.reveal(run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs)
    return [p for rule in policy["spec"]["egress"] for p in rule.get("ports", [])]


def test_the_pods_may_reach_an_oss_clusters_node_ports_and_only_then(run_stack) -> None:
    host = "cache.westeurope.redis.azure.net"
    cluster = _egress_ports(run_stack("dev", redisHost=host, redisPort=10000, redisCluster=True))
    assert {"protocol": "TCP", "port": 8500, "endPort": 8599} in cluster
    assert {"protocol": "TCP", "port": 10000} in cluster
    plain = _egress_ports(run_stack("dev", redisHost=host, redisPort=10000))
    assert not [p for p in plain if "endPort" in p]
