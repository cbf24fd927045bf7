"""Versions with support windows, checked against the settings' clock: the Kubernetes minor of a
cluster this stack creates and the Istio add-on revision.

Both default to the platform's choice (empty), so a stack created next year still deploys:
AKS creates the cluster at its default version, and the Istio add-on installs its default
revision ("If a revision isn't explicitly provided by user during installation, the n-1
revision is installed by default": https://learn.microsoft.com/azure/aks/istio-support-policy,
"Default revision"). A pinned one is refused once its window has closed at the clock's date.

Kubernetes: the AKS Kubernetes release calendar
(https://learn.microsoft.com/azure/aks/supported-kubernetes-versions#aks-kubernetes-release-calendar,
MicrosoftDocs/azure-aks-docs articles/aks/supported-kubernetes-versions.md): "Unless an explicit
date is provided, the End of Life (EOL) date is the last day of the specified month"; past it a
minor is in platform support, where "Cluster creation: Not Supported".

Istio: the add-on's release calendar (istio-support-policy.md, "Service mesh add-on release
calendar"); "Deprecation means no new mesh installations can be done with this revision". The
calendar in the revision checked ends at asm-1-27; later revisions are not listed here, so they
are not refused (AKS itself refuses one it no longer installs: ``az aks mesh get-revisions``).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime

from components.config.reader import Reader


def _end_of(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


# minor -> (AKS GA, end of life): the release calendar's rows.
KUBERNETES: dict[str, tuple[date, date]] = {
    "1.32": (date(2025, 4, 1), _end_of(2026, 3)),
    "1.33": (date(2025, 6, 1), _end_of(2026, 7)),
    "1.34": (date(2025, 11, 1), _end_of(2026, 11)),
    "1.35": (date(2026, 3, 1), _end_of(2027, 3)),
    "1.36": (date(2026, 6, 1), _end_of(2027, 6)),
    "1.37": (date(2026, 10, 1), _end_of(2027, 10)),
}

# revision -> end of life (the calendar's "~<month> (expected)" read as that month's end).
ISTIO: dict[str, date] = {
    "asm-1-17": _end_of(2024, 1),
    "asm-1-18": _end_of(2024, 2),
    "asm-1-19": _end_of(2024, 6),
    "asm-1-20": _end_of(2024, 9),
    "asm-1-21": _end_of(2024, 10),
    "asm-1-22": _end_of(2025, 3),
    "asm-1-23": _end_of(2025, 6),
    "asm-1-24": _end_of(2025, 9),
    "asm-1-25": _end_of(2026, 1),
    "asm-1-26": _end_of(2026, 2),
    "asm-1-27": _end_of(2026, 5),
}


def _minor_key(minor: str) -> tuple[int, ...]:
    return tuple(int(p) for p in minor.split("."))


def supported_minors(at: date) -> list[str]:
    """The minors AKS creates clusters at on ``at`` (GA and not past end of life)."""
    return [m for m, (ga, eol) in KUBERNETES.items() if ga <= at <= eol]


def default_minor(at: date) -> str:
    """The minor the manifests are validated against when AKS picks the version: the oldest in
    support at ``at`` (every API the manifests use must exist there), else the newest listed."""
    supported = supported_minors(at)
    return min(supported, key=_minor_key) if supported else max(KUBERNETES, key=_minor_key)


def check_kubernetes(r: Reader, version: str, at: datetime) -> None:
    """A pinned version whose minor AKS no longer creates clusters at (or not yet) is refused."""
    if not version:
        return
    minor = ".".join(version.split(".")[:2])
    day = at.astimezone(UTC).date()
    newest = max(KUBERNETES, key=_minor_key)
    if minor not in KUBERNETES and _minor_key(minor) > _minor_key(newest):
        return  # newer than the calendar here: AKS validates it
    ga, eol = KUBERNETES.get(minor, (date.max, date.min))
    if not ga <= day <= eol:
        when = f"its support ended {eol:%d %b %Y}" if day > eol else "it is not GA on AKS"
        r.fail(
            "aksKubernetesVersion",
            version,
            f"AKS does not create clusters at {minor} on {day:%d %b %Y}: {when}",
            "leave mlscore:aksKubernetesVersion empty (AKS's default) or pin one of "
            + ", ".join(supported_minors(day) or [newest]),
        )


def check_istio(r: Reader, revision: str, at: datetime) -> None:
    """A pinned revision past its end of life is refused (no new mesh installations)."""
    eol = ISTIO.get(revision)
    day = at.astimezone(UTC).date()
    if eol is not None and day > eol:
        r.fail(
            "aksIstioRevision",
            revision,
            f"the Istio add-on revision reached its end of life on {eol:%d %b %Y}: AKS installs "
            "no new mesh with it",
            "leave mlscore:aksIstioRevision empty (the add-on's default revision) or pick a "
            "current one from `az aks mesh get-revisions --location <region>`",
        )
