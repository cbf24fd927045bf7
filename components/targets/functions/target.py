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

This module makes the identity, the storage, the role assignments and the app settings;
``triggers.py`` the Blob containers and Service Bus, ``app.py`` the plan and the function app.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.managedidentity as managedidentity

from components.contract import (
    AUTH_FUNCTION_KEY,
    SCORE_PATH,
    Endpoint,
    Interfaces,
    ScoringDeployment,
    ScoringTarget,
    SecretRef,
    TargetEntry,
    WebSite,
    role_definition_id,
)
from components.platform import diagnostics as diag
from components.platform.build_context import assemble
from components.platform.bundle import Platform
from components.platform.image import ScoringImage, ScoringImageArgs
from components.platform.workspace import secure_storage_account
from components.settings import Settings
from components.targets.functions.app import (
    HEALTH_PATH,
    default_host_key,
    function_app,
    function_plan,
    key_vault_secrets,
)
from components.targets.functions.network import private_endpoints
from components.targets.functions.triggers import (
    INPUT_CONTAINER,
    OUTPUT_CONTAINER,
    namespace_firewall,
    namespace_fqdn,
    service_bus_namespace,
    trigger_containers,
    trigger_queue,
)

# Built-in role definition IDs (the same GUID in every subscription).
ROLE_STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
ROLE_SERVICE_BUS_DATA_RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
ROLE_SERVICE_BUS_DATA_OWNER = "090c5cfd-751d-490a-894a-3ce6f1109419"

TRIGGER_CONNECTION = "TRIGGER_STORAGE"  # connection prefix of the Blob trigger (function_app.py)
SERVICE_BUS_CONNECTION = "SERVICEBUS"  # connection prefix of the Service Bus trigger
ROUTE_PREFIX = "/api"  # host.json extensions.http.routePrefix

# grant(logical name, role definition GUID, scope): a role assignment to the runtime identity.
Grant = Callable[[str, str, pulumi.Input[str]], authorization.RoleAssignment]


@dataclass(frozen=True)
class FunctionsTargetArgs:
    deployment: ScoringDeployment
    subscription_id: pulumi.Input[str]
    # <login server>/<repository>-functions@sha256:<digest>, built from functions.Dockerfile.
    image: pulumi.Input[str]


class FunctionsTarget(ScoringTarget):
    def __init__(
        self, name: str, args: FunctionsTargetArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:target:Functions", name, None, opts)
        d = args.deployment
        s = d.settings
        rg = d.resource_group_name
        child = pulumi.ResourceOptions(parent=self)

        self.runtime_identity = runtime_identity(s, rg, child)
        grant = grantor(self.runtime_identity, args.subscription_id, child)
        self.host_storage = secure_storage_account(
            "host-storage", s.naming.storage("fnh"), s, rg, child, allow_shared_key_access=False
        )
        self.trigger_storage = secure_storage_account(
            "trigger-storage", s.naming.storage("fnd"), s, rg, child, allow_shared_key_access=False
        )
        self.containers = trigger_containers(self.trigger_storage, rg, child)
        grants = self._storage_grants(grant)
        self.service_bus = service_bus_namespace(s, rg, child)
        self.service_bus_firewall = namespace_firewall(s, self.service_bus, rg, child)
        # Under network isolation: the data planes on private endpoints (network.py).
        self.private_endpoints = private_endpoints(
            d, self.host_storage, self.trigger_storage, self.service_bus, child
        )
        self.queue = trigger_queue(s.functions.queue_name, self.service_bus, rg, child)
        # The trigger only receives (results go to the `output` container).
        grants.append(grant("servicebus-receiver", ROLE_SERVICE_BUS_DATA_RECEIVER, self.queue.id))
        if s.functions.elastic:
            # Elastic Premium scales out on queue depth (runtime scale monitoring), which reads
            # the queue's runtime properties: the trigger identity needs Azure Service Bus Data
            # Owner beside Data Receiver (MS Learn, functions-bindings-service-bus, "Grant
            # permission to the identity": trigger -> Data Receiver, Data Owner).
            grants.append(grant("servicebus-owner", ROLE_SERVICE_BUS_DATA_OWNER, self.queue.id))
        self.service_bus_fqdn = namespace_fqdn(self.service_bus)
        self.plan = function_plan(s, rg, child)
        cache_env, cache_key = d.cache_env(signs_in_as=d.identity.principal_id)
        secrets = key_vault_secrets(d, cache_key, child)
        self.app = function_app(
            d,
            args.image,
            self.plan,
            self.runtime_identity,
            self._app_settings(d, cache_env, secrets),
            # The host needs its storage (and, isolated, its private endpoints) and the image
            # pull needs AcrPull at first start.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    *grants,
                    *d.identity.grants,
                    *([self.private_endpoints] if self.private_endpoints else []),
                ],
            ),
        )
        self.grants = tuple(grants)
        self.function_key = default_host_key(self.app, self)
        self.summary: dict[str, Any] = self._summary()
        self._finish(self._endpoint(), functions=self.summary)

    def interfaces(self) -> Interfaces:
        return Interfaces(
            endpoints={KEY: self.endpoint},
            diagnostics=(
                *diag.resource("function-app", self.app.id),
                *diag.storage_account("functions-host-storage", self.host_storage.id),
                *diag.storage_account("functions-trigger-storage", self.trigger_storage.id),
                *diag.resource("service-bus", self.service_bus.id),
            ),
            alerts=(WebSite(KEY, self.app.id),),
            outputs={"functions": self.summary},
        )

    def _storage_grants(self, grant: Grant) -> list[authorization.RoleAssignment]:
        # The host keeps keys, leases and blob-trigger receipts in blobs and uses queues for the
        # blob trigger's scan notifications: Blob Data Owner + Queue Data Contributor
        # (Functions docs, "Connecting to host storage with an identity").
        # The trigger account: the Blob trigger needs Blob Data Owner and Queue Data Contributor
        # (poison-blob queue); the app writes results to `output` with the same identity.
        host, trigger = self.host_storage.id, self.trigger_storage.id
        return [
            grant("host-blob-owner", ROLE_STORAGE_BLOB_DATA_OWNER, host),
            grant("host-queue-contributor", ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR, host),
            grant("trigger-blob-owner", ROLE_STORAGE_BLOB_DATA_OWNER, trigger),
            grant("trigger-queue-contributor", ROLE_STORAGE_QUEUE_DATA_CONTRIBUTOR, trigger),
        ]

    def _app_settings(
        self,
        d: ScoringDeployment,
        cache_env: Mapping[str, pulumi.Input[str]],
        secrets: Mapping[str, SecretRef],
    ) -> dict[str, pulumi.Input[str]]:
        """The app settings: identity-based connections to this component's storage and queue."""
        client_id = self.runtime_identity.client_id
        blob_trigger = self.trigger_storage.primary_endpoints
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
            "AzureWebJobsStorage__clientId": client_id,
            # Blob trigger + result writes.
            f"{TRIGGER_CONNECTION}__blobServiceUri": blob_trigger.blob,
            f"{TRIGGER_CONNECTION}__queueServiceUri": blob_trigger.queue,
            f"{TRIGGER_CONNECTION}__credential": "managedidentity",
            f"{TRIGGER_CONNECTION}__clientId": client_id,
            "OUTPUT_CONTAINER": OUTPUT_CONTAINER,
            # Service Bus trigger.
            f"{SERVICE_BUS_CONNECTION}__fullyQualifiedNamespace": self.service_bus_fqdn,
            f"{SERVICE_BUS_CONNECTION}__credential": "managedidentity",
            f"{SERVICE_BUS_CONNECTION}__clientId": client_id,
            "SERVICEBUS_QUEUE_NAME": self.queue.name,
        }
        for key, ref in secrets.items():
            # A reference holds only the secret's URI: not secret itself, so the preview and the
            # state show every setting (and that none carries a value).
            settings[key] = pulumi.Output.unsecret(ref.app_setting())
        return settings

    def _endpoint(self) -> Endpoint:
        """The ``endpoints`` entry: the default host key, secret."""
        base = pulumi.Output.concat("https://", self.app.default_host_name)
        return Endpoint(
            scoring_uri=pulumi.Output.concat(base, ROUTE_PREFIX, SCORE_PATH),
            swagger_uri=None,  # the function app serves no OpenAPI document
            health_uri=pulumi.Output.concat(base, HEALTH_PATH),
            auth_scheme=AUTH_FUNCTION_KEY,
            key=self.function_key,
            extra={"function_app": self.app.name},
        )

    def _summary(self) -> dict[str, Any]:
        return {
            "function_app": self.app.name,
            "host_storage_account": self.host_storage.name,
            "trigger_storage_account": self.trigger_storage.name,
            "input_container": INPUT_CONTAINER,
            "output_container": OUTPUT_CONTAINER,
            "service_bus_namespace": self.service_bus_fqdn,
            "queue_name": self.queue.name,
        }


def runtime_identity(
    s: Settings, resource_group_name: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> managedidentity.UserAssignedIdentity:
    """The identity of the app's data-plane connections (host storage, triggers)."""
    return managedidentity.UserAssignedIdentity(
        "runtime-identity",
        resource_name_=s.naming.dashed("id-func"),
        resource_group_name=resource_group_name,
        location=s.location,
        tags=dict(s.tags),
        opts=opts,
    )


def grantor(
    identity: managedidentity.UserAssignedIdentity,
    subscription_id: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> Grant:
    """A :data:`Grant` giving roles to ``identity``."""

    def grant(logical: str, role: str, scope: pulumi.Input[str]) -> authorization.RoleAssignment:
        return authorization.RoleAssignment(
            logical,
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(subscription_id, role),
            scope=scope,
            opts=opts,
        )

    return grant


KEY = "functions"


def _build(d: ScoringDeployment, p: Platform) -> FunctionsTarget:
    """The function host image (the same scoring core behind three triggers), then the app."""
    image = ScoringImage(
        "functions-image",
        ScoringImageArgs(
            login_server=p.registry.login_server,
            tenant_id=p.tenant_id,
            repository=f"{d.settings.scoring.image_repository}-functions",
            context=assemble(d.settings.model, "functions"),
            after=[p.registry.push_grant],
        ),
    )
    return FunctionsTarget("functions", FunctionsTargetArgs(d, p.subscription_id, image.ref))


TARGET: TargetEntry[Platform] = TargetEntry(KEY, lambda s: s.functions.enabled, _build)
