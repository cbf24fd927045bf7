"""Settings of the platform every target shares: the model and the scoring host.

Each ``read_*`` takes the :class:`~components.config.reader.Reader`, reads its keys, checks its
rules and returns a frozen dataclass; ``components/settings.py`` assembles them.

The model: ``modelPath`` (a file or a folder), ``entryScript`` (the user's ``score.py``) and
``dependenciesFile`` (pip requirements, or a conda environment file such as the seeds'
``myenv.yml``), paths relative to the project or absolute. All is checked before any resource is
declared: a missing file, a script without ``init()``/``run()``, an unreadable dependencies file,
a conda-only package, a pin the scoring host cannot run with.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from components import PROJECT_ROOT
from components.config.reader import Reader
from components.config.regions import REGIONS_WITH_ZONES

HOST_REQUIREMENTS = PROJECT_ROOT / "scoring" / "requirements.txt"
PYTHON_VERSION = "3.11"  # the images' interpreter (scoring/Dockerfile, functions.Dockerfile)
MAX_CODE_BYTES = 50 * 1024 * 1024  # the entry script's folder goes into the image

# Conda packages whose PyPI name differs.
CONDA_TO_PIP = {
    "pytorch": "torch",
    "py-xgboost": "xgboost",
    "msgpack-python": "msgpack",
    "matplotlib-base": "matplotlib",
    "py-opencv": "opencv-python",
    "pytables": "tables",
    "pillow-simd": "pillow",
}
# Conda packages with no pip equivalent (system libraries, CUDA, compilers, conda itself).
CONDA_ONLY = frozenset(
    {
        "cudatoolkit", "cudnn", "nccl", "pytorch-cuda", "cuda-toolkit", "cuda-nvcc", "mkl",
        "mkl-include", "blas", "libblas", "libcblas", "liblapack", "openblas", "libopenblas",
        "libgcc", "libgcc-ng", "libstdcxx-ng", "libgfortran-ng", "_libgcc_mutex",
        "_openmp_mutex", "openssl", "ca-certificates", "libffi", "zlib", "readline", "tk",
        "xz", "sqlite", "ncurses", "ld_impl_linux-64", "gcc", "gxx", "gfortran", "make",
        "conda", "nomkl", "ffmpeg", "r-base", "graphviz", "libxgboost",
    }
)  # fmt: skip
IGNORED_CONDA = frozenset({"python", "pip", "setuptools", "wheel"})
REGISTRY_SKUS = ("Basic", "Standard", "Premium")


@dataclass(frozen=True)
class ModelSettings:
    name: str
    version: str
    path: Path | None = None  # the model: a file or a folder (modelPath)
    entry_script: Path | None = None  # the user's score.py (entryScript)
    dependencies_file: Path | None = None  # pip requirements or conda file (dependenciesFile)
    requirements: tuple[str, ...] = ()  # the user's dependencies as pip requirements


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
    return ModelSettings(
        name,
        version,
        _model_path(r),
        _entry_script(r),
        deps,
        read_dependencies(r, deps) if deps else (),
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


# --- dependencies ---------------------------------------------------------------------------------
def read_dependencies(r: Reader, path: Path) -> tuple[str, ...]:
    """The user's dependencies as pip requirement strings, in file order; problems go to ``r``."""
    raw = r.str("dependenciesFile")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        r.fail("dependenciesFile", raw, f"unreadable ({e})", "point it at a UTF-8 text file")
        return ()
    conda = path.suffix in (".yml", ".yaml")
    lines = _conda_requirements(r, raw, text) if conda else _pip_lines(r, raw, text)
    requirements: list[str] = []
    for line in lines:
        try:
            requirements.append(str(Requirement(line)))
        except InvalidRequirement as e:
            r.fail("dependenciesFile", raw, f"{line!r} is not a requirement ({e})", _PIP_FIX)
    _check_against_host(r, raw, requirements)
    return tuple(requirements)


_PIP_FIX = "write one requirement per line, e.g. scikit-learn==1.9.1"


def _pip_lines(r: Reader, raw: str, text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            r.fail(
                "dependenciesFile",
                raw,
                f"pip option {line!r}: only requirements are installed into the image",
                "list the packages themselves (no -r, -e, -c or index options)",
            )
            continue
        lines.append(line)
    return lines


def _conda_requirements(r: Reader, raw: str, text: str) -> list[str]:
    """A conda environment file's pip section, plus its conda packages with a pip equivalent."""
    try:
        env = yaml.safe_load(text)
    except yaml.YAMLError as e:
        r.fail("dependenciesFile", raw, f"not valid YAML ({e})", "fix the conda file's syntax")
        return []
    deps = env.get("dependencies") if isinstance(env, dict) else None
    if not isinstance(deps, list):
        r.fail(
            "dependenciesFile",
            raw,
            "a conda environment file needs a 'dependencies:' list",
            "list the packages under dependencies: (and pip packages under - pip:)",
        )
        return []
    lines: list[str] = []
    for dep in deps:
        if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
            lines += [str(p) for p in dep["pip"] if not str(p).startswith("-")]
        elif isinstance(dep, str):
            converted = _conda_to_pip(r, raw, dep)
            lines += [converted] if converted else []
        else:
            r.fail("dependenciesFile", raw, f"unknown entry {dep!r}", "use conda's format")
    return lines


def _conda_to_pip(r: Reader, raw: str, spec: str) -> str | None:
    """``scikit-learn=1.5`` -> ``scikit-learn==1.5.*``; None for python/pip or a refused one."""
    name, version = _split_conda_spec(spec.split("::")[-1].strip())
    key = name.lower()
    if key == "python":
        if version and not _python_ok(version):
            r.fail(
                "dependenciesFile",
                raw,
                f"{spec!r}: the images run Python {PYTHON_VERSION}",
                f"use python={PYTHON_VERSION} or remove the python line",
            )
        return None
    if key in IGNORED_CONDA:
        return None
    if key in CONDA_ONLY or key.startswith("r-"):
        r.fail(
            "dependenciesFile",
            raw,
            f"conda package {name!r} has no pip equivalent (the image installs with pip)",
            f"remove {name!r}, or replace it with its PyPI package under '- pip:'",
        )
        return None
    return CONDA_TO_PIP.get(key, name) + _conda_version(version)


def _split_conda_spec(spec: str) -> tuple[str, str]:
    parts = spec.split()
    if len(parts) > 1:  # "numpy 1.26.*" / "numpy 1.26.4 py311_0"
        return parts[0], parts[1]
    for i, ch in enumerate(spec):
        if ch in "=<>!~":
            return spec[:i], spec[i:]
    return spec, ""


def _conda_version(version: str) -> str:
    if not version:
        return ""
    if version.startswith("=") and not version.startswith("=="):
        version = version[1:]  # "=1.5" (conda's fuzzy match) or "=1.5=build"
        base = version.split("=")[0]
        return f"=={base}" if base.endswith("*") else f"=={base}.*"
    if version.startswith("=="):  # "==1.26.4" or "==1.26.4=py311h_0" (a build string)
        return "==" + version[2:].split("=")[0]
    if version[0].isdigit():  # "1.26.*", "1.26.4" (space form)
        return f"=={version}"
    return version


def _python_ok(version: str) -> bool:
    try:
        spec = Requirement("python" + _conda_version(version)).specifier
    except InvalidRequirement:
        return False
    return spec.contains(PYTHON_VERSION + ".0") or spec.contains(PYTHON_VERSION)


def host_requirements() -> dict[str, Requirement]:
    """The scoring host's own requirements (scoring/requirements.txt), by canonical name."""
    found: dict[str, Requirement] = {}
    for line in HOST_REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            found[canonicalize_name(req.name)] = req
    return found


def _check_against_host(r: Reader, raw: str, requirements: list[str]) -> None:
    """An exact pin the host's own range excludes would fail the image build: say so now."""
    host = host_requirements()
    for line in requirements:
        req = Requirement(line)
        mine = host.get(canonicalize_name(req.name))
        pins = [s.version for s in req.specifier if s.operator == "==" and "*" not in s.version]
        for pin in pins:
            if mine is not None and not mine.specifier.contains(pin, prereleases=True):
                r.fail(
                    "dependenciesFile",
                    raw,
                    f"{line} conflicts with the scoring host's {mine} (scoring/requirements.txt)",
                    f"pin {req.name} to a version in {mine.specifier}",
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
