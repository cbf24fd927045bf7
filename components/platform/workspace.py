"""The Azure ML workspace with the resources it owns: storage account and key vault.

Application Insights (``monitoring.py``) and the registry (``registry.py``) are created beside it
and linked in. Secure defaults: HTTPS-only storage with TLS 1.2 and no public blob access,
replicated per ``storageRedundancy`` (LRS in dev, GZRS in prod); a key vault with RBAC
authorization, soft delete and purge protection.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.keyvault as keyvault
import pulumi_azure_native.machinelearningservices as ml
import pulumi_azure_native.storage as storage

from components.contract import Interfaces, KeyVaultRef, role_definition_id
from components.platform import diagnostics as diag
from components.platform import private_endpoints as pe
from components.platform.cache import PredictionCache
from components.platform.network_settings import ALLOW_LIST, storage_ip_rules
from components.providers.redundancy_check import RedundancyCheck
from components.settings import Settings

# The workspace's managed VNet (https://learn.microsoft.com/azure/machine-learning/how-to-managed-network):
# AllowOnlyApprovedOutbound without FQDN rules. The online and batch deployments run the
# prebuilt scoring image from the workspace registry and read the model from workspace storage,
# which the managed VNet's required rules and its automatic private endpoints (storage, key
# vault, registry) cover; the one extra destination, the cache, needs a private endpoint rule
# (:func:`cache_rule`, inline like the batch rules). No FQDN rule, so no Azure
# Firewall: "FQDN outbound rules are implemented using Azure Firewall ... charges ... included
# in your billing", and "the firewall isn't created until you add an outbound FQDN rule".
# AllowInternetOutbound would leave exfiltration open and buys nothing here (no pip or conda at
# deploy time). Irreversible: "Once you enable managed virtual network isolation of your
# workspace, you can't disable it." provision_network_now: the first deployment does not wait.
# https://learn.microsoft.com/azure/machine-learning/concept-secure-online-endpoint
#
# Batch endpoints: "If you plan to use Azure Machine Learning batch endpoints for deployment or
# ParallelRunStep, add outbound private endpoint rules to allow traffic to the following sub
# resources for the default storage account: queue, table" (how-to-managed-network.md, "Scenario:
# Use batch endpoints or ParallelRunStep", MicrosoftDocs/azure-ai-docs,
# https://learn.microsoft.com/azure/machine-learning/how-to-managed-network#scenario-use-batch-endpoints-or-parallelrunstep).
# The required rules cover only the storage's blob and file. They are inline rules of the
# workspace (the storage exists before it), so no later workspace update without
# ``outboundRules`` drops them (Azure/terraform-provider-azapi#453) and checkov's CKV_AZURE_243
# finds them where it looks. No image build in the managed VNet either: batch runs the prebuilt
# scoring image from the workspace registry (no conda environment, no image-build compute, no
# PyPI or conda FQDN rules: "When the Azure Container Registry for your workspace is behind a
# virtual network, it can't be used to directly build Docker images", "Configure image builds").
BATCH_STORAGE_SUBRESOURCES = ("queue", "table")


# The online deployments' way to the cache: a private endpoint rule to the cluster
# (``redisEnterprise``) or the Azure Cache for Redis (``redisCache``). Accepted targets: the
# "Private endpoints" list names "Azure Redis Cache", and the role the workspace's identity
# approves managed-VNet private endpoints with ("Azure AI Enterprise Network Connection Approver")
# lists "Azure Managed Redis" among "the private endpoint target resource types covered"
# (how-to-managed-network.md, MicrosoftDocs/azure-ai-docs commit d675e2ff, ms.date 05/23/2025;
# https://learn.microsoft.com/azure/machine-learning/how-to-managed-network#private-endpoints).
# Inline in the workspace, not a ManagedNetworkSettingsRule of its own: a later workspace update
# without ``outboundRules`` can drop a separate rule (Azure/terraform-provider-azapi#453), and
# checkov's CKV_AZURE_243 looks for it inline. So the workspace waits for the cache to exist
# (__main__ declares the cache first): a rule names an existing resource.
CACHE_RULE = "cache-pe"
# "the workspace managed identity ... must have permissions to approve the Private Endpoint
# connections on the target resources. After April 30th, 2025, permissions aren't automatically
# granted"; the recommended role is Azure AI Enterprise Network Connection Approver (same doc,
# its list covers Azure Managed Redis; role ID from the Foundry managed-network doc).
ROLE_NETWORK_CONNECTION_APPROVER = "b556d68e-0be0-4f35-a333-ad7ee1ce17ea"


def managed_network(
    s: Settings, storage_id: pulumi.Input[str], cache: PredictionCache | None
) -> ml.ManagedNetworkSettingsArgs:
    """AllowOnlyApprovedOutbound, with the batch endpoints' rules to the workspace storage and
    the online deployments' rule to the cache."""
    rules: dict[str, ml.PrivateEndpointOutboundRuleArgs] = {}
    if s.batch.enabled:
        rules = {
            f"batch-storage-{sub}": private_endpoint_rule(storage_id, sub)
            for sub in BATCH_STORAGE_SUBRESOURCES
        }
    if cache is not None and reaches_cache(s, cache):
        rules[CACHE_RULE] = private_endpoint_rule(cache.next_update_id(), cache.group_id)
    return ml.ManagedNetworkSettingsArgs(
        isolation_mode=ml.IsolationMode.ALLOW_ONLY_APPROVED_OUTBOUND,
        outbound_rules=rules or None,
    )


def reaches_cache(s: Settings, cache: PredictionCache) -> bool:
    """Whether the managed VNet has a rule to the cache: the online deployments use it, and the
    cache is ours (an existing host is its owner's to connect)."""
    return s.network.isolated and s.online.enabled and cache.cache is not None


def private_endpoint_rule(
    resource_id: pulumi.Input[str], subresource: str
) -> ml.PrivateEndpointOutboundRuleArgs:
    return ml.PrivateEndpointOutboundRuleArgs(
        type="PrivateEndpoint",
        category=ml.RuleCategory.USER_DEFINED,
        destination=ml.PrivateEndpointDestinationArgs(
            service_resource_id=resource_id, subresource_target=subresource
        ),
    )


def public_access(settings: Settings) -> str:
    """A data plane's publicNetworkAccess: Enabled when public, or (under network isolation) in
    allow-list mode behind a default-deny firewall; else Disabled."""
    if settings.network.isolated:
        return "Enabled" if settings.network.data_plane == ALLOW_LIST else "Disabled"
    return "Enabled" if settings.public_network_access else "Disabled"


@dataclass(frozen=True)
class MlWorkspaceArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    registry_id: pulumi.Input[str]
    app_insights_id: pulumi.Input[str]
    cache: PredictionCache | None = None  # the online deployments' outbound rule names it


def secure_storage_account(
    logical_name: str,
    account_name: str,
    settings: Settings,
    resource_group_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    *,
    allow_shared_key_access: bool = True,
    private_endpoints: bool = True,
) -> storage.StorageAccount:
    """A StorageV2 account with the project's secure defaults (used by every component).

    ``private_endpoints``: the caller gives the account private endpoints under network
    isolation (every caller today: the workspace's blob and file, the Functions accounts' own),
    so its public endpoint denies by default and admits the deployer's ranges. False keeps it
    as ``publicNetworkAccess`` says, for an account without a private path."""
    isolated = private_endpoints and settings.network.isolated
    # A zone-redundancy change of an existing account is a conversion, not an update: the check
    # reads the account's SKU first and stops the run with the conversion to start.
    redundancy = RedundancyCheck(
        f"{logical_name}-redundancy",
        subscription_id=authorization.get_client_config_output().subscription_id,
        resource_group_name=resource_group_name,
        account_name=account_name,
        sku=settings.resilience.storage_sku,
        key="mlscore:storageRedundancy",
        opts=pulumi.ResourceOptions(parent=opts.parent),
    )
    return storage.StorageAccount(
        logical_name,
        account_name=account_name,
        resource_group_name=resource_group_name,
        location=settings.location,
        kind=storage.Kind.STORAGE_V2,
        # storageRedundancy: LRS in dev; GZRS in prod (zone-redundant, and geo-replicated to the
        # paired region): https://learn.microsoft.com/azure/storage/common/storage-redundancy
        # (a zone change of an existing account: RedundancyCheck, redundancy-migration)
        sku=storage.SkuArgs(name=settings.resilience.storage_sku),
        enable_https_traffic_only=True,
        minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
        allow_blob_public_access=False,
        allow_shared_key_access=allow_shared_key_access,
        default_to_o_auth_authentication=True,
        public_network_access=public_access(settings)
        if isolated
        else ("Enabled" if settings.public_network_access else "Disabled"),
        # Trusted Azure services pass the firewall (CKV_AZURE_36). Under network isolation:
        # default deny, the deployer's ranges allowed (model upload), the rest through private
        # endpoints. Storage takes /31 and /32 as plain addresses (storage_ip_rules):
        # https://learn.microsoft.com/azure/storage/common/storage-network-security
        network_rule_set=storage.NetworkRuleSetArgs(
            default_action=storage.DefaultAction.ALLOW
            if settings.public_network_access and not isolated
            else storage.DefaultAction.DENY,
            bypass=storage.Bypass.AZURE_SERVICES,
            ip_rules=[
                storage.IPRuleArgs(i_p_address_or_range=v, action=storage.Action.ALLOW)
                for v in storage_ip_rules(settings.network.deployer_ip_ranges)
            ]
            if isolated
            else None,
        ),
        tags=dict(settings.tags),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[redundancy])),
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
                public_network_access=public_access(s),
                # Under isolation: default deny, the deployer's ranges, trusted services:
                # https://learn.microsoft.com/azure/key-vault/general/network-security
                network_acls=keyvault.NetworkRuleSetArgs(
                    bypass=keyvault.NetworkRuleBypassOptions.AZURE_SERVICES,
                    default_action=keyvault.NetworkRuleAction.ALLOW
                    if s.public_network_access and not s.network.isolated
                    else keyvault.NetworkRuleAction.DENY,
                    ip_rules=[keyvault.IPRuleArgs(value=r) for r in s.network.deployer_ip_ranges]
                    if s.network.isolated
                    else None,
                ),
            ),
            tags=dict(s.tags),
            opts=child,
        )
        managed = managed_network(s, self.storage.id, args.cache) if s.network.isolated else None
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
            # Under isolation: private endpoint only (API 2025-12-01 has no IP allow-list; the
            # deployer reaches the workspace through ARM alone), and a managed VNet.
            public_network_access="Disabled"
            if s.network.isolated or not s.public_network_access
            else "Enabled",
            managed_network=managed,
            provision_network_now=True if s.network.isolated else None,
            v1_legacy_mode=False,
            hbi_workspace=False,
            tags=dict(s.tags),
            opts=child,
        )
        if args.cache is not None and reaches_cache(s, args.cache):
            # the managed VNet's private endpoint connection is an update of the cache
            args.cache.updated_by(self.workspace)
            self._approve_on(args.cache, child)
        self.key_vault = KeyVaultRef(
            id=self.vault.id,
            name=self.vault.name,
            uri=self.vault.properties.apply(lambda p: p.vault_uri or ""),
        )
        self.id = self.workspace.id
        self.name = self.workspace.name
        self._resource_group_name = args.resource_group_name
        self.register_outputs(
            {
                "workspace_name": self.workspace.name,
                "storage_account": self.storage.name,
                "key_vault_uri": self.key_vault.uri,
            }
        )

    def interfaces(self) -> Interfaces:
        """The key vault, the workspace and its storage: their logs, their private endpoints
        (the storage's blob and file: Azure ML reaches its default datastores, workspaceblobstore
        and workspacefilestore, through both: https://learn.microsoft.com/azure/machine-learning/
        how-to-secure-workspace-vnet, "Secure Azure storage accounts")."""
        return Interfaces(
            diagnostics=(
                *diag.resource("key-vault", self.vault.id),
                *diag.resource("ml-workspace", self.workspace.id),
                *diag.storage_account("ml-storage", self.storage.id),
            ),
            private_endpoints=(
                pe.key_vault(self.key_vault.id),
                *pe.storage("st", self.storage.id, ("blob", "file")),
                pe.ml_workspace(self.workspace.id),
            ),
            outputs={
                "workspace": {
                    "name": self.name,
                    "storage_account": self.storage.name,
                    "key_vault_uri": self.key_vault.uri,
                }
            },
        )

    def _approve_on(self, cache: PredictionCache, child: pulumi.ResourceOptions) -> None:
        """The workspace's identity approves its managed VNet's private endpoint to the cache."""
        assert cache.cache is not None
        principal = self.workspace.identity.apply(lambda i: i.principal_id if i else "")
        authorization.RoleAssignment(
            "cache-pe-approver",
            principal_id=principal,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(
                authorization.get_client_config_output().subscription_id,
                ROLE_NETWORK_CONNECTION_APPROVER,
            ),
            scope=cache.cache.id,
            opts=child,
        )
