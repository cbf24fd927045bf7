"""The container registry every target pulls the scoring image from.

Secure by default: admin user off (no registry password exists), anonymous pull off. Images are
pulled by managed identities with AcrPull and pushed with an Entra token (see ``image.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.containerregistry as acr

from components.contract import ROLE_ACR_PUSH, Interfaces, role_definition_id
from components.platform import diagnostics as diag
from components.platform import private_endpoints as pe
from components.platform.network_settings import ALLOW_LIST
from components.settings import Settings


def _public_access(s: Settings, premium: bool) -> str:
    """Under network isolation (Premium, enforced by settings): ``Enabled`` behind the firewall
    below in allow-list mode, else ``Disabled`` (private endpoint only). Without it, as
    ``publicNetworkAccess`` says (Basic/Standard have no network rules: always Enabled)."""
    if s.network.isolated:
        return "Enabled" if s.network.data_plane == ALLOW_LIST else "Disabled"
    return "Enabled" if s.public_network_access or not premium else "Disabled"


def _network_rules(s: Settings) -> dict[str, Any]:
    """Default deny with the deployer's ranges (image push) and the edge devices' iotHubIpFilter
    (IoT Edge devices pull the scoring image over the internet); trusted Azure services (Azure ML
    image builds) bypass the firewall.
    https://learn.microsoft.com/azure/container-registry/container-registry-access-selected-networks
    https://learn.microsoft.com/azure/container-registry/container-registry-private-link"""
    if not s.network.isolated:
        return {}
    ranges = dict.fromkeys((*s.network.deployer_ip_ranges, *s.network.iot_hub_ip_filter))
    return {
        "network_rule_set": acr.NetworkRuleSetArgs(
            default_action=acr.DefaultAction.DENY,
            ip_rules=[
                acr.IPRuleArgs(i_p_address_or_range=r, action=acr.Action.ALLOW) for r in ranges
            ],
        ),
        "network_rule_bypass_options": acr.NetworkRuleBypassOptions.AZURE_SERVICES,
    }


@dataclass(frozen=True)
class RegistryArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    deployer_object_id: pulumi.Input[str]


class Registry(pulumi.ComponentResource):
    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:platform:Registry", name, None, opts)
        s = args.settings
        premium = s.registry_sku == "Premium"
        self.registry = acr.Registry(
            "acr",
            registry_name=s.naming.registry(),
            resource_group_name=args.resource_group_name,
            location=s.location,
            sku=acr.SkuArgs(name=s.registry_sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            # Network rules and zone redundancy are Premium features.
            public_network_access=_public_access(s, premium),
            **_network_rules(s),
            # Premium only, and only where the region has zones (else ACR refuses it).
            zone_redundancy="Enabled" if premium and s.resilience.region_has_zones else "Disabled",
            policies=acr.PoliciesArgs(
                retention_policy=acr.RetentionPolicyArgs(days=30, status="enabled"),
            )
            if premium
            else None,
            tags=dict(s.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The identity running `pulumi up` pushes the image with an Entra token: AcrPush, not
        # the admin user.
        self.push_grant = authorization.RoleAssignment(
            "deployer-acrpush",
            principal_id=args.deployer_object_id,
            principal_type=s.deployer_principal_type,
            role_definition_id=role_definition_id(args.subscription_id, ROLE_ACR_PUSH),
            scope=self.registry.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id = self.registry.id
        self.name = self.registry.name
        self.login_server = self.registry.login_server
        self.register_outputs({"id": self.id, "login_server": self.login_server})

    def interfaces(self) -> Interfaces:
        return Interfaces(
            diagnostics=tuple(diag.resource("registry", self.id)),
            private_endpoints=(pe.registry(self.id),),
            outputs={"registry": {"name": self.name, "login_server": self.login_server}},
        )
