"""Settings of the platform every target shares: the model and the scoring host.

Each ``read_*`` takes the :class:`~components.config.reader.Reader`, reads its keys, checks its
rules and returns a frozen dataclass; ``components/settings.py`` assembles them.

The model: ``modelPath`` (a file or a folder), ``entryScript`` (the user's ``score.py``) and
``dependenciesFile`` (pip requirements, or a conda environment file such as the seeds'
``myenv.yml``), paths relative to the project or absolute. All is checked before any resource is
declared: a missing file, a script without ``init()``/``run()``, an unreadable dependencies file,
a conda-only package, a Python the images do not have, a pin the scoring host cannot run with,
and (where the package index answers) a resolution of the host's and the user's requirements
that the image build would fail (``user_env.py``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pulumi

from components import PROJECT_ROOT
from components.config import conda, user_env
from components.config.reader import Reader
from components.config.regions import REGIONS_WITH_ZONES

# The images' Pythons: scoring/Dockerfile has a pinned base stage for each (python-<version>);
# the user's environment picks one (a conda file's python= line, or mlscore:pythonVersion).
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13")
DEFAULT_PYTHON = "3.11"
MAX_CODE_BYTES = 50 * 1024 * 1024  # the entry script's folder goes into the image
REGISTRY_SKUS = ("Basic", "Standard", "Premium")


@dataclass(frozen=True)
class ModelSettings:
    name: str
    version: str
    path: Path | None = None  # the model: a file or a folder (modelPath)
    entry_script: Path | None = None  # the user's score.py (entryScript)
    dependencies_file: Path | None = None  # pip requirements or conda file (dependenciesFile)
    requirements: tuple[str, ...] = ()  # the user's dependencies as pip requirements
    python_version: str = DEFAULT_PYTHON  # the image's Python (python= or pythonVersion)
    # The pre-deploy resolution against the index: "ok", "failed", "skipped: <why>" or "" (none).
    resolution: str = ""
    # The image also carries Azure ML's batch runtime (mlscore:batchEnabled): the build argument
    # BATCH_RUNTIME of scoring/Dockerfile, scoring/requirements-batch.txt in its one resolution.
    batch_runtime: bool = False


@dataclass(frozen=True)
class ScoringSettings:
    image_repository: str
    port: int
    workers: int
    timeout_ms: int
    cache_ttl_seconds: int
    # v1's replica_max_concurrent_requests and max_request_wait_time (AksWebservice): run()
    # calls one worker runs at once, and the longest a request waits for one before its 503.
    max_concurrent: int = 1
    max_request_wait_ms: int = 500


def read_model(r: Reader) -> ModelSettings:
    name, version = r.str("modelName"), r.str("modelVersion")
    r.matches(
        "modelName",
        name,
        r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}",
        "Azure ML model names take letters, digits, '.', '_' and '-', starting with a letter "
        "or digit",
        "rename the model",
    )
    r.matches(
        "modelVersion",
        version,
        r"[A-Za-z0-9][A-Za-z0-9_.-]{0,29}",
        "not a valid model version",
        "use a version such as 1 or 2024.11.1",
    )
    deps = _path(r, "dependenciesFile", optional=True)
    env = user_env.read(deps) if deps else user_env.UserEnv()
    python = read_python(r, env)
    batch = r.bool("batchEnabled")  # the image carries the batch runtime (requirements-batch.txt)
    requirements, resolution = check_dependencies(r, env, python, batch)
    return ModelSettings(
        name,
        version,
        _model_path(r),
        _entry_script(r),
        deps,
        requirements,
        python,
        resolution,
        batch,
    )


def resolve(raw: str) -> Path:
    """A config path: absolute as given, else relative to the project folder."""
    path = Path(raw).expanduser()
    return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()


def _path(r: Reader, key: str, *, optional: bool = False) -> Path | None:
    raw = r.str(key)
    if optional and not raw:
        return None
    path = resolve(raw)
    if not raw or (not path.is_file() and not (key == "modelPath" and path.is_dir())):
        model = key == "modelPath"
        r.fail(
            key,
            raw,
            f"no such {'file or folder' if model else 'file'} (paths are relative to the project "
            "or absolute)",
            "point mlscore:modelPath at the model file or the folder of the model files, e.g. "
            "aml/model/diabetes-ridge/1"
            if model
            else f"point mlscore:{key} at an existing file"
            + (" (or set it to '' for none)" if optional else ""),
        )
        return None
    return path


def _model_path(r: Reader) -> Path | None:
    path = _path(r, "modelPath")
    if path is not None and path.is_dir() and not any(_visible_files(path)):
        r.fail(
            "modelPath",
            r.str("modelPath"),
            "the folder holds no file (hidden files are not part of the model)",
            "point mlscore:modelPath at the model file or at the folder of its files",
        )
        return None
    return path


def _visible_files(root: Path) -> list[Path]:
    return [
        f
        for f in root.rglob("*")
        if f.is_file() and not any(p.startswith(".") for p in f.relative_to(root).parts)
    ]


def _entry_script(r: Reader) -> Path | None:
    path = _path(r, "entryScript")
    if path is None:
        return None
    raw = r.str("entryScript")
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as e:
        r.fail("entryScript", raw, f"not valid Python ({e})", "fix the script's syntax")
        return None
    missing = [f for f in ("init", "run") if f not in _top_level_names(tree)]
    if missing or path.suffix != ".py":
        r.fail(
            "entryScript",
            raw,
            f"an Azure ML entry script is a .py file defining init() and run(); "
            f"missing: {', '.join(missing) or 'the .py suffix'}",
            "define def init(): (load the model) and def run(data): (score) at the top level",
        )
        return None
    size = sum(f.stat().st_size for f in path.parent.rglob("*") if f.is_file())
    if size > MAX_CODE_BYTES:
        r.fail(
            "entryScript",
            raw,
            f"the script's folder (copied into the image) holds {size // 2**20} MB",
            "move the script and the modules it imports to a folder of their own",
        )
    return path


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def read_scoring(r: Reader) -> ScoringSettings:
    scoring = ScoringSettings(
        image_repository=r.str("imageRepository"),
        port=r.int_range("scoringPort", 1024, 65535, "the host runs as a non-root user"),
        workers=r.int_range("scoringWorkers", 1, 32),
        timeout_ms=r.int_range("scoringTimeoutMs", 100, 600_000),
        cache_ttl_seconds=r.int_range("cacheTtlSeconds", 1, 7 * 86400),
        max_concurrent=r.int_range("maxConcurrentRequestsPerContainer", 1, 1000),
        max_request_wait_ms=r.int_range(
            "maxRequestWaitTimeMs", 0, 3_600_000, "0 turns the limit off, as in the host"
        ),
    )
    r.matches(
        "imageRepository",
        scoring.image_repository,
        r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*",
        "not a valid repository name",
        "use lowercase letters, digits and separators, e.g. scoring",
    )
    return scoring


# --- the user's environment: its Python and its dependencies --------------------------------------
_SUPPORTED = ", ".join(PYTHON_VERSIONS)


def read_python(r: Reader, env: user_env.UserEnv) -> str:
    """The image's Python: mlscore:pythonVersion, else the conda file's python= line, else
    :data:`DEFAULT_PYTHON`; refused outside :data:`PYTHON_VERSIONS` (and when both are set and
    disagree). A range (python>=3.9) takes the default if it fits, else its newest fit."""
    key = r.str("pythonVersion").strip()
    if key and key not in PYTHON_VERSIONS:
        fix = f"set mlscore:pythonVersion to one of {_SUPPORTED} (or '' for the default)"
        r.fail("pythonVersion", key, f"the images run Python {_SUPPORTED}", fix)
        return DEFAULT_PYTHON
    if env.python is None:
        return key or DEFAULT_PYTHON
    written, line = env.python
    spec = conda.python_spec(written)
    raw = f"python{written} ({env.file.name if env.file else 'the file'} line {line})"
    if spec is None:
        r.fail("dependenciesFile", raw, "not a Python version", "write e.g. python=3.11")
        return DEFAULT_PYTHON
    fits = [v for v in PYTHON_VERSIONS if any(spec.contains(f"{v}.{n}") for n in range(40))]
    if key and key not in fits:
        r.fail(
            ("pythonVersion", "dependenciesFile"),
            key,
            f"the conda file asks for python{written} (line {line})",
            "set mlscore:pythonVersion to '' (the file decides) or make them agree",
        )
    elif not fits:
        r.fail(
            "dependenciesFile",
            raw,
            f"the images run Python {DEFAULT_PYTHON} by default and any of {_SUPPORTED} that "
            "the file's python= line names; this one names none of them",
            f"name one of {_SUPPORTED} (python=3.10 has wheels of the libraries of the "
            "python=3.8/3.9 era, e.g. scikit-learn 1.2), or remove the python line",
        )
    if key or not fits:
        return key or DEFAULT_PYTHON
    return DEFAULT_PYTHON if DEFAULT_PYTHON in fits else fits[-1]


def check_dependencies(
    r: Reader, env: user_env.UserEnv, python: str, batch: bool = False
) -> tuple[tuple[str, ...], str]:
    """The user's requirements (pip strings, in file order) and the resolution's outcome: the
    host's, with the batch runtime's when ``batch``, and the user's. Every problem names
    mlscore:dependenciesFile, the file's line and the conflict."""
    raw = r.str("dependenciesFile")
    extra = user_env.batch_files(batch)
    host = user_env.host_requirements(user_env.HOST_REQUIREMENTS, *extra)
    problems = [*env.problems, *user_env.host_conflicts(env.lines, host)]
    resolution = ""
    own = ("dependenciesFile", "pythonVersion")
    if (
        (env.lines or batch)
        and not problems
        and not any(k in own for p in r.problems for k in p.keys)
    ):
        res = user_env.resolve(env.lines, python, extra=extra)
        if batch and res.status == "failed" and not res.culprits:  # the runtime, not a line
            _batch_unresolvable(r, res, python)
            return tuple(line.requirement for line in env.lines), res.status
        problems += user_env.resolution_problems(res, python)
        resolution = res.status + (f": {res.detail}" if res.status == "skipped" else "")
        if res.status == "skipped":
            pulumi.log.warn(
                f"mlscore:dependenciesFile ({raw}): the dependencies were not resolved against "
                f"the package index before deploy ({res.detail}); the check was skipped and "
                "the image build resolves them"
            )
    for p in problems:
        r.fail("dependenciesFile", raw, p.problem, p.fix)
    return tuple(line.requirement for line in env.lines), resolution


def _batch_unresolvable(r: Reader, res: user_env.Resolution, python: str) -> None:
    r.fail(
        ("batchEnabled", "pythonVersion"),
        f"true, Python {python}",
        "Azure ML's batch runtime (scoring/requirements-batch.txt: azureml-core and "
        f"azureml-dataset-runtime[fuse]) cannot be installed with the scoring host for Python "
        f"{python}: {res.detail}",
        "pick a Python the batch runtime supports (python= in mlscore:dependenciesFile or "
        "mlscore:pythonVersion; 3.10 to 3.12 today), or set mlscore:batchEnabled to false",
    )


# --- resilience: zones, storage replication, key rotation ----------------------------------------
# Storage redundancy (the SKU is Standard_<this>): "Azure Storage redundancy",
# https://learn.microsoft.com/azure/storage/common/storage-redundancy. The zone-redundant ones
# replicate across the region's availability zones, so they need a region with zones.
STORAGE_REDUNDANCY = ("LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS")
ZONE_REDUNDANT_STORAGE = ("ZRS", "GZRS", "RAGZRS")
# A zone-redundant App Service plan (and Functions Premium plan) runs at least two instances:
# "Reliability in Azure App Service", https://learn.microsoft.com/azure/reliability/reliability-app-service
# ("Enable zone redundancy, which requires your App Service plan to use a minimum of two
# instances"); Functions Premium: https://learn.microsoft.com/azure/reliability/reliability-functions
ZONE_MIN_INSTANCES = 2
DEFAULT_KEY_ROTATION_DAYS = 90  # the Pulumi.yaml default of scoringKeyRotationDays


@dataclass(frozen=True)
class ResilienceSettings:
    zone_redundant: bool = False  # App Service and Functions plans across zones (zoneRedundant)
    storage_redundancy: str = "LRS"  # every storage account's replication (storageRedundancy)
    key_rotation_days: int = DEFAULT_KEY_ROTATION_DAYS  # scoringKeyRotationDays
    region_has_zones: bool = True

    @property
    def storage_sku(self) -> str:
        return f"Standard_{self.storage_redundancy}"


def read_resilience(r: Reader, location: str) -> ResilienceSettings:
    """zoneRedundant, storageRedundancy and scoringKeyRotationDays; zone-redundant values are
    refused in a region without availability zones. The plans' own rules (SKU, instances) are
    checked with :func:`check_zone_plans`."""
    res = ResilienceSettings(
        zone_redundant=r.bool("zoneRedundant"),
        storage_redundancy=r.choice("storageRedundancy", STORAGE_REDUNDANCY),
        key_rotation_days=r.int_range(
            "scoringKeyRotationDays", 1, 365, "a key lives two periods: primary, then secondary"
        ),
        region_has_zones=location in REGIONS_WITH_ZONES,
    )
    zonal = [
        key
        for key, on in (
            ("zoneRedundant", res.zone_redundant),
            ("storageRedundancy", res.storage_redundancy in ZONE_REDUNDANT_STORAGE),
        )
        if on
    ]
    if zonal and not res.region_has_zones:
        r.fail(
            ("location", *zonal),
            location,
            f"{' and '.join(zonal)} ask for availability zones, and {location} has none (or is "
            "not in the list of regions with zones, components/platform/settings.py, from "
            "learn.microsoft.com/azure/reliability/regions-list)",
            "pick a region with availability zones (e.g. westeurope, swedencentral, eastus2), or "
            "set mlscore:zoneRedundant to false and mlscore:storageRedundancy to LRS or GRS",
        )
    elif res.zone_redundant and res.storage_redundancy in ("LRS", "GRS", "RAGRS"):
        r.fail(
            ("zoneRedundant", "storageRedundancy"),
            res.storage_redundancy,
            "zone-redundant plans with storage in one zone: the Functions host and the data "
            "would not survive the zone the plans survive",
            f"set mlscore:storageRedundancy to one of {', '.join(ZONE_REDUNDANT_STORAGE)}",
        )
    return res


# (sku key, sku), (instance count key, count), the SKUs that support zones: one plan's zone facts
ZonePlan = tuple[tuple[str, str], tuple[str, int], tuple[str, ...]]


def check_zone_plans(r: Reader, zone_redundant: bool, plans: Iterable[ZonePlan | None]) -> None:
    """With zoneRedundant, each plan (None: not deployed) needs a SKU that supports zones and
    at least :data:`ZONE_MIN_INSTANCES` instances."""
    for plan in plans if zone_redundant else ():
        if plan is None:
            continue
        (sku_key, sku), (count_key, count), zone_skus = plan
        if sku not in zone_skus:
            r.fail(
                ("zoneRedundant", sku_key),
                sku,
                "this plan SKU does not support zone redundancy",
                f"use one of {', '.join(zone_skus)}, or set mlscore:zoneRedundant to false",
            )
        if count < ZONE_MIN_INSTANCES:
            r.fail(
                ("zoneRedundant", count_key),
                count,
                f"a zone-redundant plan runs at least {ZONE_MIN_INSTANCES} instances",
                f"set mlscore:{count_key} to {ZONE_MIN_INSTANCES} or more",
            )
