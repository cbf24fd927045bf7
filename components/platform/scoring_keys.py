"""The scoring keys: two random keys (primary, secondary) kept in the key vault.

The scoring host checks ``Authorization: Bearer <key>`` against them in every container target
(App Service, ACI, AKS, IoT Edge), as Azure ML's AKS web services did. Targets receive the keys as
Key Vault references, secure environment values or Kubernetes secrets; clients read them from the
``endpoints`` stack output, which marks them secret.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.keyvault as keyvault
import pulumi_random as random

from components.config.settings import Settings
from components.contract import SecretRef


@dataclass(frozen=True)
class ScoringKeysArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    vault_name: pulumi.Input[str]


def vault_secret(
    logical_name: str,
    secret_name: str,
    value: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    vault_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> SecretRef:
    """Store ``value`` in the key vault; return its value (secret) and versionless URI."""
    secret = keyvault.Secret(
        logical_name,
        secret_name=secret_name,
        resource_group_name=resource_group_name,
        vault_name=vault_name,
        properties=keyvault.SecretPropertiesArgs(value=pulumi.Output.secret(value)),
        opts=opts,
    )
    return SecretRef(
        value=pulumi.Output.secret(value),
        uri=secret.properties.apply(lambda p: p.secret_uri or ""),
    )


class ScoringKeys(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ScoringKeysArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:ScoringKeys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        refs: list[SecretRef] = []
        for which in ("primary", "secondary"):
            key = random.RandomPassword(
                f"scoring-key-{which}", length=40, special=False, opts=child
            )
            refs.append(
                vault_secret(
                    f"scoring-key-{which}-secret",
                    f"scoring-key-{which}",
                    key.result,
                    args.resource_group_name,
                    args.vault_name,
                    child,
                )
            )
        self.primary, self.secondary = refs
        self.register_outputs(
            {"primary_uri": self.primary.uri, "secondary_uri": self.secondary.uri}
        )
