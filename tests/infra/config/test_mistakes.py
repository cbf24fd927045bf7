"""Configuration mistakes are refused before any resource, naming the key and the fix: keys a
stack file holds that nothing would read, an unknown region, keys the options chosen leave
unused; and every example of the README is true (its keys exist, its commands parse)."""

from __future__ import annotations

import argparse
import re
import runpy
import shlex
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import PROJECT_ROOT
from components import settings as cfg
from components.config.reader import schema, stack_file_problems
from components.config.regions import REGIONS, REGIONS_WITH_ZONES
from components.config.sizes import FPGA_REGIONS
from components.targets.container_apps.settings import GPU_REGIONS
from preview import engine
from tests.infra.settings_helpers import keys_of, load, problems

README = (PROJECT_ROOT / "README.md").read_text()


# --- keys of a stack file that nothing would read --------------------------------------------
def _stack_file(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "Pulumi.mine.yaml"
    path.write_text(yaml.safe_dump({"config": {"mlscore:location": "westeurope", **config}}))
    return path


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("modelPath", "has no namespace"),  # the case: the sample served instead
        ("mlscroe:modelPath", "namespace 'mlscroe'"),
        ("azure-native:location", "differs from mlscore:location (westeurope)"),
    ],
)
def test_a_key_nothing_would_read_is_refused_before_the_run(
    tmp_path: Path, key: str, says: str
) -> None:
    path = _stack_file(tmp_path, {key: "eastus"})
    with pytest.raises(engine.StackConfigError) as refused:  # preview, demo, client
        engine.stack_config("mine", stack_file=path)
    message = str(refused.value)
    assert f"{key} = 'eastus': in Pulumi.mine.yaml: " in message and says in message
    assert f"write it as mlscore:{key.rpartition(':')[2]}" in message


def test_provider_keys_and_a_matching_provider_location_are_accepted(tmp_path: Path) -> None:
    config = {"azure-native:location": "westeurope", "azure-native:subscriptionId": "0000"}
    assert stack_file_problems({"mlscore:location": "westeurope", **config}, "f") == []
    config, _ = engine.stack_config("mine", stack_file=_stack_file(tmp_path, config))
    assert config["azure-native:subscriptionId"] == "0000"


def test_a_real_run_checks_its_stack_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pulumi up hands the program pulumi.Config only: the program reads its stack file."""
    (tmp_path / "Pulumi.real.yaml").write_text("config:\n  mlscroe:aksEnabled: false\n")
    monkeypatch.setattr(cfg, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(cfg.stand_ins, "offline_engine", lambda: False)
    monkeypatch.setattr(cfg.pulumi, "get_stack", lambda: "real")
    monkeypatch.setattr(cfg.pulumi, "Config", lambda: types.SimpleNamespace(get=lambda _: None))
    with pytest.raises(cfg.SettingsError) as refused:
        cfg.from_pulumi()
    (problem,) = refused.value.problems
    assert problem.keys == ("mlscroe:aksEnabled",) and "mlscore:aksEnabled" in problem.fix


# --- regions -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("region", "hint"), [("mars", "westeurope"), ("westeurop", "westeurope")])
def test_an_unknown_region_is_refused_with_a_near_name(region: str, hint: str) -> None:
    (problem,) = problems(location=region)
    assert problem.keys == ("location",) and "not an Azure region" in problem.problem
    assert f"such as {hint}" in problem.fix and "components/config/regions.py" in problem.problem


def test_every_region_the_program_names_is_a_region() -> None:
    named = REGIONS_WITH_ZONES | FPGA_REGIONS | {r for rs in GPU_REGIONS.values() for r in rs}
    assert named <= REGIONS, named - REGIONS
    for stack in engine.stacks():
        assert load(stack).location in REGIONS


# --- keys that have no effect under the options chosen ------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"redisCapacity": 2}, "redisCapacity"),  # dev: Azure Managed Redis, sized by its SKU
        ({"redisFamily": "P"}, "redisFamily"),
        (
            {"redisHost": "c.westeurope.redis.azure.net", "redisPort": 10000, "redisCapacity": 1},
            "redisCapacity",
        ),
        ({"redisEnabled": False, "redisHost": "c.westeurope.redis.azure.net"}, "redisHost"),
        ({"redisEnabled": False, "cacheTtlSeconds": 60}, "cacheTtlSeconds"),
        ({"alertEmailReceivers": "oncall@example.com"}, "alertEmailReceivers"),  # dev: off
        ({"alert5xxPercent": 2}, "alert5xxPercent"),
        ({"dataCollectionEnabled": False, "dataCollectionSamplingRate": 0.5},
         "dataCollectionSamplingRate"),
        ({"subnetAci": "10.20.5.0/27"}, "subnetAci"),  # dev: no network isolation
        ({"aksTlsPfxPath": "certs/x.pfx"}, "aksTlsPfxPath"),  # dev: plain HTTP
    ],
)  # fmt: skip
def test_a_key_with_no_effect_under_the_options_chosen_is_refused(
    overrides: dict[str, Any], key: str
) -> None:
    found = problems(**overrides)
    assert keys_of(found) == {key}, found
    assert "has no effect with mlscore:" in found[0].problem or "has no effect with Azure" in (
        found[0].problem
    )


def test_the_same_keys_are_accepted_where_they_act_or_at_their_default() -> None:
    load("dev", redisService="azure-cache", redisSku="Premium", redisFamily="P", redisCapacity=1,
         redisPort=6380)  # fmt: skip
    load("dev", redisCapacity=schema()["redisCapacity"].default)
    load("prod", alert5xxPercent=2, dataCollectionSamplingRate=0.5, subnetAci="10.20.5.0/27")


# --- the README's examples ----------------------------------------------------------------------
def _examples() -> tuple[list[str], list[list[str]]]:
    """(every ``pulumi config set`` key, every fenced ``python -m`` command's words)."""
    fenced = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", README, re.S))
    lines = [line.strip() for line in re.sub(r"\\\n\s*", " ", fenced).splitlines()]
    lines += re.findall(r"`(pulumi config set [^`]*)`", README)
    keys, commands = [], []
    for line in lines:
        for part in re.split(r"\s*(?:&&|;)\s*", line.split(" #", 1)[0]):
            if part.startswith("pulumi config set "):
                words = [w for w in shlex.split(part)[3:] if not w.startswith("--")]
                keys.append(words[1] if part.split()[3:4] == ["--stack"] else words[0])
            elif re.match(r"(\.venv/bin/)?python -m ", part):
                commands.append(shlex.split(part)[2:])
    return keys, commands


def test_every_readme_config_key_is_declared_in_pulumi_yaml() -> None:
    keys, _ = _examples()
    assert len(keys) >= 20
    for key in keys:
        namespace, _, name = key.rpartition(":")
        assert namespace in ("", "mlscore") and name in schema(), f"README: {key}"


class _Parsed(Exception):
    pass


def test_every_readme_python_m_command_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command runs up to its argument parser, which must accept it; nothing runs after."""
    _, commands = _examples()
    assert {c[0] for c in commands} >= {"preview", "scoring.demo", "migrate"}
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *a: Any, **kw: Any) -> Any:
        parse(self, *a, **kw)  # a bad command line exits 2 here
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    for module, *args in commands:
        monkeypatch.setattr(sys, "argv", [module, *args])
        for loaded in (module, f"{module}.__main__"):  # runpy runs a fresh copy, warning-free
            monkeypatch.delitem(sys.modules, loaded, raising=False)
        with pytest.raises(_Parsed):
            runpy.run_module(module, run_name="__main__", alter_sys=False)
