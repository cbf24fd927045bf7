"""App Service target: the scoring image on a Linux web app.

A Linux plan (``reserved=True``; B1 in dev as in the seeds, P1v3 in prod, zone redundant with
``zoneRedundant``) and a web app running
the image by digest, pulled by the user-assigned pull identity (``acrUseManagedIdentityCreds``; the
registry has no admin password). Secure defaults: HTTPS only, TLS 1.2 minimum (site and SCM),
FTPS off and basic-auth publishing credentials off, HTTP/2. The health check probes ``/ready``
so that an instance whose model failed to load takes no traffic.

Authentication: the scoring host checks ``Authorization: Bearer <key>`` against
``SCORING_AUTH_KEYS`` (primary and secondary, so a key can be rotated without downtime), as in
every other container target; clients read the primary key from the ``endpoints`` output. The
keys, the Redis access key and the Application Insights connection string reach the app as Key
Vault references resolved with the pull identity; no secret is a plain app setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native.web as web

from components.contract import (
    AUTH_BEARER_KEY,
    READINESS_PATH,
    Endpoint,
    Interfaces,
    ScoringDeployment,
    ScoringTarget,
    SecretRef,
    TargetEntry,
    WebSite,
)
from components.platform import diagnostics as diag
from components.platform.bundle import Platform
from components.platform.scoring_keys import (
    deployment_secrets,
    rotation,
)
from components.targets.app_service.autoscale import cpu_autoscale


def plan_tier(sku: str) -> str:
    """The App Service plan tier of a SKU name (B1 -> Basic, P1v3 -> PremiumV3, ...)."""
    if sku.startswith("B"):
        return "Basic"
    if sku.startswith("S"):
        return "Standard"
    if sku.endswith("mv3"):
        return "PremiumMV3"
    if sku.endswith("v3"):
        return "PremiumV3"
    if sku.endswith("v2"):
        return "PremiumV2"
    raise ValueError(f"no App Service plan tier known for SKU {sku!r}")


@dataclass(frozen=True)
class AppServiceTargetArgs:
    deployment: ScoringDeployment


class AppServiceTarget(ScoringTarget):
    def __init__(
        self, name: str, args: AppServiceTargetArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:target:AppService", name, None, opts)
        d = args.deployment
        child = pulumi.ResourceOptions(parent=self)

        self.plan = linux_plan(d, child)
        cache_env, cache_key = d.cache_env(signs_in_as=d.identity.principal_id)
        secrets = deployment_secrets("appservice", d, cache_key, child)
        self.web_app = web_app(
            d,
            self.plan,
            app_settings(d, cache_env, secrets),
            # The first pull and the Key Vault references need AcrPull and Secrets User.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(d.identity.grants)),
        )
        # Basic-auth publishing credentials (FTP and SCM/Kudu) off: deploys go through ARM.
        self.ftp_basic_auth = web.WebAppFtpAllowed(
            "ftp-basic-auth-off",
            name=self.web_app.name,
            resource_group_name=d.resource_group_name,
            allow=False,
            opts=child,
        )
        self.scm_basic_auth = web.WebAppScmAllowed(
            "scm-basic-auth-off",
            name=self.web_app.name,
            resource_group_name=d.resource_group_name,
            allow=False,
            opts=child,
        )
        self.autoscale = (
            cpu_autoscale(d, self.plan, child) if d.settings.app_service.autoscale else None
        )

        endpoint = Endpoint.for_host(
            pulumi.Output.concat("https://", self.web_app.default_host_name),
            AUTH_BEARER_KEY,
            key=d.scoring_keys[0].value,
            tls=True,
        )
        self._finish(endpoint, web_app=self.web_app.name, plan=self.plan.name)

    def interfaces(self) -> Interfaces:
        return Interfaces(
            endpoints={KEY: self.endpoint},
            diagnostics=tuple(diag.resource("web-app", self.web_app.id)),
            alerts=(WebSite(KEY, self.web_app.id),),
        )


KEY = "app_service"
TARGET: TargetEntry[Platform] = TargetEntry(
    KEY,
    enabled=lambda s: s.app_service.enabled,
    build=lambda d, _: AppServiceTarget("app-service", AppServiceTargetArgs(d)),
)


def linux_plan(d: ScoringDeployment, opts: pulumi.ResourceOptions) -> web.AppServicePlan:
    app = d.settings.app_service
    return web.AppServicePlan(
        "plan",
        name=d.naming.dashed("plan"),
        resource_group_name=d.resource_group_name,
        location=d.location,
        kind="linux",
        reserved=True,  # Linux
        sku=web.SkuDescriptionArgs(
            name=app.sku, tier=plan_tier(app.sku), capacity=app.min_instances
        ),
        # Across the region's zones in prod (validated: Premium SKU, >= 2 instances, a region
        # with zones): https://learn.microsoft.com/azure/reliability/reliability-app-service
        zone_redundant=d.settings.resilience.zone_redundant,
        tags=dict(d.tags),
        # With autoscale the instance count is the autoscale setting's (autoscale.py), not
        # ours: a refresh reads whatever it scaled to, and the next `pulumi up` would set it
        # back to the minimum. The declared capacity is the starting size only.
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(ignore_changes=["sku.capacity"] if app.autoscale else None),
        ),
    )


def app_settings(
    d: ScoringDeployment,
    cache_env: Mapping[str, pulumi.Input[str]],
    secrets: Mapping[str, SecretRef],
) -> dict[str, pulumi.Input[str]]:
    """The app's settings, the secrets as Key Vault references (resolved by the pull identity)."""
    return {
        **d.runtime_env(),
        **cache_env,
        "WEBSITES_PORT": str(d.settings.scoring.port),
        "WEBSITES_ENABLE_APP_SERVICE_STORAGE": "false",
        # App Service caches what Key Vault references resolve to and refetches every 24 hours
        # or on a configuration change (learn.microsoft.com/azure/app-service/
        # app-service-key-vault-references, "Rotation"): the keys' generation as a setting makes
        # the update that rotates them change the configuration, so the app takes the new
        # primary at once.
        "SCORING_ROTATION_GENERATION": str(rotation(d.settings).generation),
        **{name: ref.app_setting() for name, ref in secrets.items()},
    }


def web_app(
    d: ScoringDeployment,
    plan: web.AppServicePlan,
    settings: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> web.WebApp:
    return web.WebApp(
        "app",
        name=d.naming.web_app(),
        resource_group_name=d.resource_group_name,
        location=d.location,
        kind="app,linux,container",
        server_farm_id=plan.id,
        reserved=True,
        https_only=True,
        client_affinity_enabled=False,
        identity=web.ManagedServiceIdentityArgs(
            type=web.ManagedServiceIdentityType.USER_ASSIGNED,
            user_assigned_identities=[d.identity.id],
        ),
        key_vault_reference_identity=d.identity.id,
        site_config=_site_config(d, settings),
        **vnet_integration(d, "app_service"),
        tags=dict(d.tags),
        opts=opts,
    )


def vnet_integration(d: ScoringDeployment, role: str) -> dict[str, Any]:
    """Regional VNet integration under network isolation (``networkIsolation``): the app joins
    its delegated subnet (``role``: ``app_service`` or ``functions``) and routes all its
    outbound traffic (``applicationTraffic``, formerly vnetRouteAllEnabled) and its image pulls
    (``imagePullTraffic``, formerly vnetImagePullEnabled) through it, so the registry, key vault
    and storage are reached on their private endpoints. Site-level ``outboundVnetRouting`` of
    API 2025-05-01 (the SDK's web.WebApp):
    https://learn.microsoft.com/azure/app-service/overview-vnet-integration#routes and
    https://learn.microsoft.com/azure/app-service/configure-vnet-integration-routing
    Inbound stays public: the scoring endpoint is public by design. Without isolation: nothing.

    The subnet ID is taken together with the platform's private DNS zone IDs, which resolve
    once the platform's private endpoints have their DNS records (PrivateEndpoints.zone_ids):
    the app is created after its key vault and registry answer privately, not before.
    """
    if d.network is None:
        return {}
    zones = list(d.network.private_dns_zones.values())
    subnet = pulumi.Output.all(d.network.subnet_ids[role], *zones).apply(lambda v: str(v[0]))
    return {
        "virtual_network_subnet_id": subnet,
        "outbound_vnet_routing": web.OutboundVnetRoutingArgs(
            application_traffic=True, image_pull_traffic=True
        ),
    }


def _site_config(
    d: ScoringDeployment, settings: Mapping[str, pulumi.Input[str]]
) -> web.SiteConfigArgs:
    s = d.settings
    always_on = not s.app_service.sku.startswith("B") or s.stack == "prod"
    return web.SiteConfigArgs(
        linux_fx_version=pulumi.Output.concat("DOCKER|", d.image),
        acr_use_managed_identity_creds=True,
        acr_user_managed_identity_id=d.identity.client_id,
        app_settings=[web.NameValuePairArgs(name=k, value=v) for k, v in sorted(settings.items())],
        health_check_path=READINESS_PATH,
        always_on=always_on,
        http20_enabled=True,
        min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
        scm_min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
        ftps_state=web.FtpsState.DISABLED,
        remote_debugging_enabled=False,
    )
