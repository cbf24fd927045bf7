"""Settings of the prediction cache: Azure Managed Redis (created by default), Azure Cache for
Redis (only when chosen explicitly), or an existing host.

Why Azure Managed Redis by default: Azure Cache for Redis is retiring (Enterprise 31 Mar 2027,
Basic/Standard/Premium 30 Sep 2028) and tenants without an instance before April 2026 cannot
create one (../shared/DESIGN.md, "Azure facts"). Azure Managed Redis serves TLS on port 10000 with
the Enterprise clustering policy (https://learn.microsoft.com/azure/redis/tls-configuration: "Azure
Managed Redis instances use port 10000 ... If you use the OSS cluster policy, ports in the 85XX
range"), TLS 1.2 and 1.3 only (same page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi_azure_native.redisenterprise as redisenterprise

from components.config.reader import Reader

SERVICE_MANAGED = "managed"  # Azure Managed Redis (redisenterprise cluster + database)
SERVICE_AZURE_CACHE = "azure-cache"  # Azure Cache for Redis, for tenants that still have it
SERVICES = (SERVICE_MANAGED, SERVICE_AZURE_CACHE)

AZURE_CACHE_SKUS = ("Basic", "Standard", "Premium")
AZURE_CACHE_TLS_PORT = 6380
MANAGED_TLS_PORT = 10000
# Azure Managed Redis SKUs of the installed SDK, without the retiring Enterprise / Enterprise Flash
# tiers (they are Azure Cache for Redis Enterprise, retired 31 Mar 2027).
MANAGED_SKUS = tuple(
    s.value for s in redisenterprise.SkuName if not s.value.startswith("Enterprise")
)
SMALLEST_BALANCED = "Balanced_B0"

# Host suffixes of the public cloud: which port an existing host of each service serves TLS on.
_KNOWN_HOSTS = {
    ".redis.azure.net": (MANAGED_TLS_PORT, "Azure Managed Redis"),
    ".redis.cache.windows.net": (AZURE_CACHE_TLS_PORT, "Azure Cache for Redis"),
}


@dataclass(frozen=True)
class RedisSettings:
    enabled: bool
    service: str
    sku: str
    high_availability: bool
    family: str
    capacity: int
    existing_host: str
    port: int
    cluster: bool = False  # OSS cluster protocol (an existing Azure Managed Redis, OSS policy)

    @property
    def create(self) -> bool:
        """True when the program creates the cache (no existing host given)."""
        return self.enabled and not self.existing_host

    @property
    def managed(self) -> bool:
        """True when the created cache is Azure Managed Redis."""
        return self.service == SERVICE_MANAGED


def read_redis(r: Reader) -> RedisSettings:
    redis = RedisSettings(
        enabled=r.bool("redisEnabled"),
        service=r.choice("redisService", SERVICES),
        sku=r.str("redisSku"),
        high_availability=r.bool("redisHighAvailability"),
        family=r.str("redisFamily"),
        capacity=r.int("redisCapacity"),
        existing_host=r.str("redisHost"),
        port=r.int_range("redisPort", 1, 65535),
        cluster=r.bool("redisCluster"),
    )
    if not redis.enabled:
        return redis
    if redis.cluster and not redis.existing_host:
        r.fail(
            ("redisCluster", "redisHost"),
            "true",
            "the cache this program creates uses the Enterprise clustering policy, which takes "
            "non-cluster clients; the OSS cluster protocol is for an existing host",
            "remove mlscore:redisCluster, or set mlscore:redisHost to your OSS-clustered cache",
        )
    if redis.existing_host:
        _check_existing_host(r, redis)
    elif redis.managed:
        _check_managed(r, redis)
    elif redis.service == SERVICE_AZURE_CACHE:
        _check_azure_cache(r, redis)
    return redis


def _check_existing_host(r: Reader, redis: RedisSettings) -> None:
    host = redis.existing_host
    if not re.fullmatch(
        r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
        r"[A-Za-z0-9])?)*",
        host,
    ):
        r.fail(
            "redisHost",
            host,
            "not a host name",
            "use the bare host, e.g. mycache.westeurope.redis.azure.net (no scheme, no port: "
            "the port is mlscore:redisPort)",
        )
        return
    for suffix, (port, service) in _KNOWN_HOSTS.items():
        if host.lower().endswith(suffix) and redis.port != port:
            r.fail(
                ("redisPort", "redisHost"),
                redis.port,
                f"{host} is {service}, which serves TLS on port {port}",
                f"set mlscore:redisPort to {port}",
            )


def _check_port(r: Reader, redis: RedisSettings, port: int, service: str) -> None:
    if redis.port != port:
        r.fail(
            ("redisPort", "redisService"),
            redis.port,
            f"{service} serves TLS on port {port} only (the non-TLS port is off)",
            f"set mlscore:redisPort to {port}",
        )


def _check_managed(r: Reader, redis: RedisSettings) -> None:
    _check_port(r, redis, MANAGED_TLS_PORT, "Azure Managed Redis")
    if redis.sku in AZURE_CACHE_SKUS:
        r.fail(
            ("redisSku", "redisService"),
            redis.sku,
            "an Azure Cache for Redis SKU, but mlscore:redisService is 'managed' (Azure Managed "
            "Redis, which new tenants can create)",
            f"set mlscore:redisSku to an Azure Managed Redis SKU (e.g. {SMALLEST_BALANCED}), or "
            "set mlscore:redisService to 'azure-cache' if your tenant still has Azure Cache for "
            "Redis",
        )
    elif redis.sku not in MANAGED_SKUS:
        r.fail(
            "redisSku",
            redis.sku,
            "not an Azure Managed Redis SKU (Enterprise_* and EnterpriseFlash_* retire on "
            "31 Mar 2027)",
            f"use one of {', '.join(MANAGED_SKUS)}",
        )


# SKU -> (family, lowest capacity, highest capacity) of Azure Cache for Redis.
_REDIS_SIZES = {"Basic": ("C", 0, 6), "Standard": ("C", 0, 6), "Premium": ("P", 1, 5)}


def _check_azure_cache(r: Reader, redis: RedisSettings) -> None:
    _check_port(r, redis, AZURE_CACHE_TLS_PORT, "Azure Cache for Redis")
    if redis.sku not in _REDIS_SIZES:
        r.fail(
            ("redisSku", "redisService"),
            redis.sku,
            "not an Azure Cache for Redis SKU",
            f"use one of {', '.join(AZURE_CACHE_SKUS)}, or set mlscore:redisService to "
            "'managed' for Azure Managed Redis",
        )
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
