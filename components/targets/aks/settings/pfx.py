"""The PFX file behind ``aksTlsPfxPath``, read as settings: the certificate the AKS gateway serves
(components/targets/aks/certificate.py stores it).

Checked before any resource is declared (:func:`problems`): the file opens with its password,
holds a private key, names ``aksTlsHost`` (SAN, wildcards one label deep, RFC 6125 6.4.3:
https://www.rfc-editor.org/rfc/rfc6125#section-6.4.3) and is valid at the injected clock's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12


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
