"""The user-assigned identity every scoring target runs as.

It pulls the image (AcrPull on the registry) and reads the key vault's secrets (Key Vault Secrets
User) such as the scoring keys and the Redis access key, so that no target holds a registry
password or a plaintext secret.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.managedidentity as managedidentity

from components.contract import (
    ROLE_ACR_PULL,
    ROLE_KEY_VAULT_SECRETS_USER,
    Interfaces,
    PullIdentity,
    role_definition_id,
)
from components.settings import Settings


@dataclass(frozen=True)
class ScoringIdentityArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    registry_id: pulumi.Input[str]
    key_vault_id: pulumi.Input[str]


class ScoringIdentity(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ScoringIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:ScoringIdentity", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.identity = managedidentity.UserAssignedIdentity(
            "pull-identity",
            resource_name_=s.naming.dashed("id-scoring"),
            resource_group_name=args.resource_group_name,
            location=s.location,
            tags=dict(s.tags),
            opts=child,
        )
        self.acr_pull = authorization.RoleAssignment(
            "acrpull",
            principal_id=self.identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(args.subscription_id, ROLE_ACR_PULL),
            scope=args.registry_id,
            opts=child,
        )
        self.secrets_user = authorization.RoleAssignment(
            "kv-secrets-user",
            principal_id=self.identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(
                args.subscription_id, ROLE_KEY_VAULT_SECRETS_USER
            ),
            scope=args.key_vault_id,
            opts=child,
        )
        self.pull_identity = PullIdentity(
            id=self.identity.id,
            client_id=self.identity.client_id,
            principal_id=self.identity.principal_id,
            grants=(self.acr_pull, self.secrets_user),
        )
        self.register_outputs({"id": self.identity.id, "client_id": self.identity.client_id})

    def interfaces(self) -> Interfaces:
        i = self.identity
        return Interfaces(
            outputs={  # principal_id: for access policies on an existing Redis
                "identity": {"client_id": i.client_id, "principal_id": i.principal_id, "id": i.id}
            }
        )
