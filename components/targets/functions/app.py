"""The Functions target's plan and function app.

The plan: EP1 in dev as in the seeds, ``kind=elastic``, ``reserved=True``, burst limit
``functionsMaxElasticWorkers``; P*v3 gives a Dedicated plan with Always On instead. The function
app (``functionapp,linux,container``): HTTPS only, TLS 1.2, FTPS off, the image pulled by the pull
identity, its connections identity-based (the runtime identity) and its secrets Key Vault
references.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_azure_native.managedidentity as managedidentity
import pulumi_azure_native.web as web

from components.contract import ScoringDeployment, SecretRef
from components.platform.scoring_keys import CONTENT_CONNECTION, rotation, vault_secret
from components.platform.settings import ZONE_MIN_INSTANCES
from components.providers.function_keys import FunctionHostKeys
from components.settings import Settings

# The Functions host's own anonymous liveness endpoint (GET or POST, 200 while the host runs).
# function_app.py defines no health route, and the host's /admin/host/status needs the master key.
HEALTH_PATH = "/admin/host/ping"


def function_plan(
    s: Settings, resource_group_name: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> web.AppServicePlan:
    f = s.functions
    tier = "ElasticPremium" if f.elastic else "PremiumV3"
    zonal = s.resilience.zone_redundant
    return web.AppServicePlan(
        "plan",
        name=s.naming.dashed("func-plan"),
        resource_group_name=resource_group_name,
        location=s.location,
        kind="elastic" if f.elastic else "linux",
        reserved=True,  # Linux
        # A zone-redundant plan keeps ZONE_MIN_INSTANCES instances, one per zone it spreads over
        # (validated with the burst limit): "Reliability in Azure Functions",
        # https://learn.microsoft.com/azure/reliability/reliability-functions
        sku=web.SkuDescriptionArgs(
            name=f.sku,
            tier=tier,
            family="EP" if f.elastic else None,
            capacity=ZONE_MIN_INSTANCES if zonal else 1,
        ),
        zone_redundant=zonal,
        maximum_elastic_worker_count=f.max_elastic_workers if f.elastic else None,
        tags=dict(s.tags),
        # The instance count belongs to the platform's scale-out once the plan exists: a drift of
        # sku.capacity must not be reset by the next `pulumi up` (the same fix in the Azure
        # Verified Module: Azure/terraform-azurerm-avm-res-web-serverfarm#147).
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(ignore_changes=["sku.capacity"])
        ),
    )


def key_vault_secrets(
    d: ScoringDeployment, cache_key: SecretRef | None, opts: pulumi.ResourceOptions
) -> dict[str, SecretRef]:
    """The secrets the app reads: they reach it as Key Vault references, resolved by the pull
    identity."""
    secrets: dict[str, SecretRef] = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": vault_secret(
            "appinsights-secret",
            "functions-appinsights-connection",
            d.app_insights_connection_string,
            d.resource_group_name,
            d.key_vault.name,
            opts,
            expires=rotation(d.settings).expires,
            content_type=CONTENT_CONNECTION,
        )
    }
    if cache_key is not None:
        secrets["REDIS_PASSWORD"] = cache_key
    return secrets


def function_app(
    d: ScoringDeployment,
    image: pulumi.Input[str],
    plan: web.AppServicePlan,
    runtime_identity: managedidentity.UserAssignedIdentity,
    settings: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> web.WebApp:
    s = d.settings
    identity_id = d.identity.id
    return web.WebApp(
        "app",
        name=s.naming.function_app(),
        resource_group_name=d.resource_group_name,
        location=s.location,
        kind="functionapp,linux,container",
        reserved=True,
        server_farm_id=plan.id,
        https_only=True,
        client_affinity_enabled=False,
        identity=web.ManagedServiceIdentityArgs(
            type=web.ManagedServiceIdentityType.USER_ASSIGNED,
            user_assigned_identities=[identity_id, runtime_identity.id],
        ),
        # Key Vault references resolve as the pull identity (Key Vault Secrets User).
        key_vault_reference_identity=identity_id,
        site_config=_site_config(d, image, settings),
        **vnet_integration(d),
        tags=dict(s.tags),
        opts=opts,
    )


def vnet_integration(d: ScoringDeployment) -> dict[str, Any]:
    """Under network isolation: regional VNet integration on the ``functions`` subnet, all
    outbound traffic and the image pull through it (site-level ``outboundVnetRouting``,
    API 2025-05-01; formerly vnetRouteAllEnabled / vnetImagePullEnabled), so the host storage,
    the triggers' storage, the registry and the key vault are reached on private endpoints:
    https://learn.microsoft.com/azure/azure-functions/functions-networking-options and
    https://learn.microsoft.com/azure/app-service/overview-vnet-integration#routes
    No content share (a container app: WEBSITES_ENABLE_APP_SERVICE_STORAGE=false and no
    WEBSITE_CONTENTAZUREFILECONNECTIONSTRING), so ``contentShareTraffic`` stays off."""
    if d.network is None:
        return {}
    return {
        "virtual_network_subnet_id": d.network.subnet_ids["functions"],
        "outbound_vnet_routing": web.OutboundVnetRoutingArgs(
            application_traffic=True, image_pull_traffic=True
        ),
    }


def _site_config(
    d: ScoringDeployment, image: pulumi.Input[str], settings: Mapping[str, pulumi.Input[str]]
) -> web.SiteConfigArgs:
    f = d.settings.functions
    return web.SiteConfigArgs(
        linux_fx_version=pulumi.Output.concat("DOCKER|", image),
        acr_use_managed_identity_creds=True,
        acr_user_managed_identity_id=d.identity.client_id,
        app_settings=[web.NameValuePairArgs(name=k, value=v) for k, v in sorted(settings.items())],
        min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
        scm_min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
        ftps_state=web.FtpsState.DISABLED,
        http20_enabled=True,
        # Dedicated plans idle without Always On. Elastic Premium keeps its always-ready
        # instances warm itself, and Always On there "will cause unnecessary scale out of your
        # plan and generate a number of 503 responses" (Azure/Azure-Functions wiki, "Enable
        # Always On when running on dedicated App Service Plan"): docs/security.md, CKV_AZURE_214.
        always_on=not f.elastic,
        # Zone-redundant: every zone keeps a warm instance of the app.
        minimum_elastic_instance_count=(
            (ZONE_MIN_INSTANCES if d.settings.resilience.zone_redundant else 1)
            if f.elastic
            else None
        ),
        function_app_scale_limit=f.max_elastic_workers if f.elastic else None,
        # Elastic Premium scales on its Blob and Service Bus triggers' backlog; under isolation
        # those sit behind private endpoints the platform's scale controller cannot reach, so
        # the runtime reports it: "When you run a Premium plan, you can connect non-HTTP trigger
        # functions to services that run inside a virtual network. To do this, you must enable
        # virtual network trigger support" (functionsRuntimeScaleMonitoringEnabled):
        # https://learn.microsoft.com/azure/azure-functions/functions-networking-options#premium-plan-with-virtual-network-triggers
        functions_runtime_scale_monitoring_enabled=(
            True if f.elastic and d.settings.network.isolated else None
        ),
        health_check_path=HEALTH_PATH,
    )


def default_host_key(app: web.WebApp, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The app's default function key, read once its host answers (a bounded wait), secret.

    ``listWebAppHostKeys`` right after the app is created fails while the image is pulling and
    its storage roles are seconds old (400 "... from host runtime": Azure/azure-cli#20892,
    Azure/azure-functions-host#5722) and aborts ``pulumi up``; see providers/function_keys.py.
    """
    keys = FunctionHostKeys(
        "host-keys",
        site_id=app.id,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.secret(keys.default_key)
