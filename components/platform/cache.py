"""The prediction cache: Azure Managed Redis, Azure Cache for Redis (an explicit choice), or the
host and port of an existing Redis.

**Azure Managed Redis** (the default, ``redisService: managed``): a ``redisenterprise`` cluster
(dev: the smallest Balanced SKU without a replica; prod: sized, with high availability) and its one
database ``default``: TLS only (``clientProtocol: Encrypted``, port 10000, Enterprise clustering so
that a plain client needs no cluster support), TLS 1.2 minimum, access keys **disabled**. Every
client signs in with Microsoft Entra ID, as an identity holding the ``default`` access policy
(an access policy assignment on the database): the pull identity here, the Azure ML online
endpoint's identity through :meth:`PredictionCache.grant_data_access`. AKS pods run as the pull
identity through workload identity (components/targets/aks/identity.py). Docs:
https://learn.microsoft.com/azure/redis/entra-for-authentication ("Azure Managed Redis caches use
Microsoft Entra ID by default"; the database's ``accessKeysAuthentication`` turns keys off) and
the SDK's ``redisenterprise.AccessPolicyAssignment`` ("Only 'default' policy is supported").

**Azure Cache for Redis** (``redisService: azure-cache``, for tenants that still have it): Basic /
Standard / Premium, TLS 6380, Entra ID only: access key authentication disabled
(``disableAccessKeyAuthentication``,
https://learn.microsoft.com/azure/azure-cache-for-redis/cache-azure-active-directory-for-authentication),
since every target now signs in as an identity and no key is stored anywhere.

**An existing host** (``redisHost``): nothing is created; the targets that run as the pull identity
use Entra ID (the cache's owner grants the identity a data access policy).

One update at a time: a cache refuses a second access policy assignment while it applies one
(409 "is busy processing a previous update request", Azure/bicep-types-az#1760; the azurerm
provider serialises them with a lock per cache: hashicorp/terraform-provider-azurerm#26085 for
Azure Cache for Redis, #30980 for Azure Managed Redis). A private endpoint connection is an update
of the cache too (azurerm takes the same per-cache lock for a Redis private endpoint:
hashicorp/terraform-provider-azurerm#26085), whether it is ours (the VNet's ``pe-redis``) or the
Azure ML managed VNet's (the workspace's outbound rule). So every update is chained after the
previous one on the same cache (:meth:`updated_by`, :meth:`grant_data_access`), in the order
``__main__`` declares them: the cluster and its database, the workspace (its managed VNet's private
endpoint to the cache), the pull identity's access, the VNet's private endpoint, the online
endpoint's access.

The cache is declared before the workspace (``__main__``): under network isolation the workspace's
outbound rule to it is inline in the workspace's ``managedNetwork`` (workspace.py), and a rule
names the cache's ID.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.redis as redis
import pulumi_azure_native.redisenterprise as redisenterprise

from components.contract import CacheConnection, Interfaces, PullIdentity
from components.platform import diagnostics as diag
from components.platform import private_endpoints as pe
from components.settings import Settings

# Host names in the public cloud, known from the cache's name before it exists:
# Azure Cache for Redis <name>.redis.cache.windows.net, Azure Managed Redis
# <name>.<region>.redis.azure.net.
PUBLIC_CLOUD_HOST_SUFFIX = ".redis.cache.windows.net"
MANAGED_HOST_SUFFIX = ".redis.azure.net"

# Built-in Azure Cache for Redis data access policy: read and write keys, no admin commands.
DATA_CONTRIBUTOR = "Data Contributor"
# Azure Managed Redis has one access policy ("Only 'default' policy is supported for now").
MANAGED_ACCESS_POLICY = "default"
# Azure Managed Redis has one database per cluster, named "default".
MANAGED_DATABASE = "default"

CacheResource = redis.Redis | redisenterprise.RedisEnterprise
AccessAssignment = redis.AccessPolicyAssignment | redisenterprise.AccessPolicyAssignment


@dataclass(frozen=True)
class PredictionCacheArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]


class PredictionCache(pulumi.ComponentResource):
    """``connection`` is what every target reads; ``cache`` is None for an existing host."""

    connection: CacheConnection
    cache: CacheResource | None
    database: redisenterprise.Database | None = None
    entra_access: AccessAssignment | None = None  # the pull identity's (grant_pull_identity)

    def __init__(
        self, name: str, args: PredictionCacheArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:PredictionCache", name, None, opts)
        self._resource_group_name = args.resource_group_name
        self._last_update: pulumi.CustomResource | None = None  # what the next update waits for
        s = args.settings
        r = s.redis
        self._managed = r.managed
        if r.existing_host:
            self.cache = None
            # No key of ours: the targets that run as the pull identity sign in with Entra ID,
            # for which the cache's owner grants that identity a data access policy.
            self.connection = CacheConnection(
                host=r.existing_host, port=r.port, password=None, entra_id=True, cluster=r.cluster
            )
            self.register_outputs({"host": r.existing_host, "port": r.port})
            return

        if r.managed:
            self.cache = self._managed_redis(s)
            self.host = _managed_host_name(s.naming.redis(), s.location, self.cache)
        else:
            self.cache = self._azure_cache(s)
            self.host = _host_name(s.naming.redis(), self.cache)
        self._last_update = self.database or self.cache
        self.port = r.port
        self.connection = CacheConnection(
            host=self.host, port=self.port, password=None, entra_id=True
        )
        self.register_outputs({"host": self.host, "port": self.port})

    def interfaces(self) -> Interfaces:
        """Where clients find the cache; for a cache of ours, its logs and private endpoint
        (Azure Managed Redis: metrics on the cluster, logs on the database)."""
        outputs = {"redis": {"host": self.connection.host, "port": self.connection.port}}
        if self.cache is None:  # an existing host: not ours to watch or connect
            return Interfaces(outputs=outputs)
        if self.database is not None:
            sources = diag.managed_redis("redis", self.cache.id, self.database.id)
        else:
            sources = diag.resource("redis", self.cache.id)
        # The private endpoint's connection is an update of the cache too, and the cache takes
        # one update at a time: the endpoint waits for the updates declared so far (the pull
        # identity's access); record it with updated_by once declared.
        return Interfaces(
            diagnostics=tuple(sources),
            private_endpoints=(pe.redis(self.next_update_id(), managed=self._managed),),
            outputs=outputs,
        )

    @property
    def group_id(self) -> str:
        """The private link sub-resource of the cache (its private endpoints' group ID)."""
        return "redisEnterprise" if self._managed else "redisCache"

    def next_update_id(self) -> pulumi.Output[str]:
        """The cache's ID once every update declared so far is done: what a private endpoint
        connection to the cache (ours, or the Azure ML managed VNet's) names, so that it waits."""
        assert self.cache is not None, "an existing host has no resource ID of ours"
        after = [self._last_update.id] if self._last_update is not None else []
        return pulumi.Output.all(self.cache.id, *after).apply(lambda v: str(v[0]))

    def updated_by(self, resource: pulumi.CustomResource) -> None:
        """Record an update of the cache declared elsewhere (a private endpoint connection made
        by ``resource``, which named :meth:`next_update_id`): the next one waits for it."""
        self._last_update = resource

    def reached_through(self, endpoints: pe.PrivateEndpoints) -> None:
        """The VNet's private endpoint to the cache is declared: later updates wait for it."""
        if self.cache is not None:
            self.updated_by(endpoints.endpoints[pe.REDIS])

    def grant_pull_identity(self, identity: PullIdentity) -> None:
        """The pull identity's data access: the targets that run as it sign in with Entra ID."""
        self.entra_access = self.grant_data_access(
            "redis-pull-identity-access",
            "scoringpullidentity",
            identity.principal_id,
            identity.client_id,
        )

    def _managed_redis(self, s: Settings) -> redisenterprise.RedisEnterprise:
        """Azure Managed Redis: the cluster and its database, Entra ID only, TLS only."""
        r = s.redis
        child = pulumi.ResourceOptions(parent=self)
        cluster = redisenterprise.RedisEnterprise(
            "redis",
            cluster_name=s.naming.redis(),
            resource_group_name=self._resource_group_name,
            location=s.location,
            sku=redisenterprise.SkuArgs(name=r.sku),
            high_availability=(
                redisenterprise.HighAvailability.ENABLED
                if r.high_availability
                else redisenterprise.HighAvailability.DISABLED
            ),
            minimum_tls_version=redisenterprise.TlsVersion.TLS_VERSION_1_2,
            # Under network isolation the cache is reached through its private endpoint only:
            # Azure Managed Redis has no IP firewall, and the deployer never touches its data
            # plane (access policy assignments are ARM): https://learn.microsoft.com/azure/redis/private-link
            public_network_access=(
                redisenterprise.PublicNetworkAccess.ENABLED
                if s.public_network_access and not s.network.isolated
                else redisenterprise.PublicNetworkAccess.DISABLED
            ),
            tags=dict(s.tags),
            opts=child,
        )
        self.database = redisenterprise.Database(
            "redis-database",
            cluster_name=cluster.name,
            database_name=MANAGED_DATABASE,
            resource_group_name=self._resource_group_name,
            client_protocol=redisenterprise.Protocol.ENCRYPTED,
            port=r.port,
            # One endpoint on port 10000 for clients without cluster support (the scoring host).
            clustering_policy=redisenterprise.ClusteringPolicy.ENTERPRISE_CLUSTER,
            eviction_policy=redisenterprise.EvictionPolicy.ALL_KEYS_LRU,  # a cache
            access_keys_authentication=redisenterprise.AccessKeysAuthentication.DISABLED,
            opts=child,
        )
        return cluster

    def _azure_cache(self, s: Settings) -> redis.Redis:
        """Azure Cache for Redis, for tenants that still have it (an explicit choice)."""
        r = s.redis
        return redis.Redis(
            "redis",
            name=s.naming.redis(),
            resource_group_name=self._resource_group_name,
            location=s.location,
            sku=redis.SkuArgs(name=r.sku, family=r.family, capacity=r.capacity),
            enable_non_ssl_port=False,
            minimum_tls_version=redis.TlsVersion.TLS_VERSION_1_2,
            public_network_access="Enabled"
            if s.public_network_access and not s.network.isolated
            else "Disabled",
            # Entra ID only: every target signs in as an identity (AKS: workload identity).
            disable_access_key_authentication=True,
            redis_configuration=redis.RedisCommonPropertiesRedisConfigurationArgs(
                aad_enabled="true",
                maxmemory_policy="allkeys-lru",  # a cache: evict the least recently used
            ),
            tags=dict(s.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def grant_data_access(
        self,
        name: str,
        assignment_name: str,
        principal_id: pulumi.Input[str],
        alias: pulumi.Input[str],
        parent: pulumi.Resource | None = None,
    ) -> AccessAssignment | None:
        """Give an identity data access (read and write keys), so it signs in with Entra ID.

        Chained after the previous update of this cache: the cache applies one update at a
        time. None for an existing host: its owner grants access (the principal ID is in the
        outputs). ``assignment_name``: letters and digits only.
        """
        if self.cache is None:
            return None
        after = [self._last_update] if self._last_update is not None else []
        opts = pulumi.ResourceOptions(parent=parent or self, depends_on=after)
        assignment: AccessAssignment
        if self.database is not None:
            assignment = redisenterprise.AccessPolicyAssignment(
                name,
                access_policy_assignment_name=assignment_name,
                cluster_name=self.cache.name,
                database_name=self.database.name,
                resource_group_name=self._resource_group_name,
                access_policy_name=MANAGED_ACCESS_POLICY,
                user=redisenterprise.AccessPolicyAssignmentPropertiesUserArgs(
                    object_id=principal_id
                ),
                opts=opts,
            )
        else:
            assignment = redis.AccessPolicyAssignment(
                name,
                access_policy_assignment_name=assignment_name,
                cache_name=self.cache.name,
                resource_group_name=self._resource_group_name,
                access_policy_name=DATA_CONTRIBUTOR,
                object_id=principal_id,
                object_id_alias=alias,
                opts=opts,
            )
        self._last_update = assignment
        return assignment


def _public_cloud() -> bool:
    environment = pulumi.Config("azure-native").get("environment") or "public"
    return environment.lower() == "public"


def _host_name(name: str, cache: redis.Redis) -> pulumi.Input[str]:
    """The Azure Cache for Redis host name, known before the cache exists in the public cloud.

    Creating a cache takes 15-20 minutes. A target that read ``hostName`` would wait for all of
    it; with the name built from the cache's own name it is created alongside (the scoring host
    serves without the cache until it answers, and then uses it). Other clouds
    (``azure-native:environment``) read ``hostName`` from Azure.
    """
    return name + PUBLIC_CLOUD_HOST_SUFFIX if _public_cloud() else cache.host_name


def _managed_host_name(
    name: str, location: str, cache: redisenterprise.RedisEnterprise
) -> pulumi.Input[str]:
    """The Azure Managed Redis host name, ``<name>.<region>.redis.azure.net`` in the public cloud
    (../shared/DESIGN.md, "Azure facts"; TLS on port 10000:
    https://learn.microsoft.com/azure/redis/tls-configuration), for the same reason as
    :func:`_host_name`: the targets do not wait for the cluster to be created."""
    if _public_cloud():
        return f"{name}.{location.replace(' ', '').lower()}{MANAGED_HOST_SUFFIX}"
    return cache.host_name
