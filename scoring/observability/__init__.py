"""What the scoring host tells about itself: metrics, telemetry and model data collection.

:class:`Observability` is the one object the HTTP host calls (one per worker process):

* :mod:`.metrics`: Prometheus counters and histograms, ``GET /metrics``; always on.
* :mod:`.telemetry`: requests, exceptions and log lines to Application Insights, when
  ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set.
* :mod:`.collector`: inputs and outputs to blob storage in Azure ML's data collector format,
  when ``DATA_COLLECTION_ENABLED=true``.

Settings: :mod:`.settings` (read by :class:`scoring.config.Settings`). A sink whose settings
are wrong, or that cannot start, is off, with one log line saying why; scoring goes on.
The hooks cost the request path a few additions and at most two list appends; everything that
talks to a network runs in the sinks' own threads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .metrics import (
    CACHE_HITS,
    CACHE_MISSES,
    CONTENT_TYPE,
    IN_FLIGHT,
    INIT_SECONDS,
    OTHER_ROUTE,
    REFUSED,
    ROUTE_INDEX,
    Metrics,
)

if TYPE_CHECKING:
    from ..config import Settings
    from .collector import DataCollector
    from .telemetry import Telemetry

__all__ = ["CONTENT_TYPE", "Observability"]

log = logging.getLogger("scoring.observability")


class Observability:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.metrics_dir)
        self.telemetry: Telemetry | None = None
        self.collector: DataCollector | None = None
        self._started = False
        self._errors: dict[str, str | None] = {}

    def start(self) -> None:
        """Start the sinks (in the worker process, after the fork). Never raises."""
        if self._started:
            return
        self._started = True
        for name in ("azure", "msal"):  # the SDKs log every HTTP request they make at INFO
            quiet = logging.getLogger(name)
            if quiet.level == logging.NOTSET:
                quiet.setLevel(logging.WARNING)
        s = self.settings
        t, dc = s.telemetry, s.data_collection
        for warning in t.warnings:
            log.warning("telemetry: %s", warning)
        if t.problem:
            log.error("Application Insights telemetry is off: %s", t.problem)
        elif t.enabled:
            from .telemetry import Telemetry

            telemetry = Telemetry(
                t,
                self.metrics,
                service=t.service_name,
                deployment=dc.deployment,
                model=f"{s.model_name}:{s.model_version}",
            )
            if telemetry.start():
                self.telemetry = telemetry
            self._errors["telemetry"] = telemetry.error
        if dc.problem:
            log.error("model data collection is off: %s", dc.problem)
        elif dc.enabled:
            from .collector import DataCollector

            collector = DataCollector(dc, self.metrics, model_version=s.model_version, process=True)
            if collector.start():
                self.collector = collector
            self._errors["data_collection"] = collector.error

    def close(self) -> None:
        for sink in (self.collector, self.telemetry):
            if sink is not None:
                try:
                    sink.close()
                except Exception as exc:
                    log.warning("closing %s: %s", type(sink).__name__, exc)
        self.collector = self.telemetry = None  # the metrics stay: the process ends next

    # -- hooks (event loop) ---------------------------------------------------------------------

    def request_started(self) -> None:
        """A /score request arrived (the in-flight gauge)."""
        self.metrics.cells[IN_FLIGHT] += 1.0

    def request_finished(
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
        """A request answered (``t0``: ``time.perf_counter()`` at its arrival); for /score,
        after :meth:`request_started`."""
        route = ROUTE_INDEX.get(path, OTHER_ROUTE)
        metrics = self.metrics
        metrics.request(route, status, seconds)
        if route == 0:
            metrics.cells[IN_FLIGHT] -= 1.0
        telemetry = self.telemetry
        if telemetry is not None:
            telemetry.request(
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

    def answered(
        self,
        t0: float,
        seconds: float,
        path: str,
        method: str,
        resp: Any,
        hmap: dict[str, str],
        ids: list[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> None:
        """After a response went out: ``resp`` a :class:`scoring.messages.ScoreResponse` (a
        failed run()'s, :class:`scoring.service.FailedRun`, has ``error``, ``run_seconds``),
        ``ids`` the request-id headers (``x-request-id`` first), ``body`` /score's input."""
        metrics = self.metrics
        metrics.request(ROUTE_INDEX.get(path, OTHER_ROUTE), resp.status, seconds)
        if resp.exec_ms is not None:
            metrics.run(resp.exec_ms / 1000.0, False)
        elif resp.run_failed:
            metrics.run(getattr(resp, "run_seconds", None) or seconds, True)
        if resp.cache is not None:
            metrics.cells[CACHE_HITS if resp.cache == "hit" else CACHE_MISSES] += 1.0
        if resp.refused is not None:
            metrics.cells[REFUSED[resp.refused]] += 1.0
        telemetry, collector = self.telemetry, self.collector
        if telemetry is None and collector is None:
            return
        rid = ids[0][1].decode("latin-1") if ids else ""
        if telemetry is not None:
            payload = (body, resp.body) if body is not None else None
            telemetry.request(
                t0,
                seconds,
                path,
                method,
                resp.status,
                rid,
                hmap.get("x-ms-client-request-id") or hmap.get("x-ms-request-id"),
                hmap.get("traceparent"),
                getattr(resp, "error", None) if resp.run_failed else None,
                hmap.get("host"),
                payload if telemetry.settings.include_payloads else None,
            )
        # a cache hit is a prediction served too: collected like the others
        if collector is not None and body is not None and resp.status == 200 and not resp.stream:
            collector.collect(body, resp.body, rid)

    def run_finished(self, seconds: float, failed: bool) -> None:
        self.metrics.run(seconds, failed)

    def cache(self, hit: bool) -> None:
        self.metrics.cells[CACHE_HITS if hit else CACHE_MISSES] += 1.0

    def init_finished(self, seconds: float) -> None:
        self.metrics.cells[INIT_SECONDS] = seconds

    def init_failed(self, exc: BaseException) -> None:
        """init() raised: an exception item, sent before the worker exits."""
        if self.telemetry is not None:
            self.telemetry.exception(exc, f"init() failed: {type(exc).__name__}: {exc}")

    @property
    def collecting(self) -> bool:
        return self.collector is not None

    def collect(self, body: bytes, output: bytes, request_id: str) -> None:
        collector = self.collector
        if collector is not None:
            collector.collect(body, output, request_id)

    # -- reading --------------------------------------------------------------------------------

    def render_metrics(self) -> bytes:
        return self.metrics.render()

    def status(self) -> dict[str, Any]:
        s = self.settings
        telemetry: dict[str, Any] = (
            self.telemetry.status()
            if self.telemetry is not None
            else {"enabled": False, "error": s.telemetry.problem or self._errors.get("telemetry")}
        )
        collection: dict[str, Any] = (
            self.collector.status()
            if self.collector is not None
            else {
                "enabled": False,
                "error": s.data_collection.problem or self._errors.get("data_collection"),
            }
        )
        return {"telemetry": telemetry, "data_collection": collection}
