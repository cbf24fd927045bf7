"""The start-up lines azmlinfsrv prints, in its format (its ``amlserver.py``, version 1.5.1:
``print_server_info``, ``print_server_settings``, ``print_routes``), on standard output.

Operators and their log queries know these lines (``Worker Count: 2``, ``Health Port: 5001``,
``CORS for the specified origins: Enabling CORS for ...``); the host's own settings follow
under the same heading, in the same ``Name: value`` form.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .config import Settings


def settings_lines(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """azmlinfsrv's "Server Settings" block with this host's values ("None": unset, as its
    ``str(os.getenv(...))`` prints), then this host's own."""
    from . import __version__

    health = settings.health_port or settings.port
    origins = env.get("AML_CORS_ORIGINS")
    reference = [
        ("Entry Script Name", str(settings.entry_script)),
        ("Model Directory", str(settings.model_dir) if settings.model_dir else "None"),
        ("Config File", str(env.get("AZUREML_CONFIG_FILE"))),
        ("Worker Count", str(settings.worker_count)),
        ("Worker Timeout (seconds)", str(env.get("WORKER_TIMEOUT", "300"))),
        ("Server Port", str(settings.port)),
        ("Health Port", str(health)),
        ("Application Insights Enabled", "true" if settings.telemetry.enabled else "false"),
        (
            "Application Insights Key",
            "AppInsights key provided" if env.get("AML_APP_INSIGHTS_KEY") else "None",
        ),
        ("Inferencing HTTP server version", str(settings.server_version)),
        (
            "CORS for the specified origins",
            f"Enabling CORS for {origins}" if origins is not None else "None",
        ),
        ("Create dedicated endpoint for health", str(env.get("SEPERATE_HEALTH_ENDPOINT"))),
    ]
    own = [
        ("Max Concurrent Requests Per Worker", str(settings.run_threads)),
        ("Max Queue Wait (ms)", str(settings.max_queue_wait_ms or "None")),
        ("Preload (init() once, workers forked)", str(settings.preload).lower()),
        ("Scoring Timeout (ms)", str(settings.timeout_ms)),
        ("Server", f"scoring/{__version__}"),
    ]
    return [f"{name}: {value}" for name, value in (*reference, *own)]


def print_banner(settings: Settings, env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    from . import __version__

    health = settings.health_port or settings.port
    lines = [
        "",
        f"Azure ML Inferencing HTTP server (scoring/{__version__}, azmlinfsrv-compatible)",
        "",
        "",
        "Server Settings",
        "---------------",
        *settings_lines(settings, env),
        "",
        "",
        "Server Routes",
        "---------------",
        f"Liveness Probe: GET   127.0.0.1:{health}/",
        f"Score:          POST  127.0.0.1:{settings.port}/score",
        "",
    ]
    print("\n".join(lines), flush=True)
