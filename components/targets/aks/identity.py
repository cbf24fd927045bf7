"""Workload identity of the scoring pods: federated identity credentials on the pull identity.

Each credential trusts the cluster's OIDC issuer for one service account
(``system:serviceaccount:<namespace>:<name>``, audience ``api://AzureADTokenExchange``):
https://learn.microsoft.com/azure/aks/workload-identity-deploy-cluster ("Create the federated
identity credential"). They are created here, beside the service accounts they name, on the
identity components/platform/identity.py owns (its resource group and name come from its ID).

One at a time: Entra ID refuses concurrent writes of federated credentials under the same
user-assigned identity ("Concurrent updates aren't supported",
https://learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations#concurrent-updates-arent-supported-user-assigned-managed-identities),
so each one waits for the previous.
"""

from __future__ import annotations

import re

import pulumi
import pulumi_azure_native.managedidentity as managedidentity

from components.contract import PullIdentity
from components.targets.aks.manifests import APP, INGRESS_NAMESPACE
from components.targets.aks.prometheus import TOKEN_AUDIENCE

_IDENTITY_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.ManagedIdentity/[^/]+/(?P<name>[^/]+)",
    re.IGNORECASE,
)


def parse_identity_id(identity_id: str) -> tuple[str, str]:
    """(resource group, name) of a user-assigned identity's resource ID."""
    match = _IDENTITY_ID.fullmatch(identity_id.strip())
    if not match:
        raise ValueError(f"not a user-assigned identity ID: {identity_id!r}")
    return match["rg"], match["name"]


def subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


def federate_pull_identity(
    identity: PullIdentity,
    issuer: pulumi.Input[str],
    namespace: str,
    tls_sync_account: str | None,
    parent: pulumi.Resource,
) -> list[managedidentity.FederatedIdentityCredential]:
    """The scoring pods' credential, and the TLS sync pods' when TLS is on, in that order."""
    parts = identity.id.apply(parse_identity_id)
    accounts = [("scoring-federated-credential", namespace, APP)]
    if tls_sync_account is not None:
        accounts.append(("tls-sync-federated-credential", INGRESS_NAMESPACE, tls_sync_account))
    made: list[managedidentity.FederatedIdentityCredential] = []
    for logical, ns, account in accounts:
        made.append(
            managedidentity.FederatedIdentityCredential(
                logical,
                federated_identity_credential_resource_name=f"aks-{ns}-{account}"[:120],
                resource_group_name=parts.apply(lambda p: p[0]),
                resource_name_=parts.apply(lambda p: p[1]),
                issuer=issuer,
                subject=subject(ns, account),
                audiences=[TOKEN_AUDIENCE],
                opts=pulumi.ResourceOptions(parent=parent, depends_on=made[-1:]),
            )
        )
    return made
