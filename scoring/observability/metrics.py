"""Prometheus metrics of the scoring host, served at ``GET /metrics`` (text format 0.0.4).

Written by hand, not with ``prometheus_client``: a request here costs a few float additions in
a flat list and a bucket search, where the client's labelled counter and histograms take a lock
and a label lookup each: 1.0-1.4 µs against 11-16 µs a request on the shared 2-core machine
of ``make bench`` (in-flight up and down, request count and latency, run() duration:
``python bench/metrics_micro.py``). The flat layout also makes the workers' figures add up: with
``WORKER_COUNT`` > 1 the host's main process sets ``SCORING_METRICS_DIR`` and each worker maps
its own file there (``w-<pid>.bin``); whichever worker answers a scrape sums every file, so a
counter never jumps between workers' values. Counters of a worker that exited stay counted
(they must not go down); the gauges (requests in flight, init time) count live workers only.

Each cell has one writer thread: the event loop writes the request, cache and buffer-full
cells, the collector's and the exporter's threads their own, so no update is lost without a lock.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROUTES = ("/score", "/", "/ready", "/status", "/swagger.json", "/metrics", "other")
ROUTE_INDEX = {route: i for i, route in enumerate(ROUTES)}
OTHER_ROUTE = len(ROUTES) - 1
SCORE_ROUTE = 0
# seconds; the +Inf bucket follows
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BUCKETS += (30.0, 60.0)
_NB = len(BUCKETS) + 1
_STATUSES = 500  # 100..599

# cells
IN_FLIGHT = 0
INIT_SECONDS = 1
CACHE_HITS = 2
CACHE_MISSES = 3
RUN_FAILURES = 4
DC_COLLECTED = 5  # records taken into the buffer (loop)
DC_DROPPED_FULL = 6  # buffer full (loop)
DC_UPLOADED = 7  # records written to storage (collector thread)
DC_DROPPED_UPLOAD = 8  # storage refused or unreachable (collector thread)
DC_SKIPPED = 9  # not collectable: binary, or larger than a block (collector thread)
TM_DROPPED = 10  # telemetry buffer full (loop)
TM_EXPORTED = 11  # request items handed to the exporter (telemetry thread)
TM_FAILED = 12  # export failed (telemetry thread)
QUEUE_FULL = 13  # /score refused on arrival: its queue wait foreseen over the limit (loop)
QUEUE_TIMEOUT = 14  # /score withdrawn from the queue at the wait limit (loop)
REFUSED = {"queue_full": QUEUE_FULL, "queue_timeout": QUEUE_TIMEOUT}
_GAUGES = (IN_FLIGHT, INIT_SECONDS)
_REQ = 32
_LAT = _REQ + len(ROUTES) * _STATUSES
_LAT_SUM = _LAT + len(ROUTES) * _NB
_RUN = _LAT_SUM + len(ROUTES)
_RUN_SUM = _RUN + _NB
SIZE = _RUN_SUM + 1
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """This worker's cells; :meth:`render` adds up every worker's."""

    def __init__(self, directory: str | None = None) -> None:
        self._dir = Path(directory) if directory else None
        self._map: mmap.mmap | None = None
        self.cells: Any
        if self._dir is None:  # one worker: a list (its items update 3 times faster)
            self.cells = [0.0] * SIZE
        else:
            self._dir.mkdir(parents=True, exist_ok=True)
            path = self._dir / f"w-{os.getpid()}.bin"
            with open(path, "a+b") as f:  # a reused pid continues the dead worker's counters
                if os.fstat(f.fileno()).st_size < SIZE * 8:
                    f.truncate(SIZE * 8)
                self._map = mmap.mmap(f.fileno(), SIZE * 8)
            self.cells = memoryview(self._map).cast("d")
        for cell in _GAUGES:
            self.cells[cell] = 0.0
        self.cells[INIT_SECONDS] = math.nan

    # -- the request path (event loop) ----------------------------------------------------------

    def request(self, route: int, status: int, seconds: float) -> None:
        c = self.cells
        s = status - 100
        c[_REQ + route * _STATUSES + (s if 0 <= s < _STATUSES else _STATUSES - 1)] += 1.0
        c[_LAT + route * _NB + bisect_left(BUCKETS, seconds)] += 1.0
        c[_LAT_SUM + route] += seconds

    def run(self, seconds: float, failed: bool) -> None:
        c = self.cells
        c[_RUN + bisect_left(BUCKETS, seconds)] += 1.0
        c[_RUN_SUM] += seconds
        if failed:
            c[RUN_FAILURES] += 1.0

    def add(self, cell: int, value: float = 1.0) -> None:
        self.cells[cell] += value

    def set(self, cell: int, value: float) -> None:
        self.cells[cell] = value

    # -- reading --------------------------------------------------------------------------------

    def totals(self) -> array[float]:
        """Every worker's cells added up (gauges: live workers only)."""
        cells = self.cells
        own = array("d", cells) if isinstance(cells, list) else array("d", cells.tobytes())
        if self._dir is None:
            return own
        total = array("d", bytes(SIZE * 8))
        total[INIT_SECONDS] = math.nan
        for path in sorted(self._dir.glob("w-*.bin")):
            cells = own if path.name == f"w-{os.getpid()}.bin" else _read(path)
            if cells is None:
                continue
            live = cells is own or _alive(path)
            for i in range(SIZE):
                v = cells[i]
                if v == 0.0 or math.isnan(v):
                    continue
                if i == INIT_SECONDS:
                    if live:
                        total[i] = v if math.isnan(total[i]) else max(total[i], v)
                elif i in _GAUGES:
                    if live:
                        total[i] += v
                else:
                    total[i] += v
        return total

    def render(self) -> bytes:
        return render(self.totals()).encode()

    def close(self) -> None:
        if self._map is not None:
            self.cells.release()
            self.cells = [0.0] * SIZE
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None


def _read(path: Path) -> array[float] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < SIZE * 8:
        return None
    return array("d", data[: SIZE * 8])


def _alive(path: Path) -> bool:
    try:
        os.kill(int(path.stem[2:]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(int(v)) if v == int(v) and abs(v) < 2**53 else repr(v)


def _family(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _histogram(
    lines: list[str], name: str, counts: Iterable[float], total: float, labels: str = ""
) -> None:
    running = 0.0
    for le, count in zip((*BUCKETS, math.inf), counts, strict=True):
        running += count
        sep = "," if labels else ""
        lines.append(f'{name}_bucket{{{labels}{sep}le="{_num(le)}"}} {_num(running)}')
    brace = f"{{{labels}}}" if labels else ""
    lines.append(f"{name}_sum{brace} {_num(total)}")
    lines.append(f"{name}_count{brace} {_num(running)}")


def render(c: array[float]) -> str:
    lines: list[str] = []
    lines += _family("scoring_requests_total", "counter", "Requests answered, by route and status.")
    for r, route in enumerate(ROUTES):
        base = _REQ + r * _STATUSES
        for s in range(_STATUSES):
            if c[base + s]:
                lines.append(
                    f'scoring_requests_total{{route="{route}",status="{s + 100}"}} '
                    f"{_num(c[base + s])}"
                )
    name = "scoring_request_duration_seconds"
    lines += _family(name, "histogram", "Time from the request's arrival to its answer.")
    for r, route in enumerate(ROUTES):
        counts = c[_LAT + r * _NB : _LAT + (r + 1) * _NB]
        if any(counts):
            _histogram(lines, name, counts, c[_LAT_SUM + r], f'route="{route}"')
    name = "scoring_run_duration_seconds"
    lines += _family(name, "histogram", "Time run() took (schema conversion and rendering too).")
    _histogram(lines, name, c[_RUN : _RUN + _NB], c[_RUN_SUM])
    simple = (
        ("scoring_run_failures_total", "counter", RUN_FAILURES, "run() calls that failed."),
        ("scoring_requests_in_flight", "gauge", IN_FLIGHT, "/score requests being served."),
        ("scoring_cache_hits_total", "counter", CACHE_HITS, "Predictions served from Redis."),
        ("scoring_cache_misses_total", "counter", CACHE_MISSES, "Cache lookups that missed."),
    )
    for metric, kind, cell, text in simple:
        lines += _family(metric, kind, text)
        lines.append(f"{metric} {_num(c[cell])}")
    if not math.isnan(c[INIT_SECONDS]):
        lines += _family("scoring_init_seconds", "gauge", "How long init() took (slowest worker).")
        lines.append(f"scoring_init_seconds {_num(c[INIT_SECONDS])}")
    name = "scoring_requests_refused_total"
    lines += _family(
        name, "counter", "/score requests answered 503 for the queue wait limit, by reason."
    )
    for reason, cell in REFUSED.items():
        lines.append(f'{name}{{reason="{reason}"}} {_num(c[cell])}')
    name = "scoring_data_collection_records_total"
    lines += _family(name, "counter", "Model data collection records, by outcome.")
    lines.append(f'{name}{{outcome="collected"}} {_num(c[DC_COLLECTED])}')
    lines.append(f'{name}{{outcome="uploaded"}} {_num(c[DC_UPLOADED])}')
    name = "scoring_data_collection_dropped_total"
    lines += _family(name, "counter", "Model data collection records dropped, by reason.")
    for reason, cell in (
        ("buffer_full", DC_DROPPED_FULL),
        ("upload_failed", DC_DROPPED_UPLOAD),
        ("not_collectable", DC_SKIPPED),
    ):
        lines.append(f'{name}{{reason="{reason}"}} {_num(c[cell])}')
    name = "scoring_telemetry_items_total"
    lines += _family(name, "counter", "Request telemetry items, by outcome.")
    for outcome, cell in (
        ("exported", TM_EXPORTED),
        ("dropped", TM_DROPPED),
        ("failed", TM_FAILED),
    ):
        lines.append(f'{name}{{outcome="{outcome}"}} {_num(c[cell])}')
    return "\n".join(lines) + "\n"
