"""The IoT Edge deployment manifest builder: the documented structure, module settings, routes,
and properties over generated module names and env values (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.targets.iot.manifest import (
    CREATE_OPTIONS_CHUNK,
    DEFAULT_RUNTIME_VERSION,
    EdgeManifestSpec,
    EdgeModule,
    ManifestError,
    RegistryCredential,
    build_modules_content,
    create_options,
    runtime_only_modules_content,
)

IMAGE = "acr1.azurecr.io/scoring@sha256:" + "a" * 64


def spec(**overrides) -> EdgeManifestSpec:
    base = {
        "modules": (EdgeModule("scoring", IMAGE, {"MODEL_NAME": "diabetes-ridge"}, {5001: 5001}),),
        "registries": {"scoringregistry": RegistryCredential("acr1.azurecr.io", "tok", "pw")},
    }
    return EdgeManifestSpec(**{**base, **overrides})


def test_top_level_is_the_two_runtime_module_twins():
    content = build_modules_content(spec())
    assert set(content) == {"$edgeAgent", "$edgeHub"}
    assert set(content["$edgeAgent"]) == {"properties.desired"}
    assert set(content["$edgeHub"]) == {"properties.desired"}


def test_edge_agent_desired_properties_as_documented():
    agent = build_modules_content(spec())["$edgeAgent"]["properties.desired"]
    assert set(agent) == {"schemaVersion", "runtime", "systemModules", "modules"}
    assert agent["schemaVersion"] == "1.1"
    assert agent["runtime"] == {
        "type": "docker",
        "settings": {
            "registryCredentials": {
                "scoringregistry": {
                    "address": "acr1.azurecr.io",
                    "username": "tok",
                    "password": "pw",
                }
            }
        },
    }
    system = agent["systemModules"]
    assert system["edgeAgent"] == {
        "type": "docker",
        "settings": {
            "image": f"mcr.microsoft.com/azureiotedge-agent:{DEFAULT_RUNTIME_VERSION}",
            "createOptions": "",
        },
    }
    hub = system["edgeHub"]
    assert hub["type"] == "docker" and hub["status"] == "running"
    assert hub["restartPolicy"] == "always" and hub["startupOrder"] == 0
    assert hub["settings"]["image"] == "mcr.microsoft.com/azureiotedge-hub:1.6"
    bindings = json.loads(hub["settings"]["createOptions"])["HostConfig"]["PortBindings"]
    assert bindings == {f"{p}/tcp": [{"HostPort": str(p)}] for p in (443, 5671, 8883)}


def test_the_scoring_module_settings():
    module = build_modules_content(spec())["$edgeAgent"]["properties.desired"]["modules"]["scoring"]
    assert module == {
        "version": "1.0",
        "type": "docker",
        "status": "running",
        "restartPolicy": "always",
        "startupOrder": 1,
        "settings": {
            "image": IMAGE,
            "createOptions": '{"HostConfig":{"PortBindings":{"5001/tcp":[{"HostPort":"5001"}]}}}',
        },
        "env": {"MODEL_NAME": {"value": "diabetes-ridge"}},
    }
    assert isinstance(module["settings"]["createOptions"], str)  # a JSON string, not an object


def test_edge_hub_routes_and_store_and_forward():
    hub = build_modules_content(spec(store_and_forward_ttl_seconds=600))["$edgeHub"][
        "properties.desired"
    ]
    assert hub == {
        "schemaVersion": "1.1",
        "routes": {
            "scoringToUpstream": {
                "route": "FROM /messages/modules/scoring/outputs/* INTO $upstream",
                "priority": 0,
                "timeToLiveSecs": 600,
            }
        },
        "storeAndForwardConfiguration": {"timeToLiveSecs": 600},
    }


def test_custom_routes_and_runtime_version():
    content = build_modules_content(
        spec(routes={"all": "FROM /messages/* INTO $upstream"}, runtime_version="1.6.2")
    )
    assert list(content["$edgeHub"]["properties.desired"]["routes"]) == ["all"]
    agent = content["$edgeAgent"]["properties.desired"]["systemModules"]["edgeAgent"]
    assert agent["settings"]["image"].endswith(":1.6.2")


def test_long_create_options_continue_in_numbered_fields():
    many = {p: p for p in range(6000, 6040)}
    module = build_modules_content(spec(modules=(EdgeModule("scoring", IMAGE, {}, many),)))[
        "$edgeAgent"
    ]["properties.desired"]["modules"]["scoring"]["settings"]
    parts = [module["createOptions"]] + [
        module[k] for k in sorted(module) if k.startswith("createOptions0")
    ]
    assert len(parts) > 1 and all(len(p) <= CREATE_OPTIONS_CHUNK for p in parts)
    assert "".join(parts) == create_options(many)


def test_removal_manifest_keeps_only_the_runtime():
    content = runtime_only_modules_content("1.6", 60)
    agent = content["$edgeAgent"]["properties.desired"]
    assert agent["modules"] == {} and set(agent["systemModules"]) == {"edgeAgent", "edgeHub"}
    assert content["$edgeHub"]["properties.desired"]["routes"] == {}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"modules": ()}, "at least one module"),
        ({"modules": (EdgeModule("$scoring", IMAGE),)}, "module name"),
        ({"modules": (EdgeModule("edgeHub", IMAGE),)}, "module name"),
        ({"modules": (EdgeModule("a b", IMAGE),)}, "module name"),
        ({"modules": (EdgeModule("s", IMAGE), EdgeModule("s", IMAGE))}, "repeat"),
        ({"modules": (EdgeModule("s", IMAGE, restart_policy="sometimes"),)}, "restartPolicy"),
        ({"modules": (EdgeModule("s", IMAGE, status="paused"),)}, "status"),
        ({"modules": (EdgeModule("s", IMAGE, {"1BAD": "x"}),)}, "environment variable"),
        ({"modules": (EdgeModule("s", IMAGE, {"N": 5}),)}, "must be a string"),
        ({"modules": (EdgeModule("s", IMAGE, port_bindings={5001: 443}),)}, "edge hub"),
        ({"runtime_version": "latest"}, "runtime version"),
        ({"store_and_forward_ttl_seconds": 0}, "timeToLiveSecs"),
        ({"routes": {"r": "to the cloud"}}, "FROM <source> INTO <sink>"),
    ],
)
def test_invalid_manifests_are_refused_with_the_reason(bad, message):
    with pytest.raises(ManifestError, match=message.replace("$", r"\$")):
        build_modules_content(spec(**bad))


# --- properties ----------------------------------------------------------------------------------
MODULE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-:.+%_#*?!(),=@'"
module_names = st.text(alphabet=MODULE_CHARS, min_size=1, max_size=128).filter(
    lambda n: n not in ("edgeAgent", "edgeHub")
)
env_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
env_values = st.text(max_size=200)  # any Unicode, quotes, newlines, braces...


@settings(max_examples=150, deadline=None)
@given(name=module_names, env=st.dictionaries(env_names, env_values, max_size=8))
def test_any_valid_module_name_and_env_round_trips_through_json(name, env):
    content = build_modules_content(spec(modules=(EdgeModule(name, IMAGE, env, {5001: 5001}),)))
    again = json.loads(json.dumps(content))  # what goes over the wire
    module = again["$edgeAgent"]["properties.desired"]["modules"][name]
    assert {k: v["value"] for k, v in module["env"].items()} == env
    assert json.loads(module["settings"]["createOptions"]) == {
        "HostConfig": {"PortBindings": {"5001/tcp": [{"HostPort": "5001"}]}}
    }
    route = again["$edgeHub"]["properties.desired"]["routes"][f"{name}ToUpstream"]["route"]
    assert route == f"FROM /messages/modules/{name}/outputs/* INTO $upstream"


@settings(max_examples=100, deadline=None)
@given(name=st.text(min_size=1, max_size=20).filter(lambda n: not n.isascii() or " " in n))
def test_names_outside_the_module_id_alphabet_are_refused(name):
    with pytest.raises(ManifestError, match="module name"):
        build_modules_content(spec(modules=(EdgeModule(name, IMAGE),)))


@settings(max_examples=60, deadline=None)
@given(names=st.lists(module_names, min_size=1, max_size=5, unique=True))
def test_every_module_gets_its_own_entry_and_route(names):
    modules = tuple(EdgeModule(n, IMAGE, startup_order=i + 1) for i, n in enumerate(names))
    content = build_modules_content(spec(modules=modules))
    assert list(content["$edgeAgent"]["properties.desired"]["modules"]) == names
    routes = content["$edgeHub"]["properties.desired"]["routes"]
    assert len(routes) == len(names)
