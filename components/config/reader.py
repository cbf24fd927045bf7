"""Reading stack config: the ``Pulumi.yaml`` schema, typed values, problems collected.

The keys, their types and defaults are declared once, in ``Pulumi.yaml``'s ``config:`` block.
:class:`Reader` reads the raw values through any ``key -> str | None`` lookup, converts them to
their declared type and collects every problem as a :class:`ConfigProblem` (config key, bad
value, fix) instead of raising the first; :class:`SettingsError` carries them all.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import pulumi
import yaml

from components import PROJECT_ROOT
from components.config.regions import REGIONS
from components.config.sizes import SIZES

PROJECT_FILE = PROJECT_ROOT / "Pulumi.yaml"


@dataclass(frozen=True)
class ConfigProblem:
    keys: tuple[str, ...]
    value: str
    problem: str
    fix: str
    as_written: bool = False  # keys as a stack file wrote them (not bare mlscore: keys)

    def __str__(self) -> str:
        keys = ", ".join(k if self.as_written else f"mlscore:{k}" for k in self.keys)
        return f"{keys} = {self.value}: {self.problem}; fix: {self.fix}"


class SettingsError(pulumi.RunError):
    """Every problem found in the stack config, reported together (the CLI prints it without a
    traceback, as a RunError)."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the stack config:\n{lines}")


@dataclass(frozen=True)
class KeySpec:
    name: str
    type: str
    default: Any
    description: str


@cache
def schema() -> dict[str, KeySpec]:
    """The ``config:`` block of Pulumi.yaml, keyed by the bare key name (without ``mlscore:``)."""
    project = yaml.safe_load(PROJECT_FILE.read_text())
    specs: dict[str, KeySpec] = {}
    for full_key, spec in project.get("config", {}).items():
        _, _, name = full_key.partition(":")
        specs[name] = KeySpec(name, spec["type"], spec.get("default"), spec.get("description", ""))
    return specs


def project_name() -> str:
    return str(yaml.safe_load(PROJECT_FILE.read_text())["name"])


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class Reader:
    """Reads raw config strings, converts them to their declared type, and collects problems."""

    def __init__(self, lookup: Callable[[str], str | None]):
        self._lookup = lookup
        self.problems: list[ConfigProblem] = []
        self.values: dict[str, Any] = {}

    def fail(self, keys: str | tuple[str, ...], value: object, problem: str, fix: str) -> None:
        keys = (keys,) if isinstance(keys, str) else keys
        found = ConfigProblem(keys, _show(value), problem, fix)
        if found not in self.problems:  # two sections may read one key (each checks it)
            self.problems.append(found)

    def raw(self, key: str) -> tuple[KeySpec, Any]:
        spec = schema().get(key)
        if spec is None:  # a programming error, not a user one
            raise KeyError(f"mlscore:{key} is read by the settings but not declared in Pulumi.yaml")
        value = self._lookup(key)
        return spec, (spec.default if value is None else value)

    def str(self, key: str) -> str:
        _, value = self.raw(key)
        self.values[key] = str(value)
        return str(value)

    def int(self, key: str) -> int:
        _, value = self.raw(key)
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value).strip()):
            self.fail(key, value, "not a whole number", f"set mlscore:{key} to an integer")
            return 0
        self.values[key] = int(str(value).strip())
        return self.values[key]

    def float(self, key: str) -> float:
        _, value = self.raw(key)
        try:
            number = float(str(value).strip())
            if not math.isfinite(number):
                raise ValueError
        except ValueError:
            self.fail(key, value, "not a number", f"set mlscore:{key} to a decimal such as 1.5")
            return 0.0
        self.values[key] = number
        return number

    def bool(self, key: str) -> bool:
        _, value = self.raw(key)
        text = str(value).strip().lower()
        if isinstance(value, bool):
            return value
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.fail(key, value, "not a boolean", f"set mlscore:{key} to true or false")
        return False

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self.str(key)
        if value not in options:
            self.fail(key, value, "not a supported value", f"use one of {', '.join(options)}")
        return value

    def int_range(self, key: str, low: int, high: int, why: str = "") -> int:
        value = self.int(key)
        if key in self.values and not low <= value <= high:
            reason = f"must be between {low} and {high}" + (f" ({why})" if why else "")
            self.fail(key, value, reason, f"set mlscore:{key} to a value in {low}-{high}")
        return value

    def vm_size(self, key: str) -> str:
        value = self.str(key)
        if value not in SIZES:
            self.fail(
                key,
                value,
                "unknown VM size, so its vCPUs cannot be checked",
                "pick a size listed in components/config/sizes.py (e.g. Standard_D4s_v5), or add "
                "the size with its vCPU count to SIZES there",
            )
        return value

    def region(self, key: str) -> str:
        """An Azure region's programmatic name (components/config/regions.py)."""
        value = self.str(key)
        if value not in REGIONS:
            close = difflib.get_close_matches(value.lower().replace(" ", ""), REGIONS, n=1)
            self.fail(
                key,
                value,
                "not an Azure region (components/config/regions.py lists the public cloud's, "
                "from https://learn.microsoft.com/azure/reliability/regions-list)",
                f"set mlscore:{key} to a region's programmatic name such as "
                f"{close[0] if close else 'westeurope'} (az account list-locations -o table), or "
                "add a region that opened since to REGIONS there",
            )
        return value

    def is_set(self, key: str) -> bool:
        """True when ``key`` has a value other than its default (Pulumi.yaml)."""
        spec, value = self.raw(key)
        return _canonical(value) != _canonical(spec.default)

    def no_effect(self, keys: tuple[str, ...], because: str, fix: str) -> None:
        """Fail each of ``keys`` given a value other than its default: under the options
        chosen the program never uses it (``because`` says which), so the value would be
        accepted and ignored."""
        for key in keys:
            if self.is_set(key):
                self.fail(key, self.raw(key)[1], f"has no effect {because}", fix)

    def matches(self, key: str, value: str, pattern: str, problem: str, fix: str) -> None:
        """Fail ``key`` unless ``value`` matches ``pattern`` whole."""
        if not re.fullmatch(pattern, value):
            self.fail(key, value, problem, fix)


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _canonical(value: Any) -> str:
    """A config value as the CLI hands it to the program (YAML scalars and JSON for lists)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value[:1] in "[{" and value else value
        except ValueError:
            return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


# Namespaces of the providers the program uses (their config is theirs, e.g. azure-native's
# credentials; the CLI hands it to them) and of Pulumi itself.
PROVIDER_NAMESPACES = ("azure-native", "kubernetes", "docker", "random", "pulumi")


# Keys whose default is a promise only another key keeps: containerAppsInternalOnly (true: the
# ingress is internal) only under networkIsolation. For a key the stack file leaves out, the CLI
# hands the program Pulumi.yaml's default as if set ("not found on the stack ... assign the value
# to that stack", mergeConfig in pulumi/pulumi sdk/go/common/workspace/project.go), so only the
# stack file tells "left out" from "set to the default". Written there while the other key is
# off, it is refused whatever its value (settings.NO_EFFECT refuses the other values anywhere).
PROMISES = {
    "containerAppsInternalOnly": (
        "networkIsolation",
        "the Container Apps environment has no VNet, so its ingress is public (HTTPS, bearer key)",
    ),
}


def stack_file_problems(config: Mapping[str, Any], file_name: str) -> list[ConfigProblem]:
    """Keys of a stack file's ``config:`` that nothing would read.

    A key without a namespace: the Pulumi CLI refuses the whole file ("could not parse KEY as a
    configuration key (configuration keys should be of the form `<namespace>:<name>`)",
    ``ParseKey`` in pulumi/pulumi sdk/go/common/resource/config/key.go, which reads every key of
    Pulumi.<stack>.yaml; ``pulumi config set KEY`` alone adds the project's namespace:
    https://github.com/pulumi/pulumi/issues/8603); an offline run would pass it by unread, and
    the sample would be served instead of the model it names. A namespace that is neither the
    project's nor a provider's: the CLI accepts it and nothing reads it. (An undeclared
    ``mlscore:`` key the CLI refuses itself, as the offline engine does.)
    ``azure-native:location`` other than ``mlscore:location``: every resource is placed in
    ``mlscore:location``, so the provider's default would only mislead. A key of ``PROMISES``
    written while the key it needs is off: its value, even the default, would not be kept."""
    project = project_name()
    problems: list[ConfigProblem] = []
    for key, value in config.items():
        namespace, sep, name = str(key).partition(":")
        shown = "<secure>" if isinstance(value, dict) else value
        if not sep or namespace not in (project, *PROVIDER_NAMESPACES):
            why = (
                "has no namespace, so the Pulumi CLI refuses the file and no offline run reads it"
                if not sep
                else f"is in the namespace {namespace!r}, which neither this program nor its "
                "providers read"
            )
            problems.append(_unread(file_name, str(key), shown, why, name if sep else str(key)))
        elif str(key) == "azure-native:location":
            location = config.get(f"{project}:location", schema()["location"].default)
            if value != location:
                problems.append(_unread(file_name, str(key), value, (
                    f"differs from {project}:location ({location}), where the program puts "
                    "every resource"), "location"))  # fmt: skip
        elif sep and namespace == project and name in PROMISES:
            needs, why = PROMISES[name]
            if _canonical(config.get(f"{project}:{needs}", schema()[needs].default)) != "true":
                problems.append(ConfigProblem((str(key),), _show(value), (
                    f"in {file_name}: has no effect with {project}:{needs} false: {why}"),
                    f"remove it from {file_name}, or set {project}:{needs} to true",
                    as_written=True))  # fmt: skip
    return problems


def _unread(file_name: str, key: str, value: Any, why: str, name: str) -> ConfigProblem:
    return ConfigProblem(
        (key,),
        _show(value),
        f"in {file_name}: {why}",
        f"write it as mlscore:{name} (or: pulumi config set {name} <value>, which adds the "
        "namespace)",
        as_written=True,
    )
