"""Zones, storage replication and scoring key rotation on the real program (mock engine).

prod: both plans zone redundant with two instances or more, every storage account GZRS, the
registry zone redundant; dev: one zone, LRS, the sizes it had. Bad settings are refused naming
their keys. The rotation test runs the program twice with the clock on either side of a period
boundary and follows the keys from primary to secondary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest

from components.config.regions import REGIONS_WITH_ZONES
from components.platform import scoring_keys
from components.platform.scoring_keys import DAY_SECONDS, SLOTS, Rotation
from components.platform.settings import ZONE_MIN_INSTANCES
from preview import engine
from tests.infra.settings_helpers import keys_of, load, problems

PLAN = "azure-native:web:AppServicePlan"
STORAGE = "azure-native:storage:StorageAccount"
SECRET = "azure-native:keyvault:Secret"
PASSWORD = "random:index/randomPassword:RandomPassword"
WEB_APP = "azure-native:web:WebApp"
REGISTRY = "azure-native:containerregistry:Registry"
RESILIENCE_KEYS = {"zoneRedundant", "storageRedundancy", "scoringKeyRotationDays"}


# --- settings ------------------------------------------------------------------------------------
def test_prod_is_zone_redundant_and_dev_is_not() -> None:
    prod, dev = load("prod").resilience, load("dev").resilience
    assert (prod.zone_redundant, prod.storage_redundancy) == (True, "GZRS")
    assert (dev.zone_redundant, dev.storage_redundancy) == (False, "LRS")
    assert prod.key_rotation_days == dev.key_rotation_days == 90


def test_the_region_list_has_the_regions_the_stacks_use() -> None:
    assert {"westeurope", "northeurope", "eastus2", "swedencentral"} <= REGIONS_WITH_ZONES
    # regions without zones (learn.microsoft.com/azure/reliability/regions-list)
    assert not {"northcentralus", "westus", "ukwest", "westcentralus"} & REGIONS_WITH_ZONES


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        ({"location": "northcentralus"}, {"location", "zoneRedundant", "storageRedundancy"}),
        ({"location": "ukwest", "zoneRedundant": "false"}, {"location", "storageRedundancy"}),
        ({"storageRedundancy": "LRS"}, {"zoneRedundant", "storageRedundancy"}),
        ({"appServiceSku": "S1"}, {"zoneRedundant", "appServiceSku"}),
        ({"appServiceMinInstances": "1"}, {"zoneRedundant", "appServiceMinInstances"}),
        ({"functionsMaxElasticWorkers": "1"}, {"zoneRedundant", "functionsMaxElasticWorkers"}),
        ({"storageRedundancy": "ZZRS"}, {"storageRedundancy"}),
        ({"scoringKeyRotationDays": "0"}, {"scoringKeyRotationDays"}),
        ({"scoringKeyRotationDays": "400"}, {"scoringKeyRotationDays"}),
    ],
)
def test_bad_resilience_settings_are_refused_naming_the_keys(
    overrides: dict[str, str], keys: set[str]
) -> None:
    found = problems("prod", **overrides)
    mine = [p for p in found if set(p.keys) & RESILIENCE_KEYS]
    assert keys_of(mine) == keys, [str(p) for p in found]
    assert all(p.fix for p in mine)


def test_zone_rules_do_not_apply_to_plans_that_are_off() -> None:
    s = load("prod", appServiceEnabled="false", appServiceSku="B1", appServiceMinInstances="1")
    assert s.resilience.zone_redundant and not s.app_service.enabled


def test_dev_config_with_zones_off_is_accepted_anywhere() -> None:
    assert load("dev", location="northcentralus").resilience.region_has_zones is False


# --- the graph -----------------------------------------------------------------------------------
def test_prod_plans_are_zone_redundant_with_enough_instances(prod: engine.Run) -> None:
    plans = prod.of_type(PLAN)
    assert len(plans) == 2
    for plan in plans:
        assert plan.inputs["zoneRedundant"] is True, plan.name
        assert plan.inputs["sku"]["capacity"] >= ZONE_MIN_INSTANCES, plan.name


def test_prod_storage_is_zone_and_geo_redundant_and_lets_trusted_services_in(
    prod: engine.Run,
) -> None:
    accounts = prod.of_type(STORAGE)
    assert {a.name for a in accounts} == {"storage", "host-storage", "trigger-storage"}
    for a in accounts:
        assert a.inputs["sku"] == {"name": "Standard_GZRS"}, a.name
        # trusted services pass; under network isolation the rest is denied but the deployer
        # (test_data_plane_network.py)
        rules = a.inputs["networkRuleSet"]
        assert (rules["bypass"], rules["defaultAction"]) == ("AzureServices", "Deny"), a.name


@pytest.mark.parametrize(("stack", "sku"), [("dev", "Standard_LRS"), ("prod", "Standard_GZRS")])
def test_every_storage_account_waits_for_the_check_of_its_redundancy(
    request: pytest.FixtureRequest, stack: str, sku: str
) -> None:
    """A zone-redundancy change of an existing account is a conversion, which Azure refuses as
    an update (redundancy-migration): each account waits for the check that reads its SKU and
    stops the run with the conversion to start (components/providers/redundancy_check.py)."""
    run: engine.Run = request.getfixturevalue(stack)
    checks = {c.urn: c for c in run.of_type("pulumi-python:dynamic/storage:RedundancyCheck")}
    accounts = run.of_type(STORAGE)
    assert len(checks) == len(accounts) >= 1
    for account in accounts:
        (check,) = [checks[u] for u in account.dependencies if u in checks]
        assert check.inputs["account_name"] == account.inputs["accountName"], account.name
        assert check.inputs["sku"] == account.inputs["sku"]["name"] == sku
        assert check.inputs["key"] == "mlscore:storageRedundancy"


def test_prod_registry_is_zone_redundant(prod: engine.Run) -> None:
    assert prod.one(REGISTRY).inputs["zoneRedundancy"] == "Enabled"


def test_dev_keeps_one_zone_and_its_sizes(dev: engine.Run) -> None:
    for r in dev.of_type(STORAGE):
        assert r.inputs["sku"] == {"name": "Standard_LRS"}, r.name
    for r in dev.of_type(PLAN):
        assert r.inputs["zoneRedundant"] is False and r.inputs["sku"]["capacity"] == 1, r.name
    assert dev.one(REGISTRY).inputs["sku"] == {"name": "Basic"}
    assert dev.one(REGISTRY).inputs["zoneRedundancy"] == "Disabled"
    assert sorted(p.inputs["sku"]["name"] for p in dev.of_type(PLAN)) == ["B1", "EP1"]


# --- key rotation --------------------------------------------------------------------------------
def test_the_schedule_cuts_time_into_periods_from_the_epoch() -> None:
    r = Rotation.at(90, datetime(1970, 4, 1, tzinfo=UTC))  # day 90
    assert r.generation == 1 and r.primary_slot == 1
    assert (r.slot_generation(1), r.slot_generation(0)) == (1, 0)
    assert r.expires == 3 * 90 * DAY_SECONDS
    assert Rotation.at(90, datetime(1970, 3, 31, 23, 59, tzinfo=UTC)).generation == 0


def _boundary(days: int) -> datetime:
    """The start of the period that contains today."""
    today = Rotation.at(days, datetime.now(UTC))
    return datetime.fromtimestamp(today.starts(today.generation), UTC)


def _run_at(when: datetime, **overrides: Any) -> engine.Run:
    with patch.object(scoring_keys, "utc_now", lambda: when):
        run = engine.run("dev", overrides, preview=False)
    assert run.error is None, run.error
    return run


def _secret(run: engine.Run, name: str) -> dict[str, Any]:
    (found,) = [s for s in run.of_type(SECRET) if s.azure_name == name]
    return engine.reveal(found.inputs["properties"])


def _app_setting(run: engine.Run, name: str) -> str:
    (app,) = [a for a in run.of_type(WEB_APP) if a.inputs["kind"] == "app,linux,container"]
    settings = engine.reveal(app.inputs["siteConfig"]["appSettings"])
    return next(s["value"] for s in settings if s["name"] == name)


def _slots(run: engine.Run) -> dict[str, tuple[str, str]]:
    """slot name -> (its keepers' generation, its value)."""
    return {
        p.name: (p.inputs["keepers"]["generation"], engine.reveal(p.outputs["result"]))
        for p in run.of_type(PASSWORD)
        if p.name in SLOTS
    }


def test_an_up_after_the_period_ends_makes_a_new_primary_and_keeps_the_old_one() -> None:
    days = 7
    start = _boundary(days)
    before = _run_at(start - timedelta(seconds=1), scoringKeyRotationDays=days)
    after = _run_at(start + timedelta(seconds=1), scoringKeyRotationDays=days)
    n = Rotation.at(days, start).generation
    old, new = _slots(before), _slots(after)
    # The slot of generation n is regenerated (its keepers change: Pulumi replaces it), the
    # other keeps its keepers, so its value survives the update.
    fresh, kept = SLOTS[n % 2], SLOTS[(n + 1) % 2]
    assert old[fresh][0] != new[fresh][0] == str(n)
    assert old[kept] == new[kept] and old[kept][0] == str(n - 1)
    # primary -> secondary: the key clients used is still accepted after the update
    assert _secret(before, "scoring-key-primary")["value"] == old[kept][1]
    assert _secret(after, "scoring-key-secondary")["value"] == old[kept][1]
    assert _secret(after, "scoring-key-primary")["value"] == new[fresh][1]
    accepted = _secret(after, "appservice-scoring-auth-keys")["value"].split(",")
    assert accepted == [new[fresh][1], old[kept][1]]
    # the endpoints output hands out the new primary
    assert engine.reveal(after.outputs["endpoints"]["app_service"]["auth"]["key"]) == new[fresh][1]
    # App Service refetches its Key Vault references on a configuration change: the rotation is one
    assert _app_setting(before, "SCORING_ROTATION_GENERATION") == str(n - 1)
    assert _app_setting(after, "SCORING_ROTATION_GENERATION") == str(n)
    # every secret of the update expires two periods after the new one began
    expiry = Rotation(days, n).starts(n + 2)
    for name in ("scoring-key-primary", "scoring-key-secondary", "appservice-scoring-auth-keys"):
        assert _secret(after, name)["attributes"] == {"enabled": True, "expires": expiry}, name
        assert _secret(before, name)["attributes"]["expires"] == expiry - days * DAY_SECONDS


def test_runs_within_one_period_change_nothing() -> None:
    start = _boundary(90)
    a = _run_at(start + timedelta(hours=1))
    b = _run_at(start + timedelta(days=89))
    assert _slots(a) == _slots(b)
    for name in ("scoring-key-primary", "scoring-key-secondary"):
        assert _secret(a, name) == _secret(b, name)


def test_every_secret_the_program_writes_has_a_content_type_and_an_expiry(each_stack) -> None:
    now = datetime.now(UTC).timestamp()
    secrets = each_stack.of_type(SECRET)
    assert len(secrets) >= 4
    for s in secrets:
        props = engine.reveal(s.inputs["properties"])
        assert props["contentType"], s.name
        if s.name == "tls-certificate-secret":  # expires with its certificate (test_certificate)
            continue
        expires = props["attributes"]["expires"]
        # after the secondary's lifetime: more than one period ahead, at most two
        assert now + 90 * DAY_SECONDS < expires <= now + 2 * 90 * DAY_SECONDS, s.name
