"""Versions with support windows (issue 30): the Kubernetes minor and the Istio add-on revision
default to the platform's choice, and a pinned one is checked against the dated calendars in
components/targets/aks/settings/versions.py at the settings' injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from components.config.reader import Reader
from components.targets.aks import settings as aks_settings
from components.targets.aks.settings import versions
from preview import engine
from tests.infra.settings_helpers import keys_of


def read(when: datetime, **overrides: Any) -> Reader:
    config, _ = engine.stack_config("prod", overrides)
    values = {k.split(":", 1)[1]: v for k, v in config.items()}
    r = Reader(values.get)
    aks_settings.read(r, "westeurope", clock=lambda: when)
    return r


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("version", "ok_on", "refused_on"),
    [
        ("1.33", at(2026, 7, 31), at(2026, 8, 1)),  # end of life: July 2026 (its last day)
        ("1.34.2", at(2026, 5, 1), at(2026, 12, 6)),
        ("1.36", at(2026, 12, 6), at(2027, 7, 1)),
    ],
)
def test_a_pinned_kubernetes_minor_is_checked_at_the_clock(
    version: str, ok_on: datetime, refused_on: datetime
) -> None:
    assert not read(ok_on, aksKubernetesVersion=version).problems
    found = read(refused_on, aksKubernetesVersion=version).problems
    assert keys_of(found) == {"aksKubernetesVersion"}
    assert "support ended" in found[0].problem


def test_a_minor_before_its_aks_ga_is_refused_and_one_past_the_calendar_is_left_to_aks() -> None:
    assert keys_of(read(at(2026, 1, 1), aksKubernetesVersion="1.36").problems) == {
        "aksKubernetesVersion"
    }
    assert not read(at(2027, 12, 1), aksKubernetesVersion="1.40").problems


@pytest.mark.parametrize("when", [at(2026, 12, 6), at(2027, 12, 6), at(2030, 1, 1)])
def test_the_defaults_are_the_platforms_and_deploy_on_any_date(when: datetime) -> None:
    assert not read(when).problems  # Pulumi.yaml: both empty


def test_a_pinned_istio_revision_is_refused_after_its_end_of_life() -> None:
    assert not read(at(2026, 5, 31), aksIstioRevision="asm-1-27").problems
    found = read(at(2026, 6, 1), aksIstioRevision="asm-1-27").problems
    assert keys_of(found) == {"aksIstioRevision"}
    assert "end of life on 31 May 2026" in found[0].problem


def test_the_manifests_schema_minor_follows_the_calendar() -> None:
    assert versions.default_minor(date(2026, 12, 6)) == "1.35"  # 1.34 ended 30 Nov 2026
    assert versions.default_minor(date(2026, 6, 1)) == "1.33"
    assert versions.default_minor(date(2031, 1, 1)) == "1.37"  # past the calendar: newest listed
