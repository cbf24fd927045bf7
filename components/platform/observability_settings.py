"""Settings of observability: model data collection, telemetry content, alert rules.

``dataCollectionEnabled`` / ``dataCollectionSamplingRate``: the container targets write their
inputs and outputs to blob storage (the host's collector, ``scoring/observability/``); the Azure ML
online endpoint uses Azure ML's own data collector with the same rate. The rate is a decimal
from 0 to 1, as Azure ML's ``samplingRate`` and the host's ``DATA_COLLECTION_SAMPLING_RATE``
take it, so one value means the same everywhere.

``alertsEnabled`` needs ``alertEmailReceivers`` (the action group would notify no one): asking for
alerts without a receiver is refused, naming both keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.config.reader import Reader

# One address: a local part and a domain with a dot, no spaces, commas or semicolons.
EMAIL = r"[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}"
MAX_EMAIL_RECEIVERS = 1000  # "1,000 email actions in an action group" (Azure Monitor limits)
MAX_LATENCY_MS = 600_000


@dataclass(frozen=True)
class ObservabilitySettings:
    data_collection: bool = False
    sampling_rate: float = 1.0  # 0..1
    telemetry_payloads: bool = False
    alerts: bool = False
    alert_emails: tuple[str, ...] = ()
    alert_5xx_percent: int = 5
    alert_p95_latency_ms: int = 1000


def read(r: Reader) -> ObservabilitySettings:
    rate = r.float("dataCollectionSamplingRate")
    if "dataCollectionSamplingRate" in r.values and not 0.0 <= rate <= 1.0:
        r.fail(
            "dataCollectionSamplingRate",
            rate,
            "must be between 0 and 1 (the share of requests collected)",
            "set mlscore:dataCollectionSamplingRate to e.g. 0.25 (one request in four) or 1.0",
        )
    alerts = r.bool("alertsEnabled")
    emails = _emails(r)
    if alerts and not emails and "alertEmailReceivers" not in _failed(r):
        r.fail(
            ("alertsEnabled", "alertEmailReceivers"),
            "",
            "alerts are enabled but no one receives them",
            "set mlscore:alertEmailReceivers to one or more comma-separated email addresses, "
            "or set mlscore:alertsEnabled to false",
        )
    return ObservabilitySettings(
        data_collection=r.bool("dataCollectionEnabled"),
        sampling_rate=rate,
        telemetry_payloads=r.bool("telemetryPayloads"),
        alerts=alerts,
        alert_emails=emails,
        alert_5xx_percent=r.int_range("alert5xxPercent", 1, 100, "a percentage of requests"),
        alert_p95_latency_ms=r.int_range("alertP95LatencyMs", 1, MAX_LATENCY_MS),
    )


def _emails(r: Reader) -> tuple[str, ...]:
    raw = r.str("alertEmailReceivers")
    emails = tuple(e.strip() for e in raw.split(",") if e.strip())
    bad = [e for e in emails if not re.fullmatch(EMAIL, e)]
    if bad:
        r.fail(
            "alertEmailReceivers",
            raw,
            f"not an email address: {', '.join(bad)}",
            "list addresses such as oncall@example.com, separated by commas",
        )
        return ()
    folded = [e.lower() for e in emails]
    if len(set(folded)) != len(folded):
        r.fail(
            "alertEmailReceivers",
            raw,
            "an address is listed twice (receiver names must be unique in an action group)",
            "list each address once",
        )
        return ()
    if len(emails) > MAX_EMAIL_RECEIVERS:
        r.fail(
            "alertEmailReceivers",
            f"{len(emails)} addresses",
            f"an action group takes at most {MAX_EMAIL_RECEIVERS} email receivers",
            "send to a distribution list instead",
        )
        return ()
    return emails


def _failed(r: Reader) -> set[str]:
    return {k for p in r.problems for k in p.keys}
