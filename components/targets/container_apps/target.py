"""Container Apps target: the scoring image with HTTPS on the environment's domain, scale to zero.

A **managed environment** with the workload profiles model (the Consumption profile, and a
serverless GPU profile with ``containerAppsGpu``), its logs sent by Azure Monitor: app logs
``destination: azure-monitor`` plus a diagnostic setting to the program's Log Analytics, the
non-legacy path (the ``log-analytics`` destination needs the workspace's shared key in the
environment: https://learn.microsoft.com/azure/container-apps/log-options). Under network
isolation it joins its delegated subnet (``container_apps``, a /27 or larger for workload
profiles: https://learn.microsoft.com/azure/container-apps/networking), reaches the registry and
the key vault through their private endpoints, is zone redundant with ``zoneRedundant``
(https://learn.microsoft.com/azure/container-apps/how-to-zone-redundancy), and its ingress is
internal unless ``containerAppsInternalOnly`` is false.

A **container app** running the image by digest, pulled by the pull identity
(``registries: [{server, identity}]``; the registry has no admin user), the scoring keys, the
Application Insights connection string and the Redis key as Key Vault references resolved by the
same identity (``secrets: [{keyVaultUrl, identity}]`` and ``secretRef`` environment values:
https://learn.microsoft.com/azure/container-apps/manage-secrets#reference-secret-from-key-vault),
external HTTPS ingress with ``allowInsecure: false`` (HTTP is redirected to HTTPS:
https://learn.microsoft.com/azure/container-apps/ingress-overview), startup, readiness and
liveness probes on the host's routes
(https://learn.microsoft.com/azure/container-apps/health-probes), and an HTTP scale rule on
concurrent requests (settings.py). Its platform metric alerts (ingress 5xx, restarts, replicas at
the maximum, CPU and memory) are its ``alerts`` interface (alerts.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.app as app

from components.contract import (
    AUTH_BEARER_KEY,
    LIVENESS_PATH,
    READINESS_PATH,
    Endpoint,
    Interfaces,
    PlatformMetrics,
    ScoringDeployment,
    ScoringTarget,
    SecretRef,
    TargetEntry,
)
from components.platform import diagnostics as diag
from components.platform.bundle import Platform
from components.platform.scoring_keys import (
    deployment_secrets,
    rotation,
)
from components.targets.container_apps import alerts
from components.targets.container_apps.settings import CONSUMPTION_PROFILE, GPU_PROFILES

KEY = "container_apps"
SCALE_RULE = "http-concurrency"
# Container app secret names by the environment variable that reads them.
SECRET_NAMES = {
    "SCORING_AUTH_KEYS": "scoring-auth-keys",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "appinsights-connection",
    "REDIS_PASSWORD": "redis-password",
}


@dataclass(frozen=True)
class ContainerAppsTargetArgs:
    deployment: ScoringDeployment


class ContainerAppsTarget(ScoringTarget):
    def __init__(
        self, name: str, args: ContainerAppsTargetArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:target:ContainerApps", name, None, opts)
        d = args.deployment
        self._settings = d.settings.container_apps
        child = pulumi.ResourceOptions(parent=self)

        self.environment = managed_environment(d, child)
        cache_env, cache_key = d.cache_env(signs_in_as=d.identity.principal_id)
        secrets = deployment_secrets("containerapps", d, cache_key, child)
        self.app = container_app(
            d,
            self.environment,
            {**d.runtime_env(), **cache_env, **rotation_env(d)},
            secrets,
            # The first pull and the Key Vault references need AcrPull and Secrets User.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(d.identity.grants)),
        )
        fqdn = self.app.latest_revision_fqdn.apply(lambda f: f or "")
        ingress_fqdn = self.app.configuration.apply(
            lambda c: (c.ingress.fqdn if c and c.ingress else None) or ""
        )
        endpoint = Endpoint.for_host(
            pulumi.Output.concat("https://", ingress_fqdn),
            AUTH_BEARER_KEY,
            key=d.scoring_keys[0].value,
            tls=True,
            internal=bool(d.network and d.settings.container_apps.internal_only),
        )
        self._finish(
            endpoint,
            container_app=self.app.name,
            environment=self.environment.name,
            latest_revision_fqdn=fqdn,
        )

    def interfaces(self) -> Interfaces:
        return Interfaces(
            endpoints={KEY: self.endpoint},
            diagnostics=tuple(diag.resource("container-apps-env", self.environment.id)),
            alerts=(PlatformMetrics(self.app.id, alerts.rules(KEY, self._settings)),),
        )


TARGET: TargetEntry[Platform] = TargetEntry(
    KEY,
    enabled=lambda s: s.container_apps.enabled,
    build=lambda d, _: ContainerAppsTarget("container-apps", ContainerAppsTargetArgs(d)),
)


def rotation_env(d: ScoringDeployment) -> dict[str, pulumi.Input[str]]:
    """The keys' generation: the update that rotates them changes the template, so a new revision
    starts and reads the new secret versions (a running replica keeps the values it started
    with)."""
    return {"SCORING_ROTATION_GENERATION": str(rotation(d.settings).generation)}


def workload_profiles(d: ScoringDeployment) -> list[app.WorkloadProfileArgs]:
    """The Consumption profile every workload profiles environment has, and the serverless GPU
    profile when ``containerAppsGpu`` asks for one."""
    s = d.settings.container_apps
    found = [
        app.WorkloadProfileArgs(name=CONSUMPTION_PROFILE, workload_profile_type=CONSUMPTION_PROFILE)
    ]
    if s.gpu:
        found.append(
            app.WorkloadProfileArgs(
                name=s.workload_profile, workload_profile_type=GPU_PROFILES[s.gpu][0]
            )
        )
    return found


def managed_environment(
    d: ScoringDeployment, opts: pulumi.ResourceOptions
) -> app.ManagedEnvironment:
    s = d.settings
    vnet = None
    if d.network is not None:
        vnet = app.VnetConfigurationArgs(
            infrastructure_subnet_id=d.network.subnet_ids[KEY],
            internal=s.container_apps.internal_only,
        )
    return app.ManagedEnvironment(
        "environment",
        environment_name=d.naming.container_apps_environment(),
        resource_group_name=d.resource_group_name,
        location=d.location,
        app_logs_configuration=app.AppLogsConfigurationArgs(destination="azure-monitor"),
        workload_profiles=workload_profiles(d),
        vnet_configuration=vnet,
        zone_redundant=bool(d.network is not None and s.resilience.zone_redundant),
        tags=dict(d.tags),
        opts=opts,
    )


def container_app(
    d: ScoringDeployment,
    environment: app.ManagedEnvironment,
    env: Mapping[str, pulumi.Input[str]],
    secrets: Mapping[str, SecretRef],
    opts: pulumi.ResourceOptions,
) -> app.ContainerApp:
    s = d.settings
    ca = s.container_apps
    return app.ContainerApp(
        "app",
        container_app_name=d.naming.container_app(),
        resource_group_name=d.resource_group_name,
        location=d.location,
        environment_id=environment.id,
        workload_profile_name=ca.workload_profile,
        identity=app.ManagedServiceIdentityArgs(
            type=app.ManagedServiceIdentityType.USER_ASSIGNED,
            user_assigned_identities=[d.identity.id],
        ),
        configuration=app.ConfigurationArgs(
            active_revisions_mode=app.ActiveRevisionsMode.SINGLE,
            ingress=app.IngressArgs(
                external=True,
                target_port=s.scoring.port,
                transport=app.IngressTransportMethod.HTTP,
                allow_insecure=False,
                traffic=[app.TrafficWeightArgs(latest_revision=True, weight=100)],
            ),
            registries=[
                app.RegistryCredentialsArgs(server=d.registry_login_server, identity=d.identity.id)
            ],
            secrets=[
                app.SecretArgs(
                    name=SECRET_NAMES[var], key_vault_url=ref.uri, identity=d.identity.id
                )
                for var, ref in sorted(secrets.items())
            ],
        ),
        template=app.TemplateArgs(
            containers=[scoring_container(d, env, secrets)],
            scale=app.ScaleArgs(
                min_replicas=ca.min_replicas,
                max_replicas=ca.max_replicas,
                rules=[
                    app.ScaleRuleArgs(
                        name=SCALE_RULE,
                        http=app.HttpScaleRuleArgs(
                            metadata={"concurrentRequests": str(ca.concurrent_requests)}
                        ),
                    )
                ],
            ),
        ),
        tags=dict(d.tags),
        opts=opts,
    )


def scoring_container(
    d: ScoringDeployment,
    env: Mapping[str, pulumi.Input[str]],
    secrets: Mapping[str, SecretRef],
) -> app.ContainerArgs:
    ca = d.settings.container_apps
    port = d.settings.scoring.port
    variables = [app.EnvironmentVarArgs(name=k, value=v) for k, v in sorted(env.items())]
    variables += [
        app.EnvironmentVarArgs(name=var, secret_ref=SECRET_NAMES[var]) for var in sorted(secrets)
    ]
    return app.ContainerArgs(
        name="scoring",
        image=d.image,
        env=variables,
        resources=app.ContainerResourcesArgs(
            cpu=ca.replica_cpu,
            memory=ca.replica_memory,
            **({"gpu": 1.0} if ca.gpu else {}),
        ),
        probes=probes(port),
    )


def probes(port: int) -> list[app.ContainerAppProbeArgs]:
    """Startup (the process answers ``/``; up to 10 x 10 s for the model to load), readiness
    (``/ready``: the model is loaded) and liveness (``/``). Limits (period 1-240 s, failure
    threshold 1-10): https://learn.microsoft.com/azure/container-apps/health-probes"""

    def probe(kind: app.Type, path: str, delay: int, failures: int) -> app.ContainerAppProbeArgs:
        return app.ContainerAppProbeArgs(
            type=kind,
            http_get=app.ContainerAppProbeHttpGetArgs(path=path, port=port, scheme=app.Scheme.HTTP),
            initial_delay_seconds=delay,
            period_seconds=10,
            timeout_seconds=5,
            failure_threshold=failures,
        )

    return [
        probe(app.Type.STARTUP, LIVENESS_PATH, 5, 10),
        probe(app.Type.READINESS, READINESS_PATH, 5, 3),
        probe(app.Type.LIVENESS, LIVENESS_PATH, 30, 3),
    ]
