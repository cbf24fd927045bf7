"""The outputs contract clients read, and a scan for plaintext secrets in both stacks.

The scan collects every secret value the fake Azure handed out (scoring keys and any other
random password, every ``list*Keys`` answer: Redis, storage, function host keys; the registry's
refresh token) and then walks every resource input (app settings, container environments,
everything) and every stack output: a secret may only appear inside a value marked secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from preview import engine, fakes

ENTRY_KEYS = {"scoring_uri", "swagger_uri", "health_uri", "auth"}
TARGET_OUTPUTS = {
    "app_service": "appServiceEnabled",
    "aci": "aciEnabled",
    "container_apps": "containerAppsEnabled",
}


SECRET_FIELD_WORDS = ("key", "secret", "password", "connectionstring", "token", "sas")


def _secret_strings(value: Any, field: str = "") -> Iterator[str]:
    """Strings of a list-keys answer held in fields named like secrets (not e.g. ``rights``)."""
    if isinstance(value, str):
        if any(w in field.lower() for w in SECRET_FIELD_WORDS) and len(value) >= 16:
            yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _secret_strings(v, f"{field}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from _secret_strings(v, field)


def secret_values(run: engine.Run) -> dict[str, str]:
    """Every secret the fake Azure gave the program: value -> where it came from."""
    found: dict[str, str] = {}
    for r in run.of_type("random:index/randomPassword:RandomPassword"):
        found[str(engine.reveal(r.outputs["result"]))] = f"random password {r.name}"
    for token, args in run.calls:
        if token == "acr:oauth2/exchange":
            found[fakes.fake_secret(f"acr-refresh:{args['service']}")] = "registry refresh token"
        elif token.split(":")[-1].startswith("list") and token in fakes.CALLS:
            for s in _secret_strings(fakes.CALLS[token](args)):
                found[s] = f"{token} {args.get('name', '')}"
    return found


def plaintext(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, string) of every string NOT inside a value marked secret."""
    if isinstance(value, engine.Secret):
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from plaintext(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from plaintext(v, f"{path}[{i}]")


def leaks(run: engine.Run) -> list[str]:
    secrets = secret_values(run)
    where = [(f"{r.type} {r.name} inputs", r.inputs) for r in run.resources if r.custom] + [
        ("stack outputs", run.outputs)
    ]
    found = []
    for label, value in where:
        for path, text in plaintext(value, label):
            for secret, origin in secrets.items():
                if secret in text:
                    found.append(f"{origin} in plain text at {path}")
    return found


def test_the_scan_knows_every_kind_of_secret(each_stack) -> None:
    origins = " ".join(secret_values(each_stack).values())
    assert "scoring-key-primary" in origins and "scoring-key-secondary" in origins
    assert "azure-native:redis:listRedisKeys" not in origins  # Managed Redis: no key is read
    assert "registry refresh token" in origins


def test_the_scan_finds_a_planted_secret(dev) -> None:
    secret = next(iter(secret_values(dev)))
    planted = engine.Run(stack="dev", preview=False, resources=dev.resources, calls=dev.calls)
    planted.outputs = {**dev.outputs, "oops": {"key": f"Bearer {secret}"}}
    assert [x for x in leaks(planted) if "stack outputs.oops.key" in x]


def test_no_plaintext_secret_in_any_setting_environment_or_output(each_stack) -> None:
    assert leaks(each_stack) == []


def test_app_settings_and_container_env_hold_no_secret_value(each_stack) -> None:
    """The narrow form of the scan, on what the brief names: app settings and container env."""
    secrets = secret_values(each_stack)
    for app in each_stack.of_type("azure-native:web:WebApp"):
        raw = app.inputs["siteConfig"]["appSettings"]
        for setting in engine.reveal(raw):
            assert not any(s in str(setting["value"]) for s in secrets), (app.name, setting["name"])
    for group in each_stack.of_type("azure-native:containerinstance:ContainerGroup"):
        for c in engine.reveal(group.inputs["containers"]):
            for var in c.get("environmentVariables", []):
                if "value" in var:
                    assert not any(s in str(var["value"]) for s in secrets), var["name"]


def test_every_endpoint_entry_follows_the_contract(each_stack) -> None:
    endpoints = each_stack.outputs["endpoints"]
    assert endpoints, "at least one target is on in every stack"
    for name, ep in endpoints.items():
        assert set(ep) >= ENTRY_KEYS, name
        assert ep["scoring_uri"].endswith("/score"), name
        assert ep["scoring_uri"].startswith(("https://", "http://")), name
        if ep["swagger_uri"] is not None:
            assert ep["swagger_uri"] == ep["scoring_uri"].removesuffix("/score") + "/swagger.json"
        assert ep["auth"]["scheme"] in {"bearer-key", "function-key", "aml-key", "none"}, name
        if "key" in ep["auth"]:
            assert isinstance(ep["auth"]["key"], engine.Secret), name


def test_uris_are_built_from_the_right_hosts(dev) -> None:
    (app,) = [
        r
        for r in dev.of_type("azure-native:web:WebApp")
        if r.azure_name.startswith("mlscore-dev-app-")
    ]
    group = dev.one("azure-native:containerinstance:ContainerGroup")
    eps = dev.outputs["endpoints"]
    assert eps["app_service"]["scoring_uri"] == f"https://{app.outputs['defaultHostName']}/score"
    assert eps["aci"]["scoring_uri"] == f"http://{group.outputs['ipAddress']['fqdn']}:5001/score"
    assert eps["app_service"]["scoring_uri"] != eps["aci"]["scoring_uri"]


def test_redis_output_is_host_and_port_only(each_stack) -> None:
    redis = each_stack.one("azure-native:redisenterprise:RedisEnterprise")
    assert each_stack.outputs["redis"] == {"host": redis.outputs["hostName"], "port": 10000}
    assert redis.outputs["hostName"] == f"{redis.azure_name}.westeurope.redis.azure.net"


@pytest.mark.parametrize(("entry", "key"), sorted(TARGET_OUTPUTS.items()))
def test_a_switched_off_target_has_no_entry_and_no_resources(run_stack, entry, key) -> None:
    run = run_stack("dev", **{key: False})
    assert run.error is None, run.error
    assert entry not in run.outputs["endpoints"]
    assert set(run.outputs["endpoints"]) >= set(TARGET_OUTPUTS) - {entry}
    component = {
        "app_service": "mlscore:target:AppService",
        "aci": "mlscore:target:Aci",
        "container_apps": "mlscore:target:ContainerApps",
    }[entry]
    assert [r for r in run.resources if r.type == component] == []
    assert leaks(run) == []
