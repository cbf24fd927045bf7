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

Checked before any resource is declared (:func:`problems`): the file opens with its password,
holds a private key, names ``aksTlsHost`` (SAN, wildcards one label deep, RFC 6125 6.4.3:
https://www.rfc-editor.org/rfc/rfc6125#section-6.4.3) and is valid at the injected clock's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pulumi
import pulumi_azure_native.keyvault as keyvault
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

if TYPE_CHECKING:
    from components.targets.aks.settings import IngressSettings

PEM_CONTENT_TYPE = "application/x-pem-file"


@dataclass(frozen=True)
class Certificate:
    pem: str  # the private key, then the leaf and its chain (secret: never printed)
    names: tuple[str, ...]  # DNS names of the leaf's subjectAltName
    not_before: datetime
    not_after: datetime

    def __repr__(self) -> str:
        return f"Certificate(names={self.names}, not_after={self.not_after.isoformat()})"

    def covers(self, host: str) -> bool:
        host = host.lower()
        for name in (n.lower() for n in self.names):
            if name == host:
                return True
            if name.startswith("*.") and host.partition(".")[2] == name[2:] and "." in name[2:]:
                return True
        return False


class CertificateError(ValueError):
    pass


def load(path: Path, password: str) -> Certificate:
    """The PFX at ``path`` as PEM with its leaf's names and validity."""
    try:
        key, leaf, chain = pkcs12.load_key_and_certificates(
            path.read_bytes(), password.encode() if password else None
        )
    except ValueError as e:  # wrong password or not a PKCS#12 file
        raise CertificateError(f"cannot open it as PKCS#12 ({e})") from e
    if key is None or leaf is None:
        raise CertificateError("it holds no private key and certificate")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [leaf, *chain])
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return Certificate(pem.decode(), names, leaf.not_valid_before_utc, leaf.not_valid_after_utc)


def problems(cert: Certificate, host: str, now: datetime) -> list[str]:
    """What makes ``cert`` unusable for ``host`` at ``now`` (empty: usable)."""
    found = []
    if not cert.covers(host):
        shown = ", ".join(cert.names) or "no DNS names"
        found.append(f"the certificate is for {shown}, not {host}")
    if now < cert.not_before:
        found.append(f"the certificate is not valid before {cert.not_before:%Y-%m-%d}")
    if now >= cert.not_after:
        found.append(f"the certificate expired on {cert.not_after:%Y-%m-%d}")
    return found


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
    return keyvault.Secret(
        "tls-certificate-secret",
        secret_name=ingress.certificate_name,
        resource_group_name=resource_group_name,
        vault_name=vault_name,
        properties=keyvault.SecretPropertiesArgs(
            value=pulumi.Output.secret(pem),
            content_type=PEM_CONTENT_TYPE,
            attributes=keyvault.SecretAttributesArgs(
                enabled=True, expires=int(cert.not_after.timestamp()) if cert else None
            ),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
