"""``python -m scoring``: run the scoring host with uvicorn (httptools, stdlib asyncio loop).

The stdlib loop, not uvloop: with a fast model both give the same throughput here, but uvloop's
batching makes latency bimodal (p99 about twice p50 with 8 keep-alive clients; ``make bench``),
while asyncio keeps p99 within ~1.2x of p50.

Hostile clients are met by :class:`GuardedHttpTools`, uvicorn's httptools protocol with a thin
layer in front of its parser (see :mod:`scoring.guard`): uvicorn has no limit on the request
line, header size or count, no timeout for a request that is being sent, and its only cap,
``limit_concurrency``, still holds every connection open.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Sequence
from typing import Any

from .config import ConfigError, Settings, apply_args, parse_args, unresolved_message
from .logs import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    from .banner import print_banner
    from .guard import GuardedHttpTools, guard_limits, raise_open_files_limit

    raise_open_files_limit()
    args = parse_args(argv)
    apply_args(args, os.environ)  # type: ignore[arg-type]
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"scoring: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        limits = guard_limits(os.environ)
    except ConfigError as exc:
        print(f"scoring: configuration error: {exc}", file=sys.stderr)
        return 2
    if not settings.entry_script.is_file():
        print(f"scoring: entry script not found: {settings.entry_script}", file=sys.stderr)
        return 3
    configure_logging(settings.log_level)
    log = logging.getLogger("scoring")
    print_banner(settings)
    closed = unresolved_message(settings.unresolved_secrets)
    if closed is not None:
        log.error("failing closed: %s; /score and /ready answer 503", closed)
    log.info(
        "scoring host %s:%d, %d worker(s), entry script %s, model %s:%s, auth %s, cache %s, "
        "telemetry %s, data collection %s",
        settings.host,
        settings.port,
        settings.worker_count,
        settings.entry_script,
        settings.model_name,
        settings.model_version,
        "on" if settings.auth_keys else "off",
        f"{settings.cache.host}:{settings.cache.port}" if settings.cache.enabled else "off",
        "on" if settings.telemetry.enabled else "off",
        "on" if settings.data_collection.enabled else "off",
    )
    log.info(
        "limits: request line %d B, header line %d B, %d headers, head %d B; a request head or "
        "body stalled %.0fs is dropped; %d connections at most (listen backlog %d)",
        limits.max_request_line,
        limits.max_field,
        limits.max_headers,
        limits.max_head,
        limits.stall_seconds,
        limits.max_connections,
        limits.backlog,
    )
    import uvicorn

    metrics_dir = _shared_metrics(settings.worker_count)
    http = GuardedHttpTools if importlib.util.find_spec("httptools") else "h11"
    try:
        if settings.worker_count > 1 and settings.preload:
            return _run_preforked(uvicorn, settings, limits, http, metrics_dir)
        _run(uvicorn, settings, limits, http)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _shared_metrics(workers: int) -> str | None:
    """With several workers, a folder where each maps its metrics (scoring.observability.metrics):
    any worker answering /metrics adds them all up. Removed when the host stops."""
    if workers < 2 or os.environ.get("SCORING_METRICS_DIR"):
        return None
    path = tempfile.mkdtemp(prefix="scoring-metrics-")
    os.environ["SCORING_METRICS_DIR"] = path  # the workers inherit it
    return path


def _options(settings: Settings, limits: Any, http: Any) -> dict[str, Any]:
    """uvicorn's options, the same in every mode."""
    return {
        "loop": "asyncio",
        "http": http,
        "lifespan": "on",
        "ws": "none",  # no websockets: skips importing them at start
        "access_log": False,
        "log_config": None,
        "log_level": settings.log_level.lower(),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "backlog": limits.backlog,
        "server_header": False,
    }


def _run_preforked(
    uvicorn: Any, settings: Settings, limits: Any, http: Any, metrics_dir: str | None
) -> int:
    """init() once here, then the workers forked from this process (:mod:`scoring.prefork`)."""
    from .prefork import Supervisor, listen, preload, restart_without_preload

    settings = dataclasses.replace(settings, metrics_dir=metrics_dir)
    sock = listen(settings, limits.backlog)
    try:
        loaded = preload(settings)
    except BaseException:
        logging.getLogger("scoring").critical(
            "cannot start the entry script %s:\n%s", settings.entry_script, traceback.format_exc()
        )
        return 3
    if loaded is None:
        sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop("SCORING_METRICS_DIR", None)
        restart_without_preload()
    script, seconds = loaded

    def serve(sock: Any) -> None:
        from .app import ScoringApp
        from .service import ScoringService

        service = ScoringService(settings, script=script, preloaded=seconds)
        config = uvicorn.Config(ScoringApp(settings, service), **_options(settings, limits, http))
        uvicorn.Server(config).run(sockets=[sock])

    return Supervisor(settings, sock, serve).run()


def _run(uvicorn: Any, settings: Settings, limits: Any, http: Any) -> None:
    uvicorn.run(
        "scoring.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.worker_count,
        **_options(settings, limits, http),
    )
