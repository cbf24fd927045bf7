"""Settings of the scoring host, read from command-line flags and environment variables.

The flags and variables are those of Microsoft's ``azmlinfsrv`` (``--entry_script``,
``--model_dir``, ``--port``, ``--worker_count``, ``AZUREML_ENTRY_SCRIPT``, ``AZUREML_MODEL_DIR``,
``SCORING_TIMEOUT_MS``, ``WORKER_COUNT``, its port variable ``SERVER_PORT``) plus our own.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 5001
DEFAULT_HOST = "0.0.0.0"
DEFAULT_TIMEOUT_MS = 60_000
DEFAULT_INLINE_MAX_MS = 1
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
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
    inline_max_ms: int = DEFAULT_INLINE_MAX_MS
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
    cache: CacheSettings = field(default_factory=CacheSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        entry = env.get("AZUREML_ENTRY_SCRIPT")
        if not entry:
            raise ConfigError(
                "no entry script: pass --entry_script PATH or set AZUREML_ENTRY_SCRIPT"
            )
        entry_path = Path(entry)
        if not entry_path.is_absolute():
            entry_path = Path(env.get("AML_APP_ROOT", os.getcwd())) / entry_path
        model_dir_raw = env.get("AZUREML_MODEL_DIR")
        model_dir = Path(model_dir_raw) if model_dir_raw else None
        name, version = model_identity(env, model_dir)
        port_raw = env.get("AZUREML_SERVER_PORT") or env.get("SERVER_PORT")
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
            inline_max_ms=_int(env, "SCORING_INLINE_MAX_MS", DEFAULT_INLINE_MAX_MS, 0),
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
            cache=CacheSettings.from_env(env),
        )


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
    args = parser.parse_args(argv)
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port}: must be within 1..65535")
    if args.worker_count is not None and args.worker_count < 1:
        parser.error(f"--worker_count {args.worker_count}: must be >= 1")
    return args


def apply_args(args: argparse.Namespace, env: dict[str, str]) -> None:
    """Write the flags into the environment, as azmlinfsrv does, so worker processes see them."""
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
