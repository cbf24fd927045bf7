"""A PFX made on the fly for the certificate tests: a self-signed leaf for the given names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)  # for checks at an injected clock


def yesterday() -> datetime:
    """A start for a certificate a run of the program checks at its own clock (the real one,
    which the time-travel check moves): valid from a day before it, to the second."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def write_pfx(
    path: Path,
    *names: str,
    password: str = "",
    not_before: datetime = NOT_BEFORE,
    days: int = 3650,
) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"scoring", key, cert, None, encryption))
    return path
