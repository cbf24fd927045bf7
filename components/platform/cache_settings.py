"""Settings of the prediction cache: created (Azure Cache for Redis) or an existing host."""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.config.reader import Reader

REDIS_SKUS = ("Basic", "Standard", "Premium")
AZURE_CACHE_TLS_PORT = 6380


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
