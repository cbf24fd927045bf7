"""The container registry every target pulls the scoring image from.

Secure by default: admin user off (no registry password exists), anonymous pull off. Images are
pulled by managed identities with AcrPull and pushed with an Entra token (see ``image.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.containerregistry as acr

from components.config.settings import Settings
from components.contract import ROLE_ACR_PUSH, role_definition_id


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
            public_network_access="Enabled"
            if s.public_network_access or not premium
            else "Disabled",
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
