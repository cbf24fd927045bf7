"""Settings of the platform every target shares: the model, the scoring host, the cache.

Each ``read_*`` takes the :class:`~components.config.reader.Reader`, reads its keys, checks its
rules and returns a frozen dataclass; ``components/config/settings.py`` assembles them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from components import PROJECT_ROOT
from components.config.reader import Reader

REGISTRY_SKUS = ("Basic", "Standard", "Premium")
REDIS_SKUS = ("Basic", "Standard", "Premium")
AZURE_CACHE_TLS_PORT = 6380


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


@dataclass(frozen=True)
class RedisSettings:
    enabled: bool
    sku: str
    family: str
    capacity: int
    existing_host: str
    port: int

    @property
    def create(self) -> bool:
        """True when the program creates Azure Cache for Redis (no existing host given)."""
        return self.enabled and not self.existing_host


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


def read_redis(r: Reader) -> RedisSettings:
    redis = RedisSettings(
        enabled=r.bool("redisEnabled"),
        sku=r.choice("redisSku", REDIS_SKUS),
        family=r.choice("redisFamily", ("C", "P")),
        capacity=r.int("redisCapacity"),
        existing_host=r.str("redisHost"),
        port=r.int_range("redisPort", 1, 65535),
    )
    _check_existing_host(r, redis)
    if redis.create:
        _check_created_cache(r, redis)
    return redis


def _check_existing_host(r: Reader, redis: RedisSettings) -> None:
    if redis.existing_host and not re.fullmatch(
        r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
        r"[A-Za-z0-9])?)*",
        redis.existing_host,
    ):
        r.fail(
            "redisHost",
            redis.existing_host,
            "not a host name",
            "use the bare host, e.g. mycache.westeurope.redis.azure.net (no scheme, no port: "
            "the port is mlscore:redisPort)",
        )


# SKU -> (family, lowest capacity, highest capacity) of Azure Cache for Redis.
_REDIS_SIZES = {"Basic": ("C", 0, 6), "Standard": ("C", 0, 6), "Premium": ("P", 1, 5)}


def _check_created_cache(r: Reader, redis: RedisSettings) -> None:
    if redis.port != AZURE_CACHE_TLS_PORT:
        r.fail(
            ("redisPort", "redisHost"),
            redis.port,
            f"Azure Cache for Redis serves TLS on port {AZURE_CACHE_TLS_PORT} only "
            "(the non-TLS port is off)",
            f"set mlscore:redisPort to {AZURE_CACHE_TLS_PORT}, or set mlscore:redisHost to the "
            "host of an existing Redis (e.g. Azure Managed Redis on port 10000)",
        )
    if redis.sku not in _REDIS_SIZES:
        return
    family, low, high = _REDIS_SIZES[redis.sku]
    if redis.family != family:
        r.fail(
            ("redisSku", "redisFamily"),
            f"{redis.sku}/{redis.family}",
            f"{redis.sku} caches are family {family}",
            f"set mlscore:redisFamily to {family}",
        )
    if not low <= redis.capacity <= high:
        r.fail(
            "redisCapacity",
            redis.capacity,
            f"{redis.sku} caches are {family}{low}-{family}{high}",
            f"set mlscore:redisCapacity between {low} and {high}",
        )
