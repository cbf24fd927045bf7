"""Private endpoints, private DNS zones, VNet links and zone groups on the prod graph."""

from __future__ import annotations

import pytest

from components.platform import private_endpoints as pe
from preview import engine, fakes

PE = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
ZONE = "azure-native:privatedns:PrivateZone"
LINK = "azure-native:privatedns:VirtualNetworkLink"
VNET = "azure-native:network:VirtualNetwork"

# endpoint -> (target type, target logical name, group ID, zones), from
# https://learn.microsoft.com/azure/private-link/private-endpoint-dns
EXPECTED = {
    "kv": ("azure-native:keyvault:Vault", "keyvault", "vault", ["privatelink.vaultcore.azure.net"]),
    "st-blob": (
        "azure-native:storage:StorageAccount",
        "storage",
        "blob",
        ["privatelink.blob.core.windows.net"],
    ),
    "st-file": (
        "azure-native:storage:StorageAccount",
        "storage",
        "file",
        ["privatelink.file.core.windows.net"],
    ),
    "acr": (
        "azure-native:containerregistry:Registry",
        "acr",
        "registry",
        ["privatelink.azurecr.io"],
    ),
    "mlw": (
        "azure-native:machinelearningservices:Workspace",
        "workspace",
        "amlworkspace",
        ["privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"],
    ),
    "redis": (
        "azure-native:redisenterprise:RedisEnterprise",
        "redis",
        "redisEnterprise",
        ["privatelink.redis.azure.net"],
    ),
}
# The Functions target's own endpoints (components/targets/functions/network.py; their wiring is
# tested in tests/infra/targets/test_compute_network.py): host storage blob/queue/table, trigger
# storage blob/queue, in the same zones (blob shared with the workspace storage).
EXPECTED |= {
    f"{prefix}-{svc}": (
        "azure-native:storage:StorageAccount",
        account,
        svc,
        [f"privatelink.{svc}.core.windows.net"],
    )
    for prefix, account, services in (
        ("fnhost", "host-storage", ("blob", "queue", "table")),
        ("fntrig", "trigger-storage", ("blob", "queue")),
    )
    for svc in services
}


def arm_id(r: engine.Registered) -> str:
    return fakes.arm_id(r.type, r.azure_name)


def endpoints(run: engine.Run) -> dict[str, engine.Registered]:
    return {r.name.removeprefix("pe-"): r for r in run.of_type(PE)}


def zone_ids(run: engine.Run) -> dict[str, str]:
    return {arm_id(z): z.inputs["privateZoneName"] for z in run.of_type(ZONE)}


def test_every_platform_data_plane_gets_an_endpoint_to_its_own_resource(prod) -> None:
    found = endpoints(prod)
    assert set(found) == set(EXPECTED)
    for name, (type_, logical, group, _) in EXPECTED.items():
        (conn,) = found[name].inputs["privateLinkServiceConnections"]
        assert conn["groupIds"] == [group]
        assert conn["privateLinkServiceId"] == arm_id(prod.one(type_, logical)), name


def test_the_endpoints_sit_in_the_endpoints_subnet(prod) -> None:
    subnet_id = prod.outputs["network"]["subnet_ids"]["private_endpoints"]
    assert subnet_id.endswith("/subnets/private-endpoints")
    for r in prod.of_type(PE):
        assert r.inputs["subnet"]["id"] == subnet_id
        assert r.inputs["customNetworkInterfaceName"] == f"{r.inputs['privateEndpointName']}-nic"


def test_each_zone_exists_once_global_and_linked_to_the_vnet(prod) -> None:
    zones = [z.inputs["privateZoneName"] for z in prod.of_type(ZONE)]
    assert sorted(zones) == sorted({z for *_, zs in EXPECTED.values() for z in zs})
    assert all(z.inputs["location"] == "global" for z in prod.of_type(ZONE))
    vnet_id = arm_id(prod.one(VNET))
    links = prod.of_type(LINK)
    assert sorted(link.inputs["privateZoneName"] for link in links) == sorted(zones)
    for link in links:
        assert link.inputs["virtualNetwork"] == {"id": vnet_id}
        assert link.inputs["registrationEnabled"] is False  # the zone groups write the records
        assert link.inputs["location"] == "global"


def test_each_endpoint_registers_in_its_zones_through_a_zone_group(prod) -> None:
    ids = zone_ids(prod)
    groups = {g.inputs["privateEndpointName"]: g for g in prod.of_type(ZONE_GROUP)}
    for name, r in endpoints(prod).items():
        group = groups[r.inputs["privateEndpointName"]]
        configs = group.inputs["privateDnsZoneConfigs"]
        assert [ids[c["privateDnsZoneId"]] for c in configs] == EXPECTED[name][3]
        assert group.inputs["privateDnsZoneGroupName"] == "default"


def test_the_registry_behind_a_private_endpoint_is_premium(prod) -> None:
    """Private endpoints are a Premium registry feature."""
    assert prod.one("azure-native:containerregistry:Registry").inputs["sku"] == {"name": "Premium"}


def test_azure_cache_for_redis_uses_its_own_group_and_zone(run_stack) -> None:
    run = run_stack(
        "prod",
        redisService="azure-cache",
        redisSku="Premium",
        redisFamily="P",
        redisCapacity=1,
        redisPort=6380,
    )
    assert run.error is None, run.error
    (conn,) = endpoints(run)["redis"].inputs["privateLinkServiceConnections"]
    assert conn["groupIds"] == ["redisCache"]
    assert conn["privateLinkServiceId"] == arm_id(run.one("azure-native:redis:Redis"))
    assert "privatelink.redis.cache.windows.net" in zone_ids(run).values()
    assert "privatelink.redis.azure.net" not in zone_ids(run).values()


def test_an_existing_redis_host_gets_no_endpoint(run_stack) -> None:
    run = run_stack("prod", redisHost="cache.contoso.westeurope.redis.azure.net")
    assert run.error is None, run.error
    assert "redis" not in endpoints(run)
    assert "privatelink.redis.azure.net" not in zone_ids(run).values()


def test_storage_endpoints_are_per_service_and_known_services_only() -> None:
    made = pe.storage("st", "id", ("blob", "queue"))
    assert [(e.name, e.group_id, e.zones) for e in made] == [
        ("st-blob", "blob", ("privatelink.blob.core.windows.net",)),
        ("st-queue", "queue", ("privatelink.queue.core.windows.net",)),
    ]
    with pytest.raises(ValueError, match="dfs"):
        pe.storage("st", "id", ("dfs",))


def test_two_endpoints_with_one_name_are_refused() -> None:
    args = pe.PrivateEndpointsArgs(
        None,  # type: ignore[arg-type]  # refused before settings are read
        "rg",
        "vnet",
        "subnet",
        (pe.key_vault("a"), pe.key_vault("b")),
    )
    with pytest.raises(ValueError, match="repeat"):
        pe.PrivateEndpoints("twice", args)
