"""The AKS endpoint's TLS certificate, from a PFX file the deployer supplies (``aksTlsPfxPath``).

Why the program writes it: the ``tls-sync`` pods mount the certificate from the workspace's key
vault, which the same ``pulumi up`` creates, so on a first run no one could have imported a
certificate into it; the deployer has no data-plane role on that RBAC vault either, and
pulumi-kubernetes waits for the ``tls-sync`` Deployment until it times out. The program instead
reads the PFX (chain and private key) and stores it as a Key Vault secret through Azure Resource
Manager (``Microsoft.KeyVault/vaults/secrets``, a control-plane write the deploying identity
already makes for the scoring keys: https://learn.microsoft.com/azure/templates/microsoft.keyvault/vaults/secrets),
before the ``tls-sync`` Deployment that mounts it.

The secret holds the private key and the whole chain in PEM, which is what the CSI provider
returns for a certificate's ``secret`` object (secret_store.py), so the SecretProviderClass maps
``tls.key`` and ``tls.crt`` from it unchanged. For a plain secret (one without a ``kid``) the
provider returns the value as stored, without converting it (``getSecret`` in
https://github.com/Azure/secrets-store-csi-driver-provider-azure/blob/master/pkg/provider/provider.go).
A renewed certificate: replace the file and run ``pulumi up``; the driver's rotation picks up the
new version.

The file is read and checked before any resource is declared, in the settings
(components/targets/aks/settings/pfx.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_azure_native.keyvault as keyvault

from components.platform.scoring_keys import store_secret

if TYPE_CHECKING:
    from components.targets.aks.settings import IngressSettings

PEM_CONTENT_TYPE = "application/x-pem-file"


def store(
    ingress: IngressSettings,
    resource_group_name: pulumi.Input[str],
    vault_name: pulumi.Input[str],
    parent: pulumi.Resource,
) -> keyvault.Secret:
    """The certificate the gateway serves, written into the workspace's key vault as
    ``aksTlsCertificateName`` (PEM: key and chain); it expires with the certificate."""
    cert = ingress.certificate
    # Only the offline preview gets here without the file (a stand-in path, which a real run
    # refuses before any resource): its plan shows the secret, with no certificate to store.
    pem = cert.pem if cert else f"stand-in: {ingress.pfx_path} (offline preview only)"
    # the stand-in (offline only) expires like every secret the program writes
    return store_secret(
        "tls-certificate-secret",
        ingress.certificate_name,
        pem,
        resource_group_name,
        vault_name,
        pulumi.ResourceOptions(parent=parent),
        expires=int(cert.not_after.timestamp()) if cert else None,
        content_type=PEM_CONTENT_TYPE,
    )
