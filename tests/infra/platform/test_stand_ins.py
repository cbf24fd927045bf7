"""Stand-ins (components/config/stand_ins.py): the values Pulumi.prod.yaml ships for the offline
preview are refused, all at once and by key, whenever the program runs for real (``pulumi up`` or a
real ``pulumi preview``: no offline engine marker); the offline engine's runs accept them."""

from __future__ import annotations

import ipaddress

import pytest

from components import settings as cfg
from components.config import stand_ins
from components.platform.network_settings import NOT_PUBLIC
from preview import engine
from preview.engine import ROOT
from tests.infra.settings_helpers import keys_of
from tests.infra.targets.aks.pfx import write_pfx, yesterday

STAND_IN_KEYS = {
    "deployerIpRanges",
    "iotHubIpFilter",
    "aksTlsHost",
    "alertEmailReceivers",
    "aksTlsPfxPath",
}


@pytest.mark.parametrize("preview", [False, True], ids=["pulumi-up", "real-preview"])
def test_a_real_run_of_prod_refuses_every_stand_in_at_once(preview: bool) -> None:
    run = engine.run("prod", preview=preview, offline=False)
    assert isinstance(run.error, cfg.SettingsError), run.error
    assert keys_of(run.problems) == STAND_IN_KEYS
    assert run.resources == []  # refused before any resource is declared
    text = str(run.error)
    for value in ("203.0.113.0/24", "198.51.100.0/24", "scoring.mlscore.example.com"):
        assert value in text


def test_the_offline_engine_marks_its_runs_and_accepts_the_stand_ins(prod: engine.Run) -> None:
    assert prod.error is None  # the same stack file, with the engine's marker
    config, _ = engine.stack_config("prod")
    assert stand_ins.OFFLINE_ENGINE[0] not in config  # the marker is the engine's, not the file's


def test_a_real_run_with_real_values_is_not_refused(tmp_path) -> None:
    pfx = write_pfx(
        tmp_path / "scoring.pfx", "scoring.contoso.com", password="pw", not_before=yesterday()
    )
    config, _ = engine.stack_config(
        "prod",
        {
            "deployerIpRanges": "52.174.10.0/28",
            "iotHubIpFilter": "20.50.1.0/24",
            "aksTlsHost": "scoring.contoso.com",
            "aksTlsPfxPath": str(pfx),
            "aksTlsPfxPassword": "pw",
            "alertEmailReceivers": "oncall@contoso.com",
        },
    )
    values = {k.split(":", 1)[1]: v for k, v in config.items()}
    s = cfg.load(values.get, project="mlscore", stack="prod", real_run=True)
    assert s.aks.ingress.certificate is not None
    assert s.aks.ingress.certificate.covers("scoring.contoso.com")


@pytest.mark.parametrize(
    "value", ["192.0.2.7", "198.51.100.0/24", "203.0.113.0/25", "203.0.0.0/16", "2001:db8::/48"]
)
def test_documentation_ranges(value: str) -> None:
    assert stand_ins.documentation_range(value)


@pytest.mark.parametrize("value", ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"])
def test_the_allow_lists_own_check_lets_documentation_ranges_through(value: str) -> None:
    # why a separate rule: not global, yet outside the allow-lists' list of non-public ranges
    net = ipaddress.IPv4Network(value)
    assert not net.is_global
    assert not any(net.subnet_of(p) or p.subnet_of(net) for p in NOT_PUBLIC)


@pytest.mark.parametrize("value", ["52.174.10.0/28", "20.50.1.7", "2a01:111::/32", "not an ip"])
def test_public_ranges_are_not_stand_ins(value: str) -> None:
    assert not stand_ins.documentation_range(value)


@pytest.mark.parametrize(
    ("host", "reserved"),
    [
        ("scoring.mlscore.example.com", True),
        ("example.org", True),
        ("a.example.net.", True),
        ("scoring.test", True),
        ("x.invalid", True),
        ("api.localhost", True),
        ("scoring.contoso.com", False),
        ("myexample.com", False),
        ("example.com.au", False),
    ],
)
def test_reserved_domains(host: str, reserved: bool) -> None:
    assert stand_ins.reserved_domain(host) is reserved


def test_a_stack_file_cannot_carry_the_offline_engines_marker(tmp_path) -> None:
    # set in a stack file, the marker would make `pulumi up` accept the stand-ins: every offline
    # run (the pull request's preview) refuses such a file
    text = (ROOT / "Pulumi.prod.yaml").read_text()
    key, value = stand_ins.OFFLINE_ENGINE
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(text + f"  {key}: {value}\n")
    with pytest.raises(engine.StackConfigError, match=key):
        engine.stack_config("prod", stack_file=path)
