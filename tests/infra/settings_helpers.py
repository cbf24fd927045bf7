"""Settings built from the real stack files plus overrides, as the CLI would assemble them."""

from __future__ import annotations

from typing import Any

import pytest

from components import settings as cfg
from preview import engine


def load(stack: str = "dev", **overrides: Any) -> cfg.Settings:
    config, _ = engine.stack_config(stack, overrides)
    values = {k.split(":", 1)[1]: v for k, v in config.items()}
    return cfg.load(values.get, project="mlscore", stack=stack)


def problems(stack: str = "dev", **overrides: Any) -> list[cfg.ConfigProblem]:
    with pytest.raises(cfg.SettingsError) as err:
        load(stack, **overrides)
    return err.value.problems


def keys_of(found: list[cfg.ConfigProblem]) -> set[str]:
    return {k for p in found for k in p.keys}
