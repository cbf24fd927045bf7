"""Azure Functions target: the function image on a Linux Elastic Premium plan, three triggers.

The function app (``scoring/functions/function_app.py``, image ``scoring/functions.Dockerfile``)
serves the scoring core behind an HTTP trigger (``/api/score``, function key), a Blob trigger
(``input/{blobname}.json`` -> ``output/{blobname}_out.json`` in the trigger storage account) and
a Service Bus queue trigger. This component creates what it runs on:

- **host storage** (``AzureWebJobsStorage``): identity-based (``__accountName``,
  ``__credential=managedidentity``, ``__clientId``), shared-key access off. A custom container
  carries its code in the image, so there is no Azure Files content share and no
  ``WEBSITE_CONTENTAZUREFILECONNECTIONSTRING`` (the one setting that would need an account key);
  ``WEBSITES_ENABLE_APP_SERVICE_STORAGE=false``.
- **trigger storage** with private ``input`` and ``output`` containers, also keyless.
- **Service Bus** namespace (local/SAS auth off, TLS 1.2) and the trigger queue.
- a **runtime identity** of its own for those data-plane connections. The shared pull identity
  (AcrPull, Key Vault Secrets User) pulls the image and resolves the Key Vault references; it
  gets no storage or Service Bus rights, so no other target (ACI, AKS, ...) running as the pull
  identity can read this app's host storage, where the Functions host keeps its keys.
- the **plan** (EP1 in dev as in the seeds, ``kind=elastic``, ``reserved=True``, burst limit
  ``functionsMaxElasticWorkers``; P*v3 gives a Dedicated plan with Always On instead) and the
  **function app** (``functionapp,linux,container``), HTTPS only, TLS 1.2, FTPS off.

Secrets: the Redis key is a Key Vault reference; the default host key is read after deployment
(``listWebAppHostKeys``) and leaves only as a secret Output in the ``endpoints`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.managedidentity as managedidentity
import pulumi_azure_native.servicebus as servicebus
import pulumi_azure_native.storage as storage
import pulumi_azure_native.web as web

from components.contract import (
    AUTH_FUNCTION_KEY,
    SCORE_PATH,
    Endpoint,
    ScoringDeployment,
    ScoringTarget,
    SecretRef,
    role_definition_id,
)
from components.platform.scoring_keys import vault_secret
from components.platform.workspace import secure_storage_account

# Built-in role definition IDs (the same GUID in every subscription).
ROLE_STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
ROLE_SERVICE_BUS_DATA_RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"

INPUT_CONTAINER = "input"
OUTPUT_CONTAINER = "output"
TRIGGER_CONNECTION = "TRIGGER_STORAGE"  # connection prefix of the Blob trigger (function_app.py)
SERVICE_BUS_CONNECTION = "SERVICEBUS"  # connection prefix of the Service Bus trigger
ROUTE_PREFIX = "/api"  # host.json extensions.http.routePrefix
# The Functions host's own anonymous liveness endpoint (GET or POST, 200 while the host runs).
# function_app.py defines no health route, and the host's /admin/host/status needs the master key.
HEALTH_PATH = "/admin/host/ping"


@dataclass(frozen=True)
class FunctionsTargetArgs:
    deployment: ScoringDeployment
    subscription_id: pulumi.Input[str]
    # <login server>/<repository>-functions@sha256:<digest>, built from functions.Dockerfile.
    image: pulumi.Input[str]


def _fqdn(endpoint: str | None) -> str:
    """``https://x.servicebus.windows.net:443/`` -> ``x.servicebus.windows.net``."""
    return urlsplit(endpoint or "").hostname or ""


class FunctionsTarget(ScoringTarget):
    def __init__(
        self, name: str, args: FunctionsTargetArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:target:Functions", name, None, opts)
        d = args.deployment
        s = d.settings
        f = s.functions
        rg = d.resource_group_name
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(s.tags)

        # --- identity for the data-plane connections -----------------------------------------
        self.runtime_identity = managedidentity.UserAssignedIdentity(
            "runtime-identity",
            resource_name_=s.naming.dashed("id-func"),
            resource_group_name=rg,
            location=s.location,
            tags=tags,
            opts=child,
        )
        principal = self.runtime_identity.principal_id

        def grant(
            logical: str, role: str, scope: pulumi.Input[str]
        ) -> authorization.RoleAssignment:
            return authorization.RoleAssignment(
                logical,
                principal_id=principal,
                principal_type="ServicePrincipal",
                role_definition_id=role_definition_id(args.subscription_id, role),
                scope=scope,
                opts=child,
            )

        # --- storage --------------------------------------------------------------------------
        self.host_storage = secure_storage_account(
            "host-storage", s.naming.storage("fnh"), s, rg, child, allow_shared_key_access=False
        )
        self.trigger_storage = secure_storage_account(
            "trigger-storage", s.naming.storage("fnd"), s, rg, child, allow_shared_key_access=False
        )
        self.containers = {
            c: storage.BlobContainer(
                f"{c}-container",
                container_name=c,
                account_name=self.trigger_storage.name,
                resource_group_name=rg,
                public_access=storage.PublicAccess.NONE,
                opts=child,
            )
            for c in (INPUT_CONTAINER, OUTPUT_CONTAINER)
        }
        # The host keeps keys, leases and blob-trigger receipts in blobs and uses queues for the
        # blob trigger's scan notifications: Blob Data Owner + Queue Data Contributor
        # (Functions docs, "Connecting to host storage with an identity").
        # The trigger account: the Blob trigger needs Blob Data Owner and Queue Data Contributor
        # (poison-blob queue); the app writes results to `output` with the same identity.
        grants = [
            grant("host-blob-owner", ROLE_STORAGE_BLOB_DATA_OWNER, self.host_storage.id),
            grant(
                "host-queue-contributor", ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR, self.host_storage.id
            ),
            grant("trigger-blob-owner", ROLE_STORAGE_BLOB_DATA_OWNER, self.trigger_storage.id),
            grant(
                "trigger-queue-contributor",
                ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR,
                self.trigger_storage.id,
            ),
        ]

        # --- Service Bus ----------------------------------------------------------------------
        self.service_bus = servicebus.Namespace(
            "service-bus",
            namespace_name=s.naming.service_bus(),
            resource_group_name=rg,
            location=s.location,
            sku=servicebus.SBSkuArgs(
                name=servicebus.SkuName(f.service_bus_sku),
                tier=servicebus.SkuTier(f.service_bus_sku),
                capacity=1 if f.service_bus_sku == "Premium" else None,  # messaging units
            ),
            disable_local_auth=True,  # Entra ID only: no SAS keys to leak
            minimum_tls_version=servicebus.TlsVersion.TLS_VERSION_1_2,
            public_network_access="Enabled" if s.public_network_access else "Disabled",
            tags=tags,
            opts=child,
        )
        self.queue = servicebus.Queue(
            "queue",
            queue_name=f.queue_name,
            namespace_name=self.service_bus.name,
            resource_group_name=rg,
            max_delivery_count=5,
            lock_duration="PT1M",
            dead_lettering_on_message_expiration=True,
            opts=child,
        )
        # The trigger only receives (results go to the `output` container).
        grants.append(grant("servicebus-receiver", ROLE_SERVICE_BUS_DATA_RECEIVER, self.queue.id))
        self.service_bus_fqdn = self.service_bus.service_bus_endpoint.apply(_fqdn)

        # --- plan -----------------------------------------------------------------------------
        tier = "ElasticPremium" if f.elastic else "PremiumV3"
        self.plan = web.AppServicePlan(
            "plan",
            name=s.naming.dashed("func-plan"),
            resource_group_name=rg,
            location=s.location,
            kind="elastic" if f.elastic else "linux",
            reserved=True,  # Linux
            sku=web.SkuDescriptionArgs(
                name=f.sku, tier=tier, family="EP" if f.elastic else None, capacity=1
            ),
            maximum_elastic_worker_count=f.max_elastic_workers if f.elastic else None,
            tags=tags,
            opts=child,
        )

        # --- function app ---------------------------------------------------------------------
        identity_id = d.identity.id
        runtime_client_id = self.runtime_identity.client_id
        # Secrets reach the app as Key Vault references, resolved by the pull identity.
        secrets: dict[str, SecretRef] = {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": vault_secret(
                "appinsights-secret",
                "functions-appinsights-connection",
                d.app_insights_connection_string,
                rg,
                d.key_vault.name,
                child,
            )
        }
        cache_env, cache_key = d.cache_env(signs_in_as=d.identity.principal_id)
        if cache_key is not None:
            secrets["REDIS_PASSWORD"] = cache_key
        settings: dict[str, pulumi.Input[str]] = {
            **d.runtime_env(),
            **cache_env,
            "FUNCTIONS_EXTENSION_VERSION": "~4",
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "WEBSITES_ENABLE_APP_SERVICE_STORAGE": "false",
            # The function image runs non-root, so its host listens on 8080, not 80.
            "WEBSITES_PORT": "8080",
            # Host storage, identity-based (no account key anywhere).
            "AzureWebJobsStorage__accountName": self.host_storage.name,
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": runtime_client_id,
            # Blob trigger + result writes.
            f"{TRIGGER_CONNECTION}__blobServiceUri": self.trigger_storage.primary_endpoints.blob,
            f"{TRIGGER_CONNECTION}__queueServiceUri": self.trigger_storage.primary_endpoints.queue,
            f"{TRIGGER_CONNECTION}__credential": "managedidentity",
            f"{TRIGGER_CONNECTION}__clientId": runtime_client_id,
            "OUTPUT_CONTAINER": OUTPUT_CONTAINER,
            # Service Bus trigger.
            f"{SERVICE_BUS_CONNECTION}__fullyQualifiedNamespace": self.service_bus_fqdn,
            f"{SERVICE_BUS_CONNECTION}__credential": "managedidentity",
            f"{SERVICE_BUS_CONNECTION}__clientId": runtime_client_id,
            "SERVICEBUS_QUEUE_NAME": self.queue.name,
        }
        for key, ref in secrets.items():
            # A reference holds only the secret's URI: not secret itself, so the preview and the
            # state show every setting (and that none carries a value).
            settings[key] = pulumi.Output.unsecret(ref.app_setting())

        self.app = web.WebApp(
            "app",
            name=s.naming.function_app(),
            resource_group_name=rg,
            location=s.location,
            kind="functionapp,linux,container",
            reserved=True,
            server_farm_id=self.plan.id,
            https_only=True,
            client_affinity_enabled=False,
            identity=web.ManagedServiceIdentityArgs(
                type=web.ManagedServiceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[identity_id, self.runtime_identity.id],
            ),
            # Key Vault references resolve as the pull identity (Key Vault Secrets User).
            key_vault_reference_identity=identity_id,
            site_config=web.SiteConfigArgs(
                linux_fx_version=pulumi.Output.concat("DOCKER|", args.image),
                acr_use_managed_identity_creds=True,
                acr_user_managed_identity_id=d.identity.client_id,
                app_settings=[
                    web.NameValuePairArgs(name=k, value=v) for k, v in sorted(settings.items())
                ],
                min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
                scm_min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
                ftps_state=web.FtpsState.DISABLED,
                http20_enabled=True,
                always_on=not f.elastic,  # Dedicated plans idle without it; EP has no Always On
                minimum_elastic_instance_count=1 if f.elastic else None,
                function_app_scale_limit=f.max_elastic_workers if f.elastic else None,
                health_check_path=HEALTH_PATH,
            ),
            tags=tags,
            # The host needs its storage and the image pull needs AcrPull at first start.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*grants, *d.identity.grants]),
        )
        self.grants = tuple(grants)

        # --- endpoint: the default host key, secret ------------------------------------------
        host_keys = web.list_web_app_host_keys_output(
            name=self.app.name, resource_group_name=rg, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.function_key = pulumi.Output.secret(
            host_keys.apply(lambda k: (k.function_keys or {}).get("default", ""))
        )
        base = pulumi.Output.concat("https://", self.app.default_host_name)
        endpoint = Endpoint(
            scoring_uri=pulumi.Output.concat(base, ROUTE_PREFIX, SCORE_PATH),
            swagger_uri=None,  # the function app serves no OpenAPI document
            health_uri=pulumi.Output.concat(base, HEALTH_PATH),
            auth_scheme=AUTH_FUNCTION_KEY,
            key=self.function_key,
            extra={"function_app": self.app.name},
        )
        self.summary: dict[str, Any] = {
            "function_app": self.app.name,
            "host_storage_account": self.host_storage.name,
            "trigger_storage_account": self.trigger_storage.name,
            "input_container": INPUT_CONTAINER,
            "output_container": OUTPUT_CONTAINER,
            "service_bus_namespace": self.service_bus_fqdn,
            "queue_name": self.queue.name,
        }
        self._finish(endpoint, functions=self.summary)
