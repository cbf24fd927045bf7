"""Values a user must replace: refused when the program runs for real, accepted offline.

``Pulumi.prod.yaml`` ships stand-ins so that ``python -m preview prod`` shows a whole production
plan: documentation address ranges for the allow-lists and documentation domains for the TLS
host and the alert receivers. Deployed, they break the first ``pulumi up`` partway (the registry
push and the model upload refused by the storage and registry firewalls, the AKS API wait timing
out, IoT Hub calls refused) and send every alert nowhere. So:

* the offline engine (``preview/engine.py``) marks its runs with :data:`OFFLINE_ENGINE` (a config
  key in a namespace of its own, which the Pulumi CLI never sets); :func:`offline_engine` reads it;
* every other run (``pulumi up``, a real ``pulumi preview``) refuses every stand-in key at once,
  before any resource is declared (:func:`check`).

What a stand-in is, by the documents that reserve them:

* IPv4 ``192.0.2.0/24``, ``198.51.100.0/24``, ``203.0.113.0/24`` (TEST-NET-1..3, "for use in
  documentation", https://www.rfc-editor.org/rfc/rfc5737) and IPv6 ``2001:db8::/32``
  (https://www.rfc-editor.org/rfc/rfc3849). :mod:`ipaddress` answers ``is_global`` False for
  them, but the allow-lists' own list of non-public ranges (network_settings.NOT_PUBLIC: private,
  loopback, link-local, multicast...) leaves them out, so they passed every check.
* the domains ``example.com``, ``example.net``, ``example.org`` and the TLDs ``.example``,
  ``.test``, ``.invalid``, ``.localhost`` (https://www.rfc-editor.org/rfc/rfc2606,
  https://www.rfc-editor.org/rfc/rfc6761): no one receives mail there and no public CA issues a
  certificate for them.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pulumi

from components import PROJECT_ROOT
from components.config.reader import Reader

# The offline engine's marker: namespace, key and value (preview/engine.py sets it on every run).
OFFLINE_NAMESPACE = "mlscore-offline-preview"
OFFLINE_KEY = "engine"
OFFLINE_ENGINE = (f"{OFFLINE_NAMESPACE}:{OFFLINE_KEY}", "preview/engine.py")

DOCUMENTATION_RANGES = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TLDS = ("example", "test", "invalid", "localhost")

# Keys that take address ranges, host names, e-mail addresses and files a user must supply.
RANGE_KEYS = ("deployerIpRanges", "aksApiAuthorizedIpRanges", "iotHubIpFilter")
HOST_KEYS = ("aksTlsHost",)
EMAIL_KEYS = ("alertEmailReceivers",)
FILE_KEYS = ("aksTlsPfxPath",)


def project_path(path: str) -> Path:
    """A path from the stack config: relative ones are relative to the project (where
    ``Pulumi.yaml`` is, the program's working directory under the CLI)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def offline_engine() -> bool:
    """True only in a run of the offline engine (its explicit marker), never a guess."""
    return pulumi.Config(OFFLINE_NAMESPACE).get(OFFLINE_KEY) == OFFLINE_ENGINE[1]


def documentation_range(item: str) -> bool:
    try:
        net = ipaddress.ip_network(item.strip(), strict=False)
    except ValueError:
        return False  # not an address at all: the key's own reader says so
    return any(
        net.version == doc.version and (net.subnet_of(doc) or doc.subnet_of(net))  # type: ignore[arg-type]
        for doc in DOCUMENTATION_RANGES
    )


def reserved_domain(host: str) -> bool:
    name = host.strip().lower().rstrip(".")
    labels = name.split(".")
    return labels[-1] in RESERVED_TLDS or any(
        name == d or name.endswith("." + d) for d in RESERVED_DOMAINS
    )


def found(r: Reader) -> dict[str, list[str]]:
    """Every stand-in in the stack's config, by key (the raw values, as written)."""
    out: dict[str, list[str]] = {}
    for key in RANGE_KEYS + HOST_KEYS + EMAIL_KEYS + FILE_KEYS:
        raw = str(r.raw(key)[1] or "")
        items = [i.strip() for i in raw.split(",") if i.strip()]
        if key in RANGE_KEYS:
            bad = [i for i in items if documentation_range(i)]
        elif key in HOST_KEYS:
            bad = [i for i in items if reserved_domain(i)]
        elif key in EMAIL_KEYS:
            bad = [i for i in items if reserved_domain(i.rpartition("@")[2])]
        else:  # a file that is not there (the shipped placeholder path)
            bad = [i for i in items if not project_path(i).is_file()]
        if bad:
            out[key] = bad
    return out


FIXES = {
    "deployerIpRanges": "the public egress IPs of the machine or runner that runs pulumi up "
    "(what https://ifconfig.me shows from it)",
    "aksApiAuthorizedIpRanges": "the public egress IPs that call the AKS API (or clear it: it "
    "defaults to mlscore:deployerIpRanges)",
    "iotHubIpFilter": "the public egress ranges of your IoT Edge devices",
    "aksTlsHost": "your DNS name for the AKS endpoint (e.g. scoring.contoso.com)",
    "alertEmailReceivers": "the on-call addresses that must receive the alerts",
    "aksTlsPfxPath": "the path of the PFX file (certificate chain and private key) for "
    "mlscore:aksTlsHost",
}


def check(r: Reader) -> None:
    """Refuse every stand-in (a real run): one problem per key, all keys at once."""
    _missing_certificate(r)
    for key, values in found(r).items():
        kind = (
            "a placeholder file that does not exist"
            if key in FILE_KEYS
            else "a documentation value (RFC 5737/3849/2606/6761), a stand-in shipped for the "
            "offline preview"
        )
        r.fail(key, ", ".join(values), f"{kind}; a real run cannot use it", f"set {FIXES[key]}")


def _missing_certificate(r: Reader) -> None:
    """HTTPS on a cluster with no certificate file: the gateway reads its certificate from the
    workspace's key vault, which this same run creates, so nothing can be in it on a first run
    and the program must store it (components/targets/aks/certificate.py)."""
    on = all(str(r.raw(k)[1]).strip().lower() == "true" for k in ("aksEnabled", "aksTlsEnabled"))
    if on and not str(r.raw("aksTlsPfxPath")[1] or "").strip():
        r.fail(
            ("aksTlsEnabled", "aksTlsPfxPath"),
            "true, ''",
            "HTTPS needs a certificate, and the workspace's key vault that the gateway reads is "
            "created by this same run: nothing can be in it on a first deploy",
            "set mlscore:aksTlsPfxPath to a PFX file with the chain and private key for "
            "mlscore:aksTlsHost (and `pulumi config set --secret aksTlsPfxPassword` if it has "
            "one); the program stores it in the vault before the gateway needs it",
        )
