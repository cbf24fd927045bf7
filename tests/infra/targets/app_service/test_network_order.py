"""Under network isolation the web app resolves its Key Vault references and pulls its image
through the platform's private endpoints (issue 30): it is created once those have their DNS
records, as the function app is (PrivateEndpoints.zone_ids, app_service/target.py)."""

from __future__ import annotations

from preview import engine

GROUP = "azure-native:network:PrivateDnsZoneGroup"


def platform_groups(run: engine.Run) -> dict[str, str]:
    return {
        g.urn: g.name
        for g in run.of_type(GROUP)
        if "PrivateEndpoints::private-endpoints" in g.parent
    }


def web_app(run: engine.Run) -> engine.Registered:
    (app,) = [w for w in run.of_type("azure-native:web:WebApp") if "AppService::" in w.parent]
    return app


def test_prod_web_app_waits_for_the_key_vault_and_registry_endpoints(prod) -> None:
    groups = platform_groups(prod)
    waited = {groups[d] for d in web_app(prod).dependencies if d in groups}
    assert {"pe-kv-dns", "pe-acr-dns"} <= waited
    subnet = engine.reveal(web_app(prod).inputs)["virtualNetworkSubnetId"]
    assert subnet.endswith("/subnets/app-service")  # the value is unchanged: only the order


def test_dev_without_a_vnet_has_nothing_to_wait_for(dev) -> None:
    assert "virtualNetworkSubnetId" not in web_app(dev).inputs
    assert not dev.of_type(GROUP)
