"""Request, exception and log telemetry to Application Insights, through OpenTelemetry.

The exporter package (``azure-monitor-opentelemetry-exporter``), not the distro
(``azure-monitor-opentelemetry``): the distro's instrumentations wrap Django, Flask, FastAPI,
requests and the like, none of which serves this host (a raw ASGI app on uvicorn); its Flask
instrumentation would even wrap the Flask request context ``@rawhttp`` scripts run in. The
distro 1.8 also pins ``opentelemetry-instrumentation-flask`` 0.66b1, whose
``opentelemetry-instrumentation`` 0.66b1 conflicts with pulumi's ``instrumentation-grpc``
0.66b2 in this venv. What it configures is reproduced here: the same exporter, the same
default sampling (rate-limited, 5 requests a second, ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG``) and the log handler.

The request path pays one tuple appended to a list (:meth:`Telemetry.request`). A thread turns
the list into OpenTelemetry spans every second: it samples them (failures are always kept,
with sample rate 100; the others at the configured rate, each item carrying the rate so that
Application Insights scales counts by its ``itemCount``), builds the spans and hands them to
the exporter, which sends them over HTTP. The exporter costs about 0.3 ms of CPU an item, under
the GIL the event loop needs: the thread works at most ``DUTY`` (5%) of the time, and when the
sampler keeps more than that allows it keeps every n-th item with its rate divided by n
(failures first), so counts stay right and scoring keeps its speed. The buffer is bounded:
past it requests go untraced and are counted
(``scoring_telemetry_items_total{outcome="dropped"}``). Ingestion down only stalls that thread
(and the exporter keeps what failed on disk to retry, as it does by default).

Items: a request (``RequestData``: ``POST /score``, status, duration; ``operation_Id`` is the
request's ``traceparent`` trace id if it sent one, else its ``x-request-id`` without dashes, or
a hash of it when it is no UUID; ``request_id``/``client_request_id`` as properties), the
exception ``run()`` raised (``ExceptionData``, same operation), an ``init()`` failure, and the
host's log lines (``MessageData``; the exporter's own and the access log excluded). No payload
and no prediction unless ``TELEMETRY_INCLUDE_PAYLOADS=true``. Entra ID ingestion with
``AZURE_CLIENT_ID``: ``ManagedIdentityCredential(client_id=...)``, and the identity needs the
Monitoring Metrics Publisher role on the Application Insights resource
(https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).
Sampling: https://learn.microsoft.com/azure/azure-monitor/app/opentelemetry-sampling
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import time
import traceback
from typing import Any

from .metrics import TM_DROPPED, TM_EXPORTED, TM_FAILED, Metrics
from .settings import TelemetrySettings

log = logging.getLogger("scoring.telemetry")

MAX_PROPERTY = 8192  # Application Insights' limit on a property value
DUTY = 0.05  # the share of time the export thread may work (then it samples further)
CHUNK = 64  # spans per export call
_QUIET = ("azure", "opentelemetry", "urllib3", "msal", "scoring.access", "scoring.telemetry")
_KNOWN = ("/score", "/", "/ready", "/status", "/swagger.json", "/metrics")


class Telemetry:
    """One per worker process; :meth:`start` after the worker has forked."""

    def __init__(
        self,
        settings: TelemetrySettings,
        metrics: Metrics,
        *,
        service: str = "scoring",
        deployment: str = "default",
        model: str = "model:0",
        interval: float = 1.0,
        max_pending: int = 20_000,
        exporter_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.interval = interval
        self.max_pending = max_pending
        self.pending: list[tuple[Any, ...]] = []
        self.started = False
        self.error: str | None = None
        self._service, self._deployment, self._model = service, deployment, model
        self._options = dict(exporter_options or {})
        self._offset = time.time() - time.perf_counter()
        self._budget = 0.0
        self._cost = 0.0005  # seconds of export work an item: measured as it goes
        self._last = time.monotonic()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._traces: Any = None
        self._logs: Any = None
        self._handler: logging.Handler | None = None
        self._resource: Any = None
        self._scope: Any = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> bool:
        """Build the exporters and the export thread; False (logged once) if that fails."""
        try:
            self._build()
        except Exception as exc:  # a bad endpoint or credential must not stop scoring
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("Application Insights telemetry is off: %s", self.error)
            return False
        self._thread = threading.Thread(target=self._loop, name="telemetry", daemon=True)
        self._thread.start()
        self.started = True
        return True

    def _build(self) -> None:
        from azure.monitor.opentelemetry.exporter import (
            AzureMonitorLogExporter,
            AzureMonitorTraceExporter,
        )
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from .. import __version__

        options: dict[str, Any] = {"connection_string": self.settings.connection_string}
        if self.settings.entra_id:  # also AKS workload identity (AZURE_FEDERATED_TOKEN_FILE)
            from azure.identity import ManagedIdentityCredential

            options["credential"] = ManagedIdentityCredential(client_id=self.settings.client_id)
        options.update(self._options)
        self._resource = Resource.create(
            {
                "service.name": self._service,
                "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
                "service.version": __version__,
            }
        )
        self._scope = InstrumentationScope("scoring", __version__)
        # the provider only lends the exporter its resource (cloud role and instance)
        provider = TracerProvider(resource=self._resource)
        self._traces = AzureMonitorTraceExporter(tracer_provider=provider, **options)
        self._logs = LoggerProvider(resource=self._resource)
        self._logs.add_log_record_processor(
            BatchLogRecordProcessor(AzureMonitorLogExporter(**options))
        )
        self._handler = _LogHandler(self._logs.get_logger("scoring", __version__))
        logging.getLogger().addHandler(self._handler)

    def flush(self) -> None:
        """Export what is buffered now (the export thread does it every ``interval``)."""
        self._export()
        if self._logs is not None:
            self._logs.force_flush(5_000)

    def close(self, timeout: float = 5.0) -> None:
        if not self.started:
            return
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._export()
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
        if self._logs is not None:
            self._logs.shutdown()
        self._traces.shutdown()
        self.started = False

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.started,
            "error": self.error,
            "sampler": f"{self.settings.sampler} {self.settings.sampler_arg:g}",
            "entra_id": self.settings.entra_id,
            "payloads": self.settings.include_payloads,
            "buffered": len(self.pending),
        }

    # -- the request path -----------------------------------------------------------------------

    def request(
        self,
        t0: float,
        seconds: float,
        path: str,
        method: str,
        status: int,
        request_id: str,
        client_request_id: str | None = None,
        traceparent: str | None = None,
        error: BaseException | None = None,
        host: str | None = None,
        payload: tuple[bytes, bytes] | None = None,
    ) -> None:
        """Record a request answered (``t0``: its ``time.perf_counter()`` at arrival)."""
        pending = self.pending
        if len(pending) >= self.max_pending:
            self.metrics.add(TM_DROPPED)
            return
        pending.append(
            (
                t0,
                seconds,
                path,
                method,
                status,
                request_id,
                client_request_id,
                traceparent,
                error,
                host,
                payload,
            )
        )

    def exception(self, exc: BaseException, message: str) -> None:
        """An exception outside a request (init()), as an exception item, sent at once."""
        if self._handler is None:
            return
        record = logging.LogRecord(
            "scoring",
            logging.CRITICAL,
            __file__,
            0,
            message,
            (),
            (type(exc), exc, exc.__traceback__),
        )
        self._handler.handle(record)
        if self._logs is not None:
            self._logs.force_flush(5_000)

    # -- the export thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval)
            if self._stop:
                return
            try:
                self._export()
            except Exception:  # never let the thread die
                log.warning("telemetry export failed:\n%s", traceback.format_exc())

    def _export(self) -> None:
        items, self.pending = self.pending, []
        time.sleep(0)  # a request() that read the old list just before finishes its append
        now = time.monotonic()
        elapsed, self._last = now - self._last, now
        chosen = self._sample(items, elapsed)
        if not chosen:
            return
        from opentelemetry.sdk.trace.export import SpanExportResult

        # What the export thread may spend: DUTY of the time. The exporter takes about 0.3 ms
        # of CPU an item (its envelope models), all of it holding the GIL the event loop needs.
        budget = max(10, int(DUTY * max(elapsed, self.interval) / self._cost))
        chosen = thin(chosen, budget)
        started = time.thread_time()  # CPU time: a slow network costs no GIL
        for at in range(0, len(chosen), CHUNK):  # the loop gets the GIL between chunks
            spans = [self._span(item, rate) for item, rate in chosen[at : at + CHUNK]]
            result = self._traces.export(spans)
            ok = result == SpanExportResult.SUCCESS
            self.metrics.add(TM_EXPORTED if ok else TM_FAILED, len(spans))
            time.sleep(0)
        cost = max(time.thread_time() - started, 1e-6) / len(chosen)
        self._cost = 0.7 * self._cost + 0.3 * cost

    def _sample(self, items: list[tuple[Any, ...]], elapsed: float) -> list[tuple[Any, float]]:
        """Failures always (rate 100); the others by the sampler, each with its rate (the
        percentage Application Insights divides by to count the items left out)."""
        kept = [(i, 100.0) for i in items if i[4] >= 500 or i[8] is not None]
        rest = [i for i in items if i[4] < 500 and i[8] is None]
        sampler, arg = self.settings.sampler, self.settings.sampler_arg
        if not rest:
            pass
        elif sampler == "microsoft.fixed_percentage":
            if arg >= 1.0:
                kept += [(i, 100.0) for i in rest]
            elif arg > 0.0:
                kept += [(i, arg * 100.0) for i in rest if random.random() < arg]
        else:  # rate-limited: at most arg requests a second, every n-th one
            self._budget = min(self._budget + arg * elapsed, max(arg, 1.0) * 2)
            if self._budget >= 1.0:
                every = max(1, -(-len(rest) // int(self._budget)))
                start = random.randrange(every)
                picked = rest[start::every]
                self._budget -= len(picked)
                kept += [(i, 100.0 / every) for i in picked]
        return kept

    def _span(self, item: tuple[Any, ...], rate: float) -> Any:
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        t0, seconds, path, method, status, request_id, client_id, parent, error, host, payload = (
            item
        )
        start = int((t0 + self._offset) * 1e9)
        end = start + int(seconds * 1e9)
        trace_id, parent_span = trace_ids(request_id, parent)
        sampled = TraceFlags(TraceFlags.SAMPLED)
        context = SpanContext(trace_id, random.getrandbits(64) or 1, False, sampled)
        parent_ctx = SpanContext(trace_id, parent_span, True, sampled) if parent_span else None
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "http.response.status_code": status,
            "url.scheme": "http",
            "url.path": path,
            "request_id": request_id,
            "deployment": self._deployment,
            "model": self._model,
        }
        if host:
            attributes["url.full"] = f"http://{host}{path}"
        if path in _KNOWN:
            attributes["http.route"] = path
        if client_id:
            attributes["client_request_id"] = client_id
        if rate != 100.0:
            attributes["_MS.sampleRate"] = rate
        if payload is not None and self.settings.include_payloads:
            attributes["request_body"] = _text(payload[0])
            attributes["response_body"] = _text(payload[1])
        events = []
        if error is not None:
            events.append(
                Event(
                    "exception",
                    {
                        "exception.type": type(error).__name__,
                        "exception.message": str(error),
                        "exception.stacktrace": "".join(traceback.format_exception(error)),
                    },
                    end,
                )
            )
        failed = status >= 500 or error is not None
        return ReadableSpan(
            name=f"{method} {attributes.get('http.route', path)}",
            context=context,
            parent=parent_ctx,
            resource=self._resource,
            attributes=attributes,
            events=events,
            kind=SpanKind.SERVER,
            status=Status(StatusCode.ERROR if failed else StatusCode.UNSET),
            start_time=start,
            end_time=end,
            instrumentation_scope=self._scope,
        )


def thin(chosen: list[tuple[Any, float]], budget: int) -> list[tuple[Any, float]]:
    """At most ``budget`` items: failures first, then every n-th other one, its rate divided
    by n (so Application Insights still counts every request)."""
    if len(chosen) <= budget:
        return chosen
    failed = [c for c in chosen if c[0][4] >= 500 or c[0][8] is not None]
    others = [c for c in chosen if not (c[0][4] >= 500 or c[0][8] is not None)]
    out: list[tuple[Any, float]] = []
    for group, room in ((failed, budget), (others, budget - min(len(failed), budget))):
        if not group or room <= 0:
            continue
        every = -(-len(group) // room)
        start = random.randrange(every)
        out += [(item, rate / every) for item, rate in group[start::every]]
    return out


def trace_ids(request_id: str, traceparent: str | None) -> tuple[int, int]:
    """The trace id (and parent span id) of a request: its W3C ``traceparent`` if valid, else
    its request id (a UUID's 128 bits; any other id hashed), so ``operation_Id`` in
    Application Insights is the ``x-request-id`` without its dashes."""
    if traceparent:
        parts = traceparent.strip().split("-")
        if len(parts) >= 4 and parts[0] != "ff" and len(parts[1]) == 32 and len(parts[2]) == 16:
            try:
                trace_id, span_id = int(parts[1], 16), int(parts[2], 16)
            except ValueError:
                trace_id = span_id = 0
            if trace_id and span_id:
                return trace_id, span_id
    hexed = request_id.replace("-", "")
    if len(hexed) == 32:
        try:
            value = int(hexed, 16)
        except ValueError:
            value = 0
        if value:
            return value, 0
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:16], "big") or 1, 0


def _text(body: bytes) -> str:
    return body[:MAX_PROPERTY].decode("utf-8", "replace")


class _LogHandler(logging.Handler):
    """The host's log lines as OpenTelemetry log records (the SDK's ``LoggingHandler`` is
    deprecated): message, severity, logger name, and an exception's type, message and stack."""

    def __init__(self, logger: Any) -> None:
        super().__init__(logging.NOTSET)
        self._logger = logger
        from opentelemetry._logs import SeverityNumber

        self._severity = {
            logging.DEBUG: SeverityNumber.DEBUG,
            logging.INFO: SeverityNumber.INFO,
            logging.WARNING: SeverityNumber.WARN,
            logging.ERROR: SeverityNumber.ERROR,
            logging.CRITICAL: SeverityNumber.FATAL,
        }

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return not any(name == q or name.startswith(q + ".") for q in _QUIET)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            attributes: dict[str, Any] = {"logger_name": record.name}
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                attributes["exception.type"] = type(exc).__name__
                attributes["exception.message"] = str(exc)
                attributes["exception.stacktrace"] = "".join(traceback.format_exception(exc))
            self._logger.emit(
                timestamp=int(record.created * 1e9),
                severity_number=self._severity.get(record.levelno),
                severity_text=record.levelname,
                body=record.getMessage(),
                attributes=attributes,
            )
        except Exception:
            self.handleError(record)
