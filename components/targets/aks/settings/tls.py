"""The AKS endpoint's certificate source: ``aksTlsPfxPath`` (+ ``aksTlsPfxPassword``), read and
checked before any resource is declared (pfx.py; components/targets/aks/certificate.py says why the
program writes the certificate into the workspace's key vault itself).

A missing file, or none named, is a stand-in (``Pulumi.prod.yaml`` ships a placeholder path, a
migrated v1 stack names none): the offline preview shows the plan with it, and a real run refuses
it with the other stand-ins, naming the key (components/config/stand_ins.py).
"""

from __future__ import annotations

from datetime import datetime

from components.config.reader import Reader
from components.config.stand_ins import project_path
from components.targets.aks.settings import pfx
from components.targets.aks.settings.pfx import Certificate


def read_certificate(
    r: Reader, tls: bool, host: str, now: datetime
) -> tuple[str, str, Certificate | None]:
    """(PFX path, its password, the certificate if the file is there); problems reported."""
    path = r.str("aksTlsPfxPath").strip()
    password = r.str("aksTlsPfxPassword")
    if not tls:
        return path, password, None
    if not path:  # required by a real run (stand_ins.check); the offline preview shows the plan
        return path, password, None
    file = project_path(path)
    if not file.is_file():
        return path, password, None  # a stand-in: accepted offline, refused by a real run
    try:
        cert = pfx.load(file, password)
    except (pfx.CertificateError, OSError) as e:
        r.fail(
            ("aksTlsPfxPath", "aksTlsPfxPassword"),
            path,
            f"not a usable PFX: {e}",
            "export the certificate with its private key and chain as PKCS#12 (.pfx) and set "
            "its password with `pulumi config set --secret aksTlsPfxPassword`",
        )
        return path, password, None
    for problem in pfx.problems(cert, host, now) if host else []:
        r.fail(
            ("aksTlsPfxPath", "aksTlsHost"),
            path,
            problem,
            "issue (or renew) a certificate whose subjectAltName names mlscore:aksTlsHost and "
            "point mlscore:aksTlsPfxPath at it",
        )
    return path, password, cert
