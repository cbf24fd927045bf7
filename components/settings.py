"""The one validated Settings object: the assembly of every section's settings.

Each section reads and checks its own keys where it lives (``components/platform/settings.py``,
``components/targets/<target>/settings.py``) through one :class:`Reader`, which collects every
problem; :func:`load` raises them together as :class:`SettingsError`, before the program
declares a single resource.

The layers, bottom up: ``config/`` (the reader, naming, sizes, regions) <- each section's
settings <- this assembly <- ``contract.py`` <- ``platform/`` <- ``targets/`` <- ``__main__.py``.
It sits above every section it assembles and below everything that reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pulumi
import yaml

from components import PROJECT_ROOT
from components.config import stand_ins
from components.config.naming import RULES, Naming, stable_suffix
from components.config.reader import (
    ConfigProblem,
    Reader,
    SettingsError,
    schema,
    stack_file_problems,
)
from components.platform import budget_settings as budget
from components.platform import cache_settings
from components.platform import network_settings as network
from components.platform import observability_settings as observability
from components.platform import settings as platform
from components.platform.cache_settings import RedisSettings
from components.platform.network_settings import NetworkSettings
from components.platform.observability_settings import ObservabilitySettings
from components.platform.settings import ModelSettings, ResilienceSettings, ScoringSettings
from components.targets.aci import settings as aci
from components.targets.aci.settings import AciSettings
from components.targets.aks import settings as aks
from components.targets.aks.settings import AcceleratorSettings, AksSettings
from components.targets.aml import settings as aml
from components.targets.aml.settings import BatchSettings, OnlineEndpointSettings
from components.targets.app_service import settings as app_service
from components.targets.app_service.settings import AppServiceSettings
from components.targets.container_apps import settings as container_apps
from components.targets.container_apps.settings import ContainerAppsSettings
from components.targets.functions import settings as functions
from components.targets.functions.settings import FunctionsSettings
from components.targets.functions.settings import python as functions_env
from components.targets.iot import settings as iot
from components.targets.iot.settings import IotSettings

__all__ = ["ConfigProblem", "Settings", "SettingsError", "from_pulumi", "load", "schema"]


@dataclass(frozen=True)
class Settings:
    project: str
    stack: str
    location: str
    naming: Naming
    public_network_access: bool
    deployer_principal_type: str
    model: ModelSettings
    scoring: ScoringSettings
    registry_sku: str
    redis: RedisSettings
    app_service: AppServiceSettings
    functions: FunctionsSettings
    aci: AciSettings
    aks: AksSettings
    accelerator: AcceleratorSettings
    iot: IotSettings
    online: OnlineEndpointSettings
    batch: BatchSettings
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)  # VNet, allow-lists
    container_apps: ContainerAppsSettings = field(default_factory=ContainerAppsSettings)
    resilience: ResilienceSettings = field(default_factory=ResilienceSettings)  # zones, keys
    tags: Mapping[str, str] = field(default_factory=dict)
    monthly_budget_usd: int = 0  # policy pack's monthly-budget rule (0: none)


def load(
    lookup: Callable[[str], str | None], *, project: str, stack: str, real_run: bool = False
) -> Settings:
    """Build :class:`Settings` from ``lookup`` (bare key -> raw string or None for the default).

    ``real_run``: the program deploys (or really previews) with these values, so the stand-ins
    shipped for the offline preview are refused too (``components/config/stand_ins.py``).
    Raises :class:`SettingsError` with every problem found.
    """
    r = Reader(lookup)
    location = r.region("location")
    naming = _naming(r, project, stack)
    scoring = platform.read_scoring(r)
    cluster, accelerator = aks.read(r, location)
    settings = Settings(
        project=project,
        stack=stack,
        location=location,
        naming=naming,
        public_network_access=r.bool("publicNetworkAccess"),
        deployer_principal_type=r.choice(
            "deployerPrincipalType", ("User", "ServicePrincipal", "Group")
        ),
        model=platform.read_model(r),
        scoring=scoring,
        registry_sku=r.choice("registrySku", platform.REGISTRY_SKUS),
        redis=cache_settings.read_redis(r),
        app_service=app_service.read(r),
        functions=functions.read(r),
        aci=aci.read(r),
        aks=cluster,
        accelerator=accelerator,
        iot=iot.read(r),
        online=aml.read_online(r, naming, scoring.image_repository),
        batch=aml.read_batch(r),
        resilience=platform.read_resilience(r, location),
        monthly_budget_usd=budget.read(r),
        observability=observability.read(r),
        network=network.read(r),
        container_apps=container_apps.read(
            r, location, r.bool("zoneRedundant"), r.bool("networkIsolation")
        ),
        tags={"project": project, "stack": stack, "managed-by": "pulumi"},
    )
    platform.check_zone_plans(  # zone-redundant plans: a SKU with zones, enough instances
        r,
        settings.resilience.zone_redundant,
        (settings.app_service.zone_plan, settings.functions.zone_plan),
    )
    # the function image's Python and requirements (Functions on): supported, installable
    functions_env.check(r, settings.functions.enabled, settings.model)
    for rule in NO_EFFECT:  # keys the options chosen leave unused: refused, not ignored
        rule.check(r, settings)
    if not r.problems:  # names are only meaningful once their parts are valid
        _check_names(r, settings)
    if real_run:
        stand_ins.check(r)
    if r.problems:
        raise SettingsError(r.problems)
    return settings


def _naming(r: Reader, project: str, stack: str) -> Naming:
    prefix = r.str("prefix")
    r.matches(
        "prefix",
        prefix,
        r"[a-z][a-z0-9]{1,9}",
        "must be 2-10 lowercase letters and digits, starting with a letter",
        "shorten or simplify mlscore:prefix (e.g. mlscore)",
    )
    suffix = r.str("nameSuffix")
    r.matches(
        "nameSuffix",
        suffix,
        r"[a-z0-9]{0,6}",
        "must be 0-6 lowercase letters and digits",
        "set mlscore:nameSuffix to e.g. 'a1b2' or leave it empty",
    )
    return Naming(prefix, stack, suffix or stable_suffix(f"{project}/{stack}/{prefix}"))


def _check_names(r: Reader, s: Settings) -> None:
    wanted = {
        "storage account (workspace)": True,
        "container registry": True,
        "key vault": True,
        "ML workspace": True,
        "Redis cache": s.redis.create,
        "web app": s.app_service.enabled,
        "function app": s.functions.enabled,
        "storage account (functions host)": s.functions.enabled,
        "storage account (trigger data)": s.functions.enabled,
        "Service Bus namespace": s.functions.enabled,
        "ACI DNS label": s.aci.enabled,
        "IoT Hub": s.iot.enabled,
        "Container Apps environment": s.container_apps.enabled,
        "container app": s.container_apps.enabled,
    }
    vault = s.naming.key_vault()
    if str(r.raw("nameSuffix")[1]) and not vault.endswith(s.naming.suffix):
        # A destroyed stack's vault keeps its name for its soft-delete retention (90 days, no
        # purge: purge protection), and the recovery is a new nameSuffix (README); a suffix the
        # 24-character vault name cuts would give the same name again:
        # https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview
        r.fail(
            ("prefix", "nameSuffix"),
            f"key vault name {vault!r}",
            f"the 24-character key vault name cuts the suffix {s.naming.suffix!r}, so a new "
            "nameSuffix (the way past a deleted vault that still holds its name) may not "
            "change it",
            "shorten mlscore:prefix or mlscore:nameSuffix",
        )
    names = dict(s.naming.globally_unique())
    if s.aks.enabled:  # the scoring Service's Azure DNS label (<label>.<region>.cloudapp.azure.com)
        names["AKS service DNS label"] = ("dns_label", aks.aks_service_dns_label(s.naming))
    for label, (rule, name) in names.items():
        if not wanted.get(label, True):
            continue
        problem = RULES[rule].problem(name)
        if problem:
            r.fail(
                ("prefix", "nameSuffix"),
                f"{label} name {name!r}",
                problem,
                "shorten mlscore:prefix or mlscore:nameSuffix",
            )


def from_pulumi() -> Settings:
    """Settings of the running stack, read from ``pulumi.Config``: a real run unless the
    offline engine marked this one (stand-ins refused, ``components/config/stand_ins.py``)."""
    config = pulumi.Config()
    stack_file = PROJECT_ROOT / f"Pulumi.{pulumi.get_stack()}.yaml"
    if not stand_ins.offline_engine() and stack_file.is_file():  # offline: preview/engine.py
        doc = yaml.safe_load(stack_file.read_text()) or {}
        unread = stack_file_problems(doc.get("config") or {}, stack_file.name)
        if unread:
            raise SettingsError(unread)
    return load(
        config.get,
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        real_run=not stand_ins.offline_engine(),
    )


# --- keys with no effect under the options chosen --------------------------------------------
@dataclass(frozen=True)
class NoEffect:
    """``keys`` are not used when ``applies(settings)``: a value other than the default is
    refused (``Reader.no_effect``) instead of being accepted and ignored."""

    keys: tuple[str, ...]
    applies: Callable[[Settings], bool]
    because: str
    fix: str

    def check(self, r: Reader, s: Settings) -> None:
        if self.applies(s):
            r.no_effect(self.keys, self.because, self.fix)


NO_EFFECT = (
    # Not redisSku, redisService or redisHighAvailability: the stack files set them for the
    # cache they create, and switching a stack to an existing cache with --set is common.
    NoEffect(
        ("redisFamily", "redisCapacity", "redisHost", "redisCluster"),
        lambda s: not s.redis.enabled,
        "with mlscore:redisEnabled false (no cache)",
        "remove it, or set mlscore:redisEnabled to true",
    ),
    NoEffect(  # contract.py: CACHE_TTL_SECONDS; the host caches only with REDIS_HOST
        ("cacheTtlSeconds",),
        lambda s: not s.redis.enabled,
        "with mlscore:redisEnabled false (no cache, nothing to expire)",
        "remove it, or set mlscore:redisEnabled to true",
    ),
    NoEffect(
        ("redisFamily", "redisCapacity"),
        lambda s: s.redis.enabled and bool(s.redis.existing_host),
        "with mlscore:redisHost set: the program uses that cache and creates none",
        "remove it (the existing cache's size is its own), or clear mlscore:redisHost",
    ),
    NoEffect(  # components/platform/cache.py: the cluster takes sku.name and highAvailability
        ("redisFamily", "redisCapacity"),
        lambda s: s.redis.create and s.redis.managed,
        "with Azure Managed Redis (mlscore:redisService managed): its size is the SKU",
        "remove it and pick the size with mlscore:redisSku (e.g. Balanced_B1)",
    ),
    NoEffect(  # components/platform/alerts.py is declared only with alerts on (__main__.py)
        ("alertEmailReceivers", "alert5xxPercent", "alertP95LatencyMs"),
        lambda s: not s.observability.alerts,
        "with mlscore:alertsEnabled false (no alert rules, no action group)",
        "remove it, or set mlscore:alertsEnabled to true",
    ),
    NoEffect(  # contract.py: DATA_COLLECTION_SAMPLING_RATE only goes with data collection
        ("dataCollectionSamplingRate",),
        lambda s: not s.observability.data_collection,
        "with mlscore:dataCollectionEnabled false",
        "remove it, or set mlscore:dataCollectionEnabled to true",
    ),
    NoEffect(  # network_settings.py reads them in every stack, uses them only when isolated
        ("vnetAddressSpace", *(key for key, _ in network.SUBNETS.values())),
        lambda s: not s.network.isolated,
        "with mlscore:networkIsolation false (no VNet)",
        "remove it, or set mlscore:networkIsolation to true",
    ),
    NoEffect(  # container_apps/target.py: the environment's VNet (and its internal flag) only
        # exists under isolation; a stack file naming the key, even true, is refused too
        # (config/reader.py PROMISES: the CLI hands the program Pulumi.yaml's default as if set)
        ("containerAppsInternalOnly",),
        lambda s: not s.network.isolated,
        "with mlscore:networkIsolation false: the Container Apps environment has no VNet, so its "
        "ingress is public (HTTPS, bearer key) whatever this says",
        "remove it, or set mlscore:networkIsolation to true for an internal ingress",
    ),
    NoEffect(
        ("aksTlsCertificateName", "aksTlsPfxPath", "aksTlsPfxPassword"),
        lambda s: s.aks.enabled and not s.aks.ingress.tls,
        "with mlscore:aksTlsEnabled false (plain HTTP, no certificate)",
        "remove it, or set mlscore:aksTlsEnabled to true",
    ),
)
