"""Settings of the observability sinks: Application Insights telemetry and model data collection.

Read with the host's other settings (:meth:`scoring.config.Settings.from_env`). Unlike those, a
bad value here never stops the host: scoring matters more than its telemetry. A sink whose
settings are wrong is turned off and ``problem`` says why, naming the variable and the fix (the
host logs it once); a bad value of a secondary knob (a sampler, a flag) falls back to its
default with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingProblem(ValueError):
    """A sink's setting is wrong; the message names it and the fix."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingProblem(f"{name}={raw!r}: expected true or false")


_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
SAMPLERS = ("microsoft.rate_limited", "microsoft.fixed_percentage", "always_on")
DEFAULT_TRACES_PER_SECOND = 5.0  # the distro's default sampler (azure-monitor-opentelemetry 1.8)


@dataclass(frozen=True)
class TelemetrySettings:
    """Application Insights (``APPLICATIONINSIGHTS_CONNECTION_STRING``), see
    :mod:`scoring.observability.telemetry`. A bad value never stops the host: ``problem`` says
    why telemetry is off, ``warnings`` what was replaced by its default."""

    connection_string: str | None = None  # normalised, complete; None: no telemetry
    entra_id: bool = False  # ingestion signs in with a managed identity (Entra ID)
    client_id: str | None = None  # that identity (None: the system-assigned one)
    service_name: str = "scoring"  # cloud_RoleName
    include_payloads: bool = False
    sampler: str = "microsoft.rate_limited"
    sampler_arg: float = DEFAULT_TRACES_PER_SECOND
    problem: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.connection_string is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TelemetrySettings:
        warnings: list[str] = []
        # TELEMETRY_PAYLOADS: the same switch, as the program's first cut named it
        payloads = "TELEMETRY_INCLUDE_PAYLOADS" if "TELEMETRY_INCLUDE_PAYLOADS" in env else None
        include = _soft_bool(env, payloads or "TELEMETRY_PAYLOADS", False, warnings)
        sampler, arg = _sampler(env, warnings)
        raw = (env.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or "").strip()
        conn, problem = (None, None) if not raw else _connection_string(raw)
        entra, client_id, auth_problem = _entra(env)
        if conn and auth_problem:
            conn, problem = None, auth_problem
        service = (env.get("OTEL_SERVICE_NAME") or env.get("SCORING_ENDPOINT_NAME") or "").strip()
        return cls(
            connection_string=conn,
            entra_id=entra,
            client_id=client_id,
            service_name=service or "scoring",
            include_payloads=include,
            sampler=sampler,
            sampler_arg=arg,
            problem=problem,
            warnings=tuple(warnings),
        )


def _entra(env: Mapping[str, str]) -> tuple[bool, str | None, str | None]:
    """Entra ID ingestion: ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING``
    (``Authorization=AAD;ClientId=<id>``, Microsoft's setting for it), else ``AZURE_CLIENT_ID``
    (the identity the host signs in with everywhere else). (on, client id, problem)"""
    client_id = (env.get("AZURE_CLIENT_ID") or "").strip() or None
    raw = (env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING") or "").strip()
    if not raw:
        return client_id is not None, client_id, None
    parts: dict[str, str] = {}
    malformed = False
    for segment in filter(None, (p.strip() for p in raw.split(";"))):
        key, sep, value = segment.partition("=")
        malformed |= not sep
        parts[key.strip().lower()] = value.strip()
    if malformed or parts.get("authorization", "").lower() != "aad":
        return (
            False,
            None,
            (
                "APPLICATIONINSIGHTS_AUTHENTICATION_STRING is malformed: expected "
                "Authorization=AAD;ClientId=<client id of the managed identity>"
            ),
        )
    return True, parts.get("clientid") or client_id, None


def _connection_string(raw: str) -> tuple[str | None, str | None]:
    """The connection string normalised (``Key=value;...``, no empty parts), or why it is not
    one the exporter can use: an instrumentation key alone is refused (Azure Monitor ends
    instrumentation-key ingestion; a connection string names the ingestion endpoint)."""
    fix = (
        "set it to the Application Insights resource's full connection string "
        "(InstrumentationKey=...;IngestionEndpoint=https://...)"
    )
    if _UUID_RE.match(raw):
        return None, f"APPLICATIONINSIGHTS_CONNECTION_STRING is an instrumentation key alone: {fix}"
    parts: dict[str, tuple[str, str]] = {}
    for number, segment in enumerate(raw.split(";"), 1):
        segment = segment.strip()
        if not segment:
            continue
        key, sep, value = segment.partition("=")
        if not sep or not key.strip() or "=" in value:
            return None, (
                f"APPLICATIONINSIGHTS_CONNECTION_STRING is malformed (part {number} is not "
                f"Key=value): {fix}"
            )
        parts[key.strip().lower()] = (key.strip(), value.strip())
    ikey = parts.get("instrumentationkey", ("", ""))[1]
    if not _UUID_RE.match(ikey):
        return None, f"APPLICATIONINSIGHTS_CONNECTION_STRING has no valid InstrumentationKey: {fix}"
    endpoint = parts.get("ingestionendpoint", ("", ""))[1]
    if not endpoint and not parts.get("endpointsuffix", ("", ""))[1]:
        return None, (
            "APPLICATIONINSIGHTS_CONNECTION_STRING has no IngestionEndpoint (an instrumentation "
            f"key alone): {fix}"
        )
    if endpoint and not _is_url(endpoint):
        return (
            None,
            f"APPLICATIONINSIGHTS_CONNECTION_STRING: IngestionEndpoint {endpoint!r} is not a "
            f"URL: {fix}",
        )
    auth = parts.get("authorization", ("", "ikey"))[1]
    if auth.lower() != "ikey":
        return (
            None,
            f"APPLICATIONINSIGHTS_CONNECTION_STRING: Authorization={auth} is not supported: {fix}",
        )
    return ";".join(f"{k}={v}" for k, v in parts.values()), None


def _is_url(value: str, schemes: tuple[str, ...] = ("https", "http")) -> bool:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return url.scheme in schemes and bool(url.hostname)


def _sampler(env: Mapping[str, str], warnings: list[str]) -> tuple[str, float]:
    """``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``, as the distro reads them; a bad
    value falls back to its default (rate-limited, 5 requests a second), as the distro does."""
    name = (env.get("OTEL_TRACES_SAMPLER") or "microsoft.rate_limited").strip().lower()
    if name not in SAMPLERS:
        warnings.append(
            f"OTEL_TRACES_SAMPLER={name!r} is not supported (use one of {', '.join(SAMPLERS)}): "
            f"using microsoft.rate_limited at {DEFAULT_TRACES_PER_SECOND:g} requests/s"
        )
        return "microsoft.rate_limited", DEFAULT_TRACES_PER_SECOND
    if name == "always_on":
        return "microsoft.fixed_percentage", 1.0
    default = DEFAULT_TRACES_PER_SECOND if name == "microsoft.rate_limited" else 1.0
    raw = (env.get("OTEL_TRACES_SAMPLER_ARG") or "").strip()
    if not raw:
        return name, default
    try:
        arg = float(raw)
    except ValueError:
        arg = -1.0
    top = float("inf") if name == "microsoft.rate_limited" else 1.0
    if not 0.0 <= arg <= top:
        what = "requests per second, >= 0" if top > 1 else "a ratio from 0 to 1"
        warnings.append(f"OTEL_TRACES_SAMPLER_ARG={raw!r}: expected {what}; using {default:g}")
        return name, default
    return name, arg


def _soft_bool(env: Mapping[str, str], name: str, default: bool, warnings: list[str]) -> bool:
    try:
        return _bool(env, name, default)
    except SettingProblem as exc:
        warnings.append(f"{exc}; using {str(default).lower()}")
        return default


DEFAULT_CONTAINER = "modeldata"


@dataclass(frozen=True)
class DataCollectionSettings:
    """Model data collection to blob storage, see :mod:`scoring.observability.collector`. A bad
    value never stops the host: ``problem`` says why collection is off."""

    enabled: bool = False
    blob_url: str | None = None  # a container (or account) URL, signed in with an identity
    connection_string: str | None = None  # Azurite and tests
    folder: str | None = None  # a local folder instead of storage (the local run)
    container: str = DEFAULT_CONTAINER
    sampling_rate: float = 1.0
    endpoint: str = "scoring"
    deployment: str = "default"
    client_id: str | None = None
    problem: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DataCollectionSettings:
        base = cls(
            endpoint=_segment(env.get("SCORING_ENDPOINT_NAME")) or "scoring",
            deployment=_segment(env.get("SCORING_DEPLOYMENT_NAME")) or "default",
            client_id=(env.get("AZURE_CLIENT_ID") or "").strip() or None,
        )
        try:
            enabled = _bool(env, "DATA_COLLECTION_ENABLED", False)
        except SettingProblem as exc:
            return replace(base, problem=f"{exc}: model data collection is off")
        if not enabled:
            return base
        try:
            return replace(base, enabled=True, **_collection_target(env))
        except SettingProblem as exc:
            return replace(base, problem=f"{exc}: model data collection is off")


_CONTAINER_RE = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _collection_target(env: Mapping[str, str]) -> dict[str, Any]:
    url = (env.get("DATA_COLLECTION_BLOB_URL") or "").strip() or None
    conn = (env.get("DATA_COLLECTION_CONNECTION_STRING") or "").strip() or None
    folder = (env.get("DATA_COLLECTION_FOLDER") or "").strip() or None
    container = (env.get("DATA_COLLECTION_CONTAINER") or "").strip() or DEFAULT_CONTAINER
    # Container names: 3-63 lower-case letters, digits and single hyphens
    # (https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata)
    if not _CONTAINER_RE.match(container):
        raise SettingProblem(
            f"DATA_COLLECTION_CONTAINER={container!r}: a container name is 3-63 lower-case "
            "letters, digits and single hyphens"
        )
    raw_rate = (env.get("DATA_COLLECTION_SAMPLING_RATE") or "").strip()
    try:
        rate = float(raw_rate) if raw_rate else 1.0
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise SettingProblem(
            f"DATA_COLLECTION_SAMPLING_RATE={raw_rate!r}: expected the share of requests "
            "collected, from 0 to 1 (e.g. 0.25)"
        )
    given = [
        n for n, v in (("BLOB_URL", url), ("CONNECTION_STRING", conn), ("FOLDER", folder)) if v
    ]
    if len(given) > 1:
        raise SettingProblem(
            f"DATA_COLLECTION_{given[0]} and DATA_COLLECTION_{given[1]} are both set: set one "
            "(the URL signs in with the identity; the connection string is for Azurite and "
            "tests; the folder is for a local run)"
        )
    if folder:
        if not folder.startswith("/"):
            raise SettingProblem(
                f"DATA_COLLECTION_FOLDER={folder!r}: expected an absolute path (a local folder)"
            )
    elif url:
        if "?" in url or not _is_url(url, ("https", "http")):
            shown = url.split("?", 1)[0] + ("?<query left out>" if "?" in url else "")
            raise SettingProblem(
                f"DATA_COLLECTION_BLOB_URL={shown!r}: expected a container URL such as "
                "https://<account>.blob.core.windows.net/<container> (no SAS: the identity signs "
                "in)"
            )
    elif conn:
        if not _storage_connection_string(conn):
            raise SettingProblem(
                "DATA_COLLECTION_CONNECTION_STRING is malformed: expected "
                "DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;BlobEndpoint=..."
            )
    else:
        raise SettingProblem(
            "DATA_COLLECTION_ENABLED=true needs DATA_COLLECTION_BLOB_URL (a container URL), "
            "DATA_COLLECTION_CONNECTION_STRING or DATA_COLLECTION_FOLDER (a local folder)"
        )
    return {
        "blob_url": url,
        "connection_string": conn,
        "folder": folder,
        "container": container,
        "sampling_rate": rate,
    }


def _storage_connection_string(raw: str) -> bool:
    parts = {}
    for segment in raw.split(";"):
        if segment.strip():
            key, sep, value = segment.partition("=")
            if not sep or not value:
                return False
            parts[key.strip().lower()] = value.strip()
    if "usedevelopmentstorage" in parts:
        return True
    has_account = "accountname" in parts or "blobendpoint" in parts
    has_secret = "accountkey" in parts or "sharedaccesssignature" in parts
    blob = parts.get("blobendpoint")
    return has_account and has_secret and (blob is None or _is_url(blob))


def _segment(raw: str | None) -> str:
    """An endpoint or deployment name as a blob path segment: no slashes, no spaces."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", (raw or "").strip()).strip("-")
