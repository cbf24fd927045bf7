"""Container Instances target (dev/test, as the seeds say): the scoring image in a container group.

A Linux container group with the stack's CPU and memory (1 core / 1 GB by default), a public IP
with a DNS label from :class:`Naming` (reuse policy ``TenantReuse``, so a deleted label cannot be
taken over by another tenant; Azure adds a hash to the FQDN, which the endpoint reads back), the
scoring port, liveness (``/``) and readiness (``/ready``) probes. The image is pulled by the
user-assigned identity (no registry password exists); the scoring keys and the Redis access key
are secure environment values (never returned by the ACI API).

**No TLS**: a container group's public IP serves plain HTTP on the scoring port; keys travel in
clear text. The endpoint output says so (``tls: false``). Use it for dev/test only, or put it
behind a TLS-terminating proxy.

**Network isolation** (``networkIsolation`` with ``aciEnabled``): the group is injected into the
VNet's ``aci`` subnet (delegated to Microsoft.ContainerInstance/containerGroups) with a private
IP. A VNet-injected group has no public IP and no DNS name label ("Container groups deployed to
a virtual network ... don't support ... a public IP address or DNS name label",
https://learn.microsoft.com/azure/container-instances/container-instances-virtual-network-concepts),
so the endpoint becomes ``http://<private IP>:<port>``, reachable from the VNet (and peered
networks) only, and the image is pulled through the VNet from the registry's private endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.containerinstance as aci

from components.contract import (
    AUTH_BEARER_KEY,
    LIVENESS_PATH,
    READINESS_PATH,
    Endpoint,
    Interfaces,
    ScoringDeployment,
    ScoringTarget,
    TargetEntry,
)
from components.platform.bundle import Platform

NO_TLS_NOTE = (
    "Container Instances serve plain HTTP (no TLS): the key travels unencrypted; dev/test only"
)


@dataclass(frozen=True)
class AciTargetArgs:
    deployment: ScoringDeployment


class AciTarget(ScoringTarget):
    def __init__(self, name: str, args: AciTargetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:target:Aci", name, None, opts)
        d = args.deployment
        port = d.settings.scoring.port

        self.group = container_group(
            d,
            scoring_container(d, environment(d)),
            # The image pull needs AcrPull on the registry first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(d.identity.grants)),
        )
        # Public: the FQDN of the DNS label; in the VNet: the private IP (no label there).
        host = self.group.ip_address.apply(
            lambda ip: ((ip.ip if d.network else ip.fqdn) if ip else None) or ""
        )
        endpoint = Endpoint.for_host(
            pulumi.Output.concat("http://", host, ":", str(port)),
            AUTH_BEARER_KEY,
            key=d.scoring_keys[0].value,
            tls=False,
            note=NO_TLS_NOTE,
        )
        self._finish(
            endpoint,
            container_group=self.group.name,
            **({"private_ip": host} if d.network else {"fqdn": host}),
        )

    def interfaces(self) -> Interfaces:
        return Interfaces(endpoints={KEY: self.endpoint})


KEY = "aci"
TARGET: TargetEntry[Platform] = TargetEntry(
    KEY, lambda s: s.aci.enabled, lambda d, _: AciTarget("aci", AciTargetArgs(d))
)


def environment(d: ScoringDeployment) -> list[aci.EnvironmentVariableArgs]:
    """The scoring host's environment; the scoring keys, the Application Insights connection
    string and the Redis key as secure values (never returned by the ACI API)."""
    primary, secondary = d.scoring_keys
    cache_env, cache_key = d.cache_env(signs_in_as=d.identity.principal_id)
    env = [
        aci.EnvironmentVariableArgs(name=k, value=v)
        for k, v in sorted({**d.runtime_env(), **cache_env}.items())
    ]
    secure: dict[str, pulumi.Input[str]] = {
        "SCORING_AUTH_KEYS": pulumi.Output.concat(primary.value, ",", secondary.value),
        "APPLICATIONINSIGHTS_CONNECTION_STRING": d.app_insights_connection_string,
    }
    if cache_key is not None:
        secure["REDIS_PASSWORD"] = cache_key.value
    env += [
        aci.EnvironmentVariableArgs(name=k, secure_value=pulumi.Output.secret(v))
        for k, v in sorted(secure.items())
    ]
    return env


def scoring_container(
    d: ScoringDeployment, env: list[aci.EnvironmentVariableArgs]
) -> aci.ContainerArgs:
    s = d.settings
    port = s.scoring.port
    return aci.ContainerArgs(
        name="scoring",
        image=d.image,
        resources=aci.ResourceRequirementsArgs(
            requests=aci.ResourceRequestsArgs(cpu=s.aci.cpu, memory_in_gb=s.aci.memory_gb)
        ),
        ports=[aci.ContainerPortArgs(port=port, protocol=aci.ContainerNetworkProtocol.TCP)],
        environment_variables=env,
        liveness_probe=_probe(LIVENESS_PATH, port, 30),
        readiness_probe=_probe(READINESS_PATH, port, 10),
    )


def _probe(path: str, port: int, initial_delay: int) -> aci.ContainerProbeArgs:
    return aci.ContainerProbeArgs(
        http_get=aci.ContainerHttpGetArgs(path=path, port=port, scheme=aci.Scheme.HTTP),
        initial_delay_seconds=initial_delay,
        period_seconds=10,
        timeout_seconds=5,
        failure_threshold=3,
    )


def container_group(
    d: ScoringDeployment, container: aci.ContainerArgs, opts: pulumi.ResourceOptions
) -> aci.ContainerGroup:
    """A Linux group with a public IP and a DNS label (in the VNet's ``aci`` subnet with a
    private IP under network isolation), the image pulled by the pull identity."""
    s = d.settings
    port = s.scoring.port
    ports = [aci.PortArgs(port=port, protocol=aci.ContainerGroupNetworkProtocol.TCP)]
    if d.network is not None:
        ip = aci.IpAddressArgs(type=aci.ContainerGroupIpAddressType.PRIVATE, ports=ports)
        subnets = [aci.ContainerGroupSubnetIdArgs(id=d.network.subnet_ids["aci"])]
    else:
        ip = aci.IpAddressArgs(
            type=aci.ContainerGroupIpAddressType.PUBLIC,
            dns_name_label=s.naming.aci_dns_label(),
            auto_generated_domain_name_label_scope=aci.DnsNameLabelReusePolicy.TENANT_REUSE,
            ports=ports,
        )
        subnets = None
    return aci.ContainerGroup(
        "aci",
        container_group_name=s.naming.dashed("aci"),
        resource_group_name=d.resource_group_name,
        location=d.location,
        os_type=aci.OperatingSystemTypes.LINUX,
        sku=aci.ContainerGroupSku.STANDARD,
        restart_policy=aci.ContainerGroupRestartPolicy.ALWAYS,
        identity=aci.ContainerGroupIdentityArgs(
            type=aci.ResourceIdentityType.USER_ASSIGNED,
            user_assigned_identities=[d.identity.id],
        ),
        image_registry_credentials=[
            aci.ImageRegistryCredentialArgs(server=d.registry_login_server, identity=d.identity.id)
        ],
        ip_address=ip,
        subnet_ids=subnets,
        containers=[container],
        tags=dict(d.tags),
        opts=opts,
    )
