"""IoT Hub and IoT Edge target: a hub, an edge device, and the scoring image as an edge module.

What it declares:

- **IoT Hub** (``azure-native:iothub:IotHubResource``): SKU and units from settings, TLS 1.2
  minimum. Local (SAS) authentication choices:

  * ``disableLocalAuth = false``: hub-level SAS stays on, because the deployment provider signs its
    data-plane calls with the key of ``edge-deployer``, the hub's only shared access policy
    (RegistryRead, RegistryWrite, ServiceConnect: no ``iothubowner``, no DeviceConnect);
  * ``disableDeviceSAS = false``: the edge device authenticates with its symmetric key (the
    connection string of its ``config.toml``); X.509 would need a device CA this program has not;
  * ``disableModuleSAS = false``: edgeAgent/edgeHub and the modules authenticate with module SAS
    tokens signed on the device by its workload API; IoT Edge does not work without them.

- **A pull-only registry token**: a scope map limited to the scoring repository with
  ``content/read`` and ``metadata/read`` (pull, list tags; no write or delete), a token bound to it,
  and its password from ``generateCredentials`` (dynamic resource, ``iot_edge_provider``): the
  registry admin user stays off. The password reaches the manifest's ``registryCredentials`` as a
  placeholder that the provider fills from the deployment's secret ``secrets`` input just before
  the call: the manifest stays readable in ``pulumi preview`` and the state, the password never
  appears in either in clear.

- **The edge device identity** and **the deployment**: dynamic resources calling the IoT Hub
  REST API. The deployment is **whole-device** (``applyConfigurationContent``), not an at-scale
  configuration: the stack owns exactly one device, a whole-device manifest has no priority
  contest with other deployments, and it can be *updated* in place (an at-scale configuration's
  content is immutable: a new image would need a new configuration and a priority bump). A new
  image digest changes ``modulesContent``; the provider's diff reports an update and re-applies
  the manifest; the edge agent pulls the new image and restarts the module.

The module runs the scoring host with the same env as every target, less what only makes sense
in Azure (the managed identity's client ID and the cloud Redis cache: an edge device scores
offline, so the host runs without the cache), plus the scoring keys (``SCORING_AUTH_KEYS``, a
secret leaf). Its port is bound on the device (``iotEdgeHostPort``); that address is known only
on the device's network, so the ``endpoints`` output gets an ``iot_edge`` entry only when
``iotEdgeDeviceHost`` names the device (plain HTTP on the local network, bearer-key auth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native.containerregistry as acr
import pulumi_azure_native.iothub as iothub

from components.contract import (
    AUTH_BEARER_KEY,
    Endpoint,
    Interfaces,
    ScoringDeployment,
    TargetEntry,
)
from components.platform import diagnostics as diag
from components.platform.bundle import Platform
from components.providers.iot_edge import EdgeDeployment, EdgeDevice, RegistryTokenPassword
from components.providers.iot_hub_api import secret_ref
from components.targets.iot.ip_filter import hub_network_rules
from components.targets.iot.manifest import (
    EdgeManifestSpec,
    EdgeModule,
    RegistryCredential,
    build_modules_content,
    runtime_only_modules_content,
)

DEPLOYER_POLICY = "edge-deployer"
DEPLOYER_RIGHTS = iothub.AccessRights.REGISTRY_READ_REGISTRY_WRITE_SERVICE_CONNECT
SCORING_MODULE = "scoring"
REGISTRY_CREDENTIAL = "scoringregistry"
# Env of the cloud targets that does not apply on a device.
CLOUD_ONLY_ENV = ("AZURE_CLIENT_ID",)
PULL_ACTIONS = ("content/read", "metadata/read")


@dataclass(frozen=True)
class IotEdgeTargetArgs:
    deployment: ScoringDeployment
    registry_name: pulumi.Input[str]
    registry_id: pulumi.Input[str]


def scope_map_actions(repository: str) -> list[str]:
    return [f"repositories/{repository}/{action}" for action in PULL_ACTIONS]


class IotEdgeTarget(pulumi.ComponentResource):
    """The IoT Edge target. ``endpoint`` is None unless ``iotEdgeDeviceHost`` is set."""

    endpoint: Endpoint | None

    def __init__(
        self, name: str, args: IotEdgeTargetArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:target:IotEdge", name, None, opts)
        d = args.deployment
        iot = d.settings.iot
        child = pulumi.ResourceOptions(parent=self)

        self.hub = self._hub(d, child)
        self.host_name: pulumi.Output[str] = self.hub.properties.apply(
            lambda p: p.host_name if p and p.host_name else ""
        )
        policy_key = self._policy_key(d)

        self.scope_map = self._scope_map(args, child)
        self.token = self._token(args, child)
        self.token_password = RegistryTokenPassword(
            "edge-pull-token-password",
            registry_id=args.registry_id,
            token_id=self.token.id,
            password_name="password1",
            opts=child,
        )

        self.device = EdgeDevice(
            "edge-device",
            host_name=self.host_name,
            device_id=iot.device_id,
            policy_name=DEPLOYER_POLICY,
            policy_key=policy_key,
            opts=child,
        )
        self.deployment = self._edge_deployment(d, policy_key, child)

        self.connection_string = pulumi.Output.secret(self.device.connection_string)
        self.summary = self._summary(d)
        self.endpoint = self._endpoint(d)
        self.register_outputs(
            {
                "summary": self.summary,
                "endpoint": self.endpoint.to_output() if self.endpoint else None,
            }
        )

    def interfaces(self) -> Interfaces:
        """An endpoint only if the device is addressable (``iotEdgeDeviceHost``)."""
        return Interfaces(
            endpoints={KEY: self.endpoint} if self.endpoint is not None else {},
            diagnostics=tuple(diag.resource("iot-hub", self.hub.id)),
            outputs={"iot": self.summary},
        )

    # --- the hub -------------------------------------------------------------------------------
    def _hub(self, d: ScoringDeployment, child: pulumi.ResourceOptions) -> iothub.IotHubResource:
        """TLS 1.2 at least; SAS on for the hub, the device and the modules (see above)."""
        s = d.settings
        return iothub.IotHubResource(
            "hub",
            resource_name_=s.naming.iot_hub(),
            resource_group_name=d.resource_group_name,
            location=s.location,
            sku=iothub.IotHubSkuInfoArgs(name=s.iot.hub_sku, capacity=s.iot.hub_capacity),
            properties=iothub.IotHubPropertiesArgs(
                min_tls_version="1.2",
                disable_local_auth=False,
                disable_device_sas=False,
                disable_module_sas=False,
                # Devices connect over the internet: the hub's public endpoint stays on, and
                # iotHubIpFilter, when set, narrows it (see hub_network_rules).
                public_network_access="Enabled",
                network_rule_sets=hub_network_rules(s.network),
                authorization_policies=[
                    iothub.SharedAccessSignatureAuthorizationRuleArgs(
                        key_name=DEPLOYER_POLICY, rights=DEPLOYER_RIGHTS
                    )
                ],
            ),
            tags=dict(s.tags),
            opts=child,
        )

    def _policy_key(self, d: ScoringDeployment) -> pulumi.Output[str]:
        """The key of the deployer policy, read at deploy time (secret)."""
        return pulumi.Output.secret(
            iothub.list_iot_hub_resource_keys_for_key_name_output(
                key_name=DEPLOYER_POLICY,
                resource_group_name=d.resource_group_name,
                resource_name=self.hub.name,
            ).apply(lambda k: k.primary_key or "")
        )

    # --- pull-only registry token ---------------------------------------------------------------
    def _scope_map(self, args: IotEdgeTargetArgs, child: pulumi.ResourceOptions) -> acr.ScopeMap:
        d = args.deployment
        s = d.settings
        repository = s.scoring.image_repository
        return acr.ScopeMap(
            "edge-pull-scope",
            scope_map_name=s.naming.dashed("edge-pull"),
            registry_name=args.registry_name,
            resource_group_name=d.resource_group_name,
            actions=scope_map_actions(repository),
            description=f"IoT Edge devices pull {repository} (read-only)",
            opts=child,
        )

    def _token(self, args: IotEdgeTargetArgs, child: pulumi.ResourceOptions) -> acr.Token:
        d = args.deployment
        return acr.Token(
            "edge-pull-token",
            token_name=d.settings.naming.dashed("edge"),
            registry_name=args.registry_name,
            resource_group_name=d.resource_group_name,
            scope_map_id=self.scope_map.id,
            status="enabled",
            opts=child,
        )

    # --- the deployment -------------------------------------------------------------------------
    def _modules_content(self, d: ScoringDeployment) -> dict[str, Any]:
        """The manifest with the scoring module; its secrets as :func:`secret_ref` placeholders."""
        s = d.settings
        iot = s.iot
        env: dict[str, Any] = {
            k: v for k, v in d.runtime_env().items() if k not in CLOUD_ONLY_ENV
        } | {"SCORING_AUTH_KEYS": secret_ref("scoring_auth_keys")}
        return build_modules_content(
            EdgeManifestSpec(
                modules=(
                    EdgeModule(
                        name=SCORING_MODULE,
                        image=d.image,
                        env=env,
                        port_bindings={s.scoring.port: iot.edge_host_port},
                    ),
                ),
                registries={
                    REGISTRY_CREDENTIAL: RegistryCredential(
                        address=d.registry_login_server,
                        username=self.token.name,
                        password=secret_ref("registry_password"),
                    )
                },
                runtime_version=iot.edge_runtime_version,
                store_and_forward_ttl_seconds=iot.store_forward_ttl_seconds,
            )
        )

    def _edge_deployment(
        self, d: ScoringDeployment, policy_key: pulumi.Output[str], child: pulumi.ResourceOptions
    ) -> EdgeDeployment:
        iot = d.settings.iot
        primary, secondary = d.scoring_keys
        return EdgeDeployment(
            "edge-deployment",
            host_name=self.host_name,
            device_id=self.device.device_id,
            policy_name=DEPLOYER_POLICY,
            policy_key=policy_key,
            modules_content=self._modules_content(d),
            secrets={
                "registry_password": pulumi.Output.secret(self.token_password.password),
                "scoring_auth_keys": pulumi.Output.concat(primary.value, ",", secondary.value),
            },
            removal_content=runtime_only_modules_content(
                iot.edge_runtime_version, iot.store_forward_ttl_seconds
            ),
            opts=child,
        )

    # --- outputs --------------------------------------------------------------------------------
    def _summary(self, d: ScoringDeployment) -> dict[str, Any]:
        return {
            "hub_name": self.hub.name,
            "hostname": self.host_name,
            "device_id": self.device.device_id,
            "deployment_id": self.deployment.id,
            "module": SCORING_MODULE,
            "edge_runtime_version": d.settings.iot.edge_runtime_version,
            "registry_token": self.token.name,
            # what the device's /etc/aziot/config.toml needs ([provisioning] connection_string)
            "device_connection_string": self.connection_string,
        }

    def _endpoint(self, d: ScoringDeployment) -> Endpoint | None:
        """Plain HTTP on the device's network, when ``iotEdgeDeviceHost`` names the device."""
        iot = d.settings.iot
        if not iot.device_host:
            return None
        return Endpoint.for_host(
            f"http://{iot.device_host}:{iot.edge_host_port}",
            AUTH_BEARER_KEY,
            d.scoring_keys[0].value,
            tls=False,
            network="the device's local network",
        )


KEY = "iot_edge"
TARGET: TargetEntry[Platform] = TargetEntry(
    KEY,
    lambda s: s.iot.enabled,
    # the hub, the edge device and the scoring module, pulled with a registry token
    lambda d, p: IotEdgeTarget("iot-edge", IotEdgeTargetArgs(d, p.registry.name, p.registry.id)),
)
