"""Settings of the platform every target shares: the model and the scoring host.

Each ``read_*`` takes the :class:`~components.config.reader.Reader`, reads its keys, checks its
rules and returns a frozen dataclass; ``components/config/settings.py`` assembles them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components import PROJECT_ROOT
from components.config.reader import Reader

REGISTRY_SKUS = ("Basic", "Standard", "Premium")


@dataclass(frozen=True)
class ModelSettings:
    name: str
    version: str
    path: Path | None = None  # folder of the model files registered in Azure ML (modelPath)


@dataclass(frozen=True)
class ScoringSettings:
    image_repository: str
    port: int
    workers: int
    timeout_ms: int
    cache_ttl_seconds: int


def read_model(r: Reader) -> ModelSettings:
    model = ModelSettings(r.str("modelName"), r.str("modelVersion"), _model_path(r))
    r.matches(
        "modelName",
        model.name,
        r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}",
        "Azure ML model names take letters, digits, '.', '_' and '-', starting with a letter "
        "or digit",
        "rename the model",
    )
    r.matches(
        "modelVersion",
        model.version,
        r"[A-Za-z0-9][A-Za-z0-9_.-]{0,29}",
        "not a valid model version",
        "use a version such as 1 or 2024.11.1",
    )
    return model


def _model_path(r: Reader) -> Path | None:
    """``modelPath`` resolved against the project folder; it must hold the model files."""
    raw = r.str("modelPath")
    path = (PROJECT_ROOT / raw).resolve()
    if not raw or not path.is_dir() or not any(f.is_file() for f in path.rglob("*")):
        r.fail(
            "modelPath",
            raw,
            "not a folder with model files (relative to the project)",
            "point mlscore:modelPath at the model folder, e.g. aml/model/diabetes-ridge/1 "
            "(python -m scoring.sample_model.train --out aml/model writes it)",
        )
        return None
    return path


def read_scoring(r: Reader) -> ScoringSettings:
    scoring = ScoringSettings(
        image_repository=r.str("imageRepository"),
        port=r.int_range("scoringPort", 1024, 65535, "the host runs as a non-root user"),
        workers=r.int_range("scoringWorkers", 1, 32),
        timeout_ms=r.int_range("scoringTimeoutMs", 100, 600_000),
        cache_ttl_seconds=r.int_range("cacheTtlSeconds", 1, 7 * 86400),
    )
    r.matches(
        "imageRepository",
        scoring.image_repository,
        r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*",
        "not a valid repository name",
        "use lowercase letters, digits and separators, e.g. scoring",
    )
    return scoring
