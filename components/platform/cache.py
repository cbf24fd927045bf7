"""The prediction cache: Azure Cache for Redis, or the host and port of an existing Redis.

Sized per stack from ``settings.redis`` (dev Basic C0, prod Premium P1). Secure by default: the
non-TLS port is off, TLS 1.2 minimum, public network access follows the stack's setting. Two ways
in, both without a plaintext key in any setting:

- **Microsoft Entra ID**: Entra authentication is on and the pull identity holds the built-in
  ``Data Contributor`` access policy (``grant_data_access`` gives it to other identities too: the
  Azure ML online endpoint's). The targets whose containers run as such an identity (App Service,
  Functions, ACI, Azure ML online) sign in with a token (``REDIS_USE_ENTRA_ID=true``,
  ``REDIS_USERNAME=<principal id>``) and get no key.
- **access key**: the primary key (``listRedisKeys``) is stored in the key vault, for the targets
  that cannot run as the identity: AKS pods get it from a Kubernetes secret. Without such a
  target (``store_key=False``) the key is never read.

When ``settings.redis.existing_host`` is set (e.g. Azure Managed Redis, TLS port 10000) nothing is
created: the connection names that host and port and carries no key. The targets that run as the
pull identity use Entra ID (the cache's owner grants the identity a data access policy); AKS then
runs without the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.redis as redis

from components.config.settings import Settings
from components.contract import CacheConnection, PullIdentity
from components.platform.scoring_keys import vault_secret

# Host names of Azure Cache for Redis in the public cloud: <name>.redis.cache.windows.net.
PUBLIC_CLOUD_HOST_SUFFIX = ".redis.cache.windows.net"

# Built-in Azure Cache for Redis data access policy: read and write keys, no admin commands.
DATA_CONTRIBUTOR = "Data Contributor"
REDIS_KEY_SECRET = "redis-primary-key"


@dataclass(frozen=True)
class PredictionCacheArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    vault_name: pulumi.Input[str]
    identity: PullIdentity
    store_key: bool = True  # keep the access key in the key vault for targets without Entra ID


class PredictionCache(pulumi.ComponentResource):
    """``connection`` is what every target reads; ``cache`` is None for an existing host."""

    connection: CacheConnection
    cache: redis.Redis | None

    def __init__(
        self, name: str, args: PredictionCacheArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:PredictionCache", name, None, opts)
        self._resource_group_name = args.resource_group_name
        s = args.settings
        r = s.redis
        if r.existing_host:
            self.cache = None
            # No key of ours: the targets that run as the pull identity sign in with Entra ID,
            # for which the cache's owner grants that identity a data access policy.
            self.connection = CacheConnection(
                host=r.existing_host, port=r.port, password=None, entra_id=True
            )
            self.register_outputs({"host": r.existing_host, "port": r.port})
            return

        child = pulumi.ResourceOptions(parent=self)
        self.cache = redis.Redis(
            "redis",
            name=s.naming.redis(),
            resource_group_name=args.resource_group_name,
            location=s.location,
            sku=redis.SkuArgs(name=r.sku, family=r.family, capacity=r.capacity),
            enable_non_ssl_port=False,
            minimum_tls_version=redis.TlsVersion.TLS_VERSION_1_2,
            public_network_access="Enabled" if s.public_network_access else "Disabled",
            # Keys stay usable (IoT Edge devices have no managed identity), Entra is on beside.
            disable_access_key_authentication=False,
            redis_configuration=redis.RedisCommonPropertiesRedisConfigurationArgs(
                aad_enabled="true",
                maxmemory_policy="allkeys-lru",  # a cache: evict the least recently used
            ),
            tags=dict(s.tags),
            opts=child,
        )
        self.entra_access = self.grant_data_access(
            "redis-pull-identity-access",
            "scoring-pull-identity",
            args.identity.principal_id,
            args.identity.client_id,
        )
        self.password = None
        if args.store_key:
            keys = redis.list_redis_keys_output(
                name=self.cache.name, resource_group_name=args.resource_group_name
            )
            self.password = vault_secret(
                "redis-key-secret",
                REDIS_KEY_SECRET,
                pulumi.Output.secret(keys.primary_key),
                args.resource_group_name,
                args.vault_name,
                child,
            )
        # Azure Cache for Redis serves TLS on 6380 (mlscore:redisPort's default); the contract
        # keeps the port a plain int so that every target can put it in its environment.
        self.host = _host_name(s.naming.redis(), self.cache)
        self.port = r.port
        self.connection = CacheConnection(
            host=self.host, port=self.port, password=self.password, entra_id=True
        )
        self.register_outputs(
            {
                "host": self.host,
                "ssl_port": self.cache.ssl_port,
                "password_uri": self.password.uri if self.password else None,
            }
        )

    def grant_data_access(
        self,
        name: str,
        assignment_name: str,
        principal_id: pulumi.Input[str],
        alias: pulumi.Input[str],
        parent: pulumi.Resource | None = None,
    ) -> redis.AccessPolicyAssignment | None:
        """Give an identity the ``Data Contributor`` access policy, so it signs in with Entra ID.

        None for an existing host: its owner grants access (the principal ID is in the outputs).
        """
        if self.cache is None:
            return None
        return redis.AccessPolicyAssignment(
            name,
            access_policy_assignment_name=assignment_name,
            cache_name=self.cache.name,
            resource_group_name=self._resource_group_name,
            access_policy_name=DATA_CONTRIBUTOR,
            object_id=principal_id,
            object_id_alias=alias,
            opts=pulumi.ResourceOptions(parent=parent or self),
        )


def _host_name(name: str, cache: redis.Redis) -> pulumi.Input[str]:
    """The cache's host name, known before the cache exists in the public cloud.

    Creating Azure Cache for Redis takes 15-20 minutes. A target that read ``hostName`` would
    wait for all of it; with the name built from the cache's own name it is created alongside
    (the scoring host serves without the cache until it answers, and then uses it). Other
    clouds (``azure-native:environment``) read ``hostName`` from Azure.
    """
    environment = pulumi.Config("azure-native").get("environment") or "public"
    if environment.lower() == "public":
        return name + PUBLIC_CLOUD_HOST_SUFFIX
    return cache.host_name
