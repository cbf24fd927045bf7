"""Settings of the scoring host, read from command-line flags and environment variables.

The flags and variables are those of Microsoft's ``azmlinfsrv`` (``--entry_script``,
``--model_dir``, ``--port``, ``--worker_count``, ``AZUREML_ENTRY_SCRIPT``, ``AZUREML_MODEL_DIR``,
``SCORING_TIMEOUT_MS``, ``WORKER_COUNT``, ``AML_APP_ROOT``, ``AZUREML_SOURCE_DIRECTORY``,
``AML_CORS_ORIGINS``, ``SERVICE_PATH_PREFIX``, its ``config.json``...) plus our own. README.md's
compatibility table lists each and what this host does with it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .observability.settings import DataCollectionSettings, TelemetrySettings

DEFAULT_PORT = 5001
DEFAULT_HOST = "0.0.0.0"
DEFAULT_TIMEOUT_MS = 60_000
DEFAULT_MAX_STUCK_RUNS = 2  # run() threads stuck in native code before the worker recycles
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_QUEUE_WAIT_MS = 500  # v1's max_request_wait_time
MAX_QUEUE_WAIT_MS = 3_600_000
# What App Service (and Container Apps, Functions) leave in a setting whose Key Vault or App
# Configuration reference did not resolve: the reference itself, a guessable string.
_UNRESOLVED = re.compile(r"^\s*@Microsoft\.(KeyVault|AppConfiguration)\s*\(", re.IGNORECASE)
# The settings that hold secrets: an unresolved reference in any of them fails the host closed.
SECRET_SETTINGS = (
    "SCORING_AUTH_KEYS",
    "REDIS_PASSWORD",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "DATA_COLLECTION_CONNECTION_STRING",
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting has an invalid value; the message names the setting and the fix."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected true or false")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be >= {minimum}")
    return value


@dataclass(frozen=True)
class CacheSettings:
    host: str | None = None
    port: int = 6380
    ssl: bool = True
    password: str | None = None
    use_entra_id: bool = False
    username: str | None = None
    client_id: str | None = None
    ttl_seconds: int = 300
    timeout_ms: int = 100
    connect_timeout_ms: int = 500
    retry_seconds: float = 5.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CacheSettings:
        host = (env.get("REDIS_HOST") or "").strip() or None
        use_entra = _bool(env, "REDIS_USE_ENTRA_ID", False)
        username = env.get("REDIS_USERNAME") or None
        if host and use_entra and not username:
            raise ConfigError(
                "REDIS_USE_ENTRA_ID=true needs REDIS_USERNAME: the object (principal) id of the "
                "identity that has a Redis data access policy assignment"
            )
        return cls(
            host=host,
            port=_int(env, "REDIS_PORT", 6380, 1),
            ssl=_bool(env, "REDIS_SSL", True),
            password=env.get("REDIS_PASSWORD") or None,
            use_entra_id=use_entra,
            username=username,
            client_id=env.get("AZURE_CLIENT_ID") or None,
            ttl_seconds=_int(env, "CACHE_TTL_SECONDS", 300, 1),
            timeout_ms=_int(env, "REDIS_TIMEOUT_MS", 100, 1),
            connect_timeout_ms=_int(env, "REDIS_CONNECT_TIMEOUT_MS", 500, 1),
            retry_seconds=_int(env, "REDIS_RETRY_MS", 5000, 0) / 1000.0,
        )


@dataclass(frozen=True)
class Settings:
    entry_script: Path
    model_dir: Path | None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    worker_count: int = 1
    run_threads: int = 1
    max_queue_wait_ms: int = DEFAULT_MAX_QUEUE_WAIT_MS  # 0: no limit
    preload: bool = True  # init() once, then fork the workers (SCORING_PRELOAD)
    unresolved_secrets: tuple[str, ...] = ()  # settings holding an unresolved reference
    max_stuck_runs: int = DEFAULT_MAX_STUCK_RUNS
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    keep_alive_seconds: int = 75
    auth_keys: tuple[str, ...] = ()
    model_name: str = "model"
    model_version: str = "0"
    access_log: bool = True
    log_level: str = "INFO"
    service_name: str = "ML service"
    service_version: str = "1.0"
    service_path_prefix: str = ""
    app_root: Path = field(default_factory=Path.cwd)
    cors_origins: tuple[str, ...] = ()
    health_port: int | None = None
    server_version: str | None = None  # the x-ms-server-version header; None: not sent
    cache: CacheSettings = field(default_factory=CacheSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    data_collection: DataCollectionSettings = field(default_factory=DataCollectionSettings)
    metrics_dir: str | None = None  # SCORING_METRICS_DIR: workers' shared metrics (main() sets it)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        entry = env.get("AZUREML_ENTRY_SCRIPT")
        if not entry and Path(env.get("AML_APP_ROOT") or os.getcwd(), "main.py").is_file():
            entry = "main.py"  # azmlinfsrv imports `main` from the app root without one
        if not entry:
            raise ConfigError(
                "no entry script: pass --entry_script PATH or --config_file PATH, set "
                "AZUREML_ENTRY_SCRIPT, or put a main.py in AML_APP_ROOT"
            )
        entry_path = Path(entry)
        if not entry_path.is_absolute():
            entry_path = Path(env.get("AML_APP_ROOT", os.getcwd())) / entry_path
        model_dir_raw = env.get("AZUREML_MODEL_DIR")
        model_dir = Path(model_dir_raw) if model_dir_raw else None
        name, version = model_identity(env, model_dir)
        # azmlinfsrv ignores SERVER_PORT in the environment (it overwrites it with the port in use)
        port_raw = env.get("AZUREML_SERVER_PORT")
        health_raw = env.get("SCORING_HEALTH_PORT")
        keys = tuple(
            k.strip() for k in (env.get("SCORING_AUTH_KEYS") or "").split(",") if k.strip()
        )
        return cls(
            entry_script=entry_path,
            model_dir=model_dir,
            host=env.get("SCORING_HOST", DEFAULT_HOST),
            port=_int({"port": port_raw} if port_raw else {}, "port", DEFAULT_PORT, 1),
            worker_count=_int(env, "WORKER_COUNT", 1, 1),
            run_threads=_int(env, "SCORING_RUN_THREADS", 1, 1),
            max_queue_wait_ms=_queue_wait(env),
            # azmlinfsrv's WORKER_PRELOAD (gunicorn --preload) counts when ours is not set
            preload=_bool(env, "SCORING_PRELOAD", _bool(env, "WORKER_PRELOAD", True)),
            unresolved_secrets=unresolved_secrets(env),
            max_stuck_runs=_int(env, "SCORING_MAX_STUCK_RUNS", DEFAULT_MAX_STUCK_RUNS, 0),
            timeout_ms=_int(env, "SCORING_TIMEOUT_MS", DEFAULT_TIMEOUT_MS, 1),
            max_body_bytes=_int(env, "SCORING_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1),
            keep_alive_seconds=_int(env, "SCORING_KEEP_ALIVE_SECONDS", 75, 1),
            auth_keys=keys,
            model_name=name,
            model_version=version,
            access_log=_bool(env, "SCORING_ACCESS_LOG", True),
            log_level=(env.get("AZUREML_LOG_LEVEL") or "INFO").upper(),
            service_name=env.get("SERVICE_NAME", "ML service"),
            service_version=env.get("SERVICE_VERSION", "1.0"),
            service_path_prefix=_prefix(env.get("SERVICE_PATH_PREFIX", "")),
            app_root=Path(env.get("AML_APP_ROOT") or os.getcwd()),
            cors_origins=tuple(
                o.strip() for o in (env.get("AML_CORS_ORIGINS") or "").split(",") if o.strip()
            ),
            health_port=_int({"p": health_raw}, "p", 0, 1) if health_raw else None,
            server_version=_server_version(env),
            cache=CacheSettings.from_env(env),
            telemetry=TelemetrySettings.from_env(env),
            data_collection=DataCollectionSettings.from_env(env),
            metrics_dir=(env.get("SCORING_METRICS_DIR") or "").strip() or None,
        )


def _queue_wait(env: Mapping[str, str]) -> int:
    value = _int(env, "SCORING_MAX_QUEUE_WAIT_MS", DEFAULT_MAX_QUEUE_WAIT_MS, 0)
    if value > MAX_QUEUE_WAIT_MS:
        raise ConfigError(
            f"SCORING_MAX_QUEUE_WAIT_MS={value}: must be <= {MAX_QUEUE_WAIT_MS} (0: no limit)"
        )
    return value


def unresolved_message(names: tuple[str, ...]) -> str | None:
    """The answer of a host failing closed on unresolved secret references (None: it is not)."""
    if not names:
        return None
    return (
        f"{', '.join(names)} holds an unresolved Key Vault reference (@Microsoft.KeyVault(...)): "
        "the platform could not read the secret, so this host serves no scoring until it can "
        "(check the app's managed identity, its access to the vault and the secret's name)"
    )


def unresolved_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    """The secret settings whose value is an unresolved ``@Microsoft.KeyVault(...)`` (or App
    Configuration) reference: the platform passes the reference itself when it cannot resolve
    it (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references,
    Troubleshooting). Any comma-separated part counts (``SCORING_AUTH_KEYS``)."""
    found = []
    for name in SECRET_SETTINGS:
        raw = env.get(name) or ""
        if any(_UNRESOLVED.match(part) for part in raw.split(",")):
            found.append(name)
    return tuple(found)


def _prefix(raw: str) -> str:
    """``SERVICE_PATH_PREFIX`` as azmlinfsrv writes it into the document: ``/a/b`` or empty."""
    return f"/{raw.strip('/')}" if raw.strip("/") else ""


def _server_version(env: Mapping[str, str]) -> str | None:
    """The x-ms-server-version header, as azmlinfsrv: ``HTTP_X_MS_SERVER_VERSION`` (default ours),
    unless ``SERVER_VERSION_LOG_RESPONSE_ENABLED`` is set to anything but true."""
    enabled = env.get("SERVER_VERSION_LOG_RESPONSE_ENABLED")
    if enabled is not None and enabled.lower() != "true":
        return None
    from . import __version__

    return env.get("HTTP_X_MS_SERVER_VERSION") or f"scoring/{__version__}"


_VERSION_RE = re.compile(r"^\d+$")


def model_identity(env: Mapping[str, str], model_dir: Path | None) -> tuple[str, str]:
    """Model name and version for the cache key.

    ``MODEL_NAME`` / ``MODEL_VERSION`` win. Otherwise the Azure ML layout gives them: a model
    dir that is ``.../<name>/<version>`` or that holds exactly one ``<name>/<version>``. Failing
    both, the version is a fingerprint of the model files (names, sizes, mtimes), so a changed
    model never reuses cached predictions.
    """
    name = env.get("MODEL_NAME") or None
    version = env.get("MODEL_VERSION") or None
    if name and version:
        return name, version
    guess_name, guess_version = None, None
    if model_dir is not None and model_dir.is_dir():
        if _VERSION_RE.match(model_dir.name):
            guess_name, guess_version = model_dir.parent.name, model_dir.name
        else:
            subdirs = [p for p in model_dir.iterdir() if p.is_dir()]
            if len(subdirs) == 1:
                versions = [p for p in subdirs[0].iterdir() if p.is_dir()]
                if len(versions) == 1 and _VERSION_RE.match(versions[0].name):
                    guess_name, guess_version = subdirs[0].name, versions[0].name
        if guess_version is None:
            guess_version = "fp-" + _fingerprint(model_dir)
    return name or guess_name or "model", version or guess_version or "0"


def _fingerprint(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scoring",
        description="Serve an Azure ML entry script (init()/run()) over HTTP.",
    )
    parser.add_argument("--entry_script", help="path of the entry script (AZUREML_ENTRY_SCRIPT)")
    parser.add_argument("--model_dir", help="model directory (AZUREML_MODEL_DIR)")
    parser.add_argument("--port", type=int, help=f"port (AZUREML_SERVER_PORT; {DEFAULT_PORT})")
    parser.add_argument("--worker_count", type=int, help="worker processes (WORKER_COUNT; 1)")
    parser.add_argument("--host", help=f"interface to bind (SCORING_HOST; {DEFAULT_HOST})")
    parser.add_argument(
        "--health_port", type=int, help="a second listener for probes (HEALTH_PORT)"
    )
    parser.add_argument(
        "--access_control_allow_origins", help="CORS origins, comma-separated (AML_CORS_ORIGINS)"
    )
    parser.add_argument(
        "--appinsights_instrumentation_key",
        help="accepted for azmlinfsrv compatibility (AML_APP_INSIGHTS_KEY); not used",
    )
    parser.add_argument("--config_file", help="azmlinfsrv's config.json (AZUREML_CONFIG_FILE)")
    parser.add_argument("--rest", action="store_true", help=argparse.SUPPRESS)  # azmlinfsrv's
    args = parser.parse_args(argv)
    for flag in ("port", "health_port"):
        value = getattr(args, flag)
        if value is not None and not 1 <= value <= 65535:
            parser.error(f"--{flag} {value}: must be within 1..65535")
    if args.worker_count is not None and args.worker_count < 1:
        parser.error(f"--worker_count {args.worker_count}: must be >= 1")
    return args


# The settings azmlinfsrv reads from its config.json (keys: the variables' names).
CONFIG_FILE_KEYS = (
    "AML_APP_ROOT",
    "AZUREML_SOURCE_DIRECTORY",
    "AZUREML_ENTRY_SCRIPT",
    "SERVICE_NAME",
    "WORKSPACE_NAME",
    "SERVICE_PATH_PREFIX",
    "SERVICE_VERSION",
    "SCORING_TIMEOUT_MS",
    "AZUREML_LOG_LEVEL",
    "AML_APP_INSIGHTS_ENABLED",
    "AML_APP_INSIGHTS_KEY",
    "AML_MODEL_DC_STORAGE_ENABLED",
    "APP_INSIGHTS_LOG_RESPONSE_ENABLED",
    "AML_CORS_ORIGINS",
    "AZUREML_MODEL_DIR",
    "HOSTNAME",
    "AZUREML_DEBUG_PORT",
)


def _config_file(env: Mapping[str, str]) -> Path | None:
    """azmlinfsrv's lookup: ``AZUREML_CONFIG_FILE``, else ``config.json`` in ``AML_APP_ROOT``,
    else next to the entry script; an empty file does not count."""
    candidates = [env.get("AZUREML_CONFIG_FILE")]
    candidates.append(os.path.join(env.get("AML_APP_ROOT") or os.getcwd(), "config.json"))
    if env.get("AZUREML_ENTRY_SCRIPT"):
        entry_dir = os.path.dirname(os.path.abspath(env["AZUREML_ENTRY_SCRIPT"]))
        candidates.append(os.path.join(entry_dir, "config.json"))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.path.getsize(candidate):
            return Path(candidate)
    return None


def load_config_file(env: dict[str, str]) -> Path | None:
    """Settings from azmlinfsrv's config.json, under those from the environment (as azmlinfsrv
    ranks them)."""
    path = _config_file(env)
    if path is None:
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path}: expected a JSON object")
    for key, value in values.items():
        if key in CONFIG_FILE_KEYS and value is not None:
            env.setdefault(key, value if isinstance(value, str) else json.dumps(value))
    return path


def apply_args(args: argparse.Namespace, env: dict[str, str]) -> None:
    """Write the flags into the environment, as azmlinfsrv does, so worker processes see them."""
    env.setdefault("AML_APP_ROOT", os.getcwd())
    if args.config_file:
        env["AZUREML_CONFIG_FILE"] = os.path.realpath(args.config_file)
    if args.access_control_allow_origins is not None:
        env["AML_CORS_ORIGINS"] = args.access_control_allow_origins
    if args.appinsights_instrumentation_key is not None:
        env["AML_APP_INSIGHTS_ENABLED"] = "true"
        env["AML_APP_INSIGHTS_KEY"] = args.appinsights_instrumentation_key
    if args.health_port is not None:
        env["SCORING_HEALTH_PORT"] = str(args.health_port)
    elif (env.get("SEPERATE_HEALTH_ENDPOINT") or "").lower() == "true":  # azmlinfsrv's spelling
        env.setdefault("SCORING_HEALTH_PORT", env.get("HEALTH_PORT") or "5000")
    if args.entry_script:
        env["AZUREML_ENTRY_SCRIPT"] = os.path.realpath(args.entry_script)
    if args.model_dir:
        env["AZUREML_MODEL_DIR"] = os.path.realpath(args.model_dir)
    if args.port is not None:
        env["AZUREML_SERVER_PORT"] = str(args.port)
    if args.worker_count is not None:
        env["WORKER_COUNT"] = str(args.worker_count)
    if args.host:
        env["SCORING_HOST"] = args.host
    try:
        load_config_file(env)
    except ConfigError as exc:
        raise SystemExit(f"scoring: configuration error: {exc}") from None
    # the port in use, for scripts that read it (azmlinfsrv overwrites SERVER_PORT the same way)
    env["SERVER_PORT"] = env.get("AZUREML_SERVER_PORT") or str(DEFAULT_PORT)
