"""The Azure ML workspace with the resources it owns: storage account and key vault.

Application Insights (``monitoring.py``) and the registry (``registry.py``) are created beside it
and linked in. Secure defaults: HTTPS-only storage with TLS 1.2 and no public blob access,
replicated per ``storageRedundancy`` (LRS in dev, GZRS in prod); a key vault with RBAC
authorization, soft delete and purge protection.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.keyvault as keyvault
import pulumi_azure_native.machinelearningservices as ml
import pulumi_azure_native.storage as storage

from components.config.settings import Settings
from components.contract import KeyVaultRef


@dataclass(frozen=True)
class MlWorkspaceArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    registry_id: pulumi.Input[str]
    app_insights_id: pulumi.Input[str]


def secure_storage_account(
    logical_name: str,
    account_name: str,
    settings: Settings,
    resource_group_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    *,
    allow_shared_key_access: bool = True,
) -> storage.StorageAccount:
    """A StorageV2 account with the project's secure defaults (used by every component)."""
    return storage.StorageAccount(
        logical_name,
        account_name=account_name,
        resource_group_name=resource_group_name,
        location=settings.location,
        kind=storage.Kind.STORAGE_V2,
        # storageRedundancy: LRS in dev; GZRS in prod (zone-redundant, and geo-replicated to the
        # paired region): https://learn.microsoft.com/azure/storage/common/storage-redundancy
        sku=storage.SkuArgs(name=settings.resilience.storage_sku),
        enable_https_traffic_only=True,
        minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
        allow_blob_public_access=False,
        allow_shared_key_access=allow_shared_key_access,
        default_to_o_auth_authentication=True,
        public_network_access="Enabled" if settings.public_network_access else "Disabled",
        # Trusted Azure services pass the firewall (CKV_AZURE_36); default-deny with private
        # endpoints is network isolation's part (issue 18, docs/security.md).
        network_rule_set=storage.NetworkRuleSetArgs(
            default_action=storage.DefaultAction.ALLOW
            if settings.public_network_access
            else storage.DefaultAction.DENY,
            bypass=storage.Bypass.AZURE_SERVICES,
        ),
        tags=dict(settings.tags),
        opts=opts,
    )


class MlWorkspace(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: MlWorkspaceArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:MlWorkspace", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        # Azure ML's default datastores still authenticate with the account key.
        self.storage = secure_storage_account(
            "storage", s.naming.storage("ml"), s, args.resource_group_name, child
        )
        self.vault = keyvault.Vault(
            "keyvault",
            vault_name=s.naming.key_vault(),
            resource_group_name=args.resource_group_name,
            location=s.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=90,
                enable_purge_protection=True,
                public_network_access="Enabled" if s.public_network_access else "Disabled",
                network_acls=keyvault.NetworkRuleSetArgs(
                    bypass="AzureServices",
                    default_action="Allow" if s.public_network_access else "Deny",
                ),
            ),
            tags=dict(s.tags),
            opts=child,
        )
        self.workspace = ml.Workspace(
            "workspace",
            workspace_name=s.naming.workspace(),
            resource_group_name=args.resource_group_name,
            location=s.location,
            kind="Default",
            sku=ml.SkuArgs(name="Basic", tier=ml.SkuTier.BASIC),
            identity=ml.ManagedServiceIdentityArgs(
                type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED
            ),
            friendly_name=f"{s.project} ({s.stack})",
            storage_account=self.storage.id,
            key_vault=self.vault.id,
            application_insights=args.app_insights_id,
            container_registry=args.registry_id,
            public_network_access="Enabled" if s.public_network_access else "Disabled",
            v1_legacy_mode=False,
            hbi_workspace=False,
            tags=dict(s.tags),
            opts=child,
        )
        self.key_vault = KeyVaultRef(
            id=self.vault.id,
            name=self.vault.name,
            uri=self.vault.properties.apply(lambda p: p.vault_uri or ""),
        )
        self.name = self.workspace.name
        self.register_outputs(
            {
                "workspace_name": self.workspace.name,
                "storage_account": self.storage.name,
                "key_vault_uri": self.key_vault.uri,
            }
        )
