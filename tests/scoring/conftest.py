"""Fixtures for the data-plane tests: real processes on loopback ports.

* ``start_host``: ``python -m scoring`` as a subprocess, waited on until ``/ready``.
* ``redis_server``: a real ``redis-server`` (apt ``redis-server``) on a free loopback port.
* ``azurite``: the Azure Storage emulator's blob service (npm ``azurite``, node_modules/.bin).

A missing ``redis-server`` or Azurite fails the test with the install command: these are real
parts of the test suite, not optional extras.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _scoring_support import (
    REPO,
    SAMPLE_SCORE,
    Azurite,
    Host,
    HostFactory,
    RedisServer,
    _launch,
    free_port,
    wait_port,
)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scoring.sample_model.train import train

    root = tmp_path_factory.mktemp("models")
    train(root)
    return root


@pytest.fixture
def start_host(tmp_path: Path) -> Iterator[HostFactory]:
    hosts: list[Host] = []

    def start(
        entry_script: Path = SAMPLE_SCORE,
        model_dir: Path | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
        args: list[str] | None = None,
    ) -> Host:
        host = _launch(entry_script, model_dir, env, tmp_path, wait, args)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.stop()


@pytest.fixture(scope="module")
def sample_host(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """The sample model served once for a whole module (the read-only contract tests)."""
    host = _launch(SAMPLE_SCORE, model_dir, None, tmp_path_factory.mktemp("sample"), True)
    yield host
    host.stop()


# -- Redis ------------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.kill()


# -- Azurite ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    exe = REPO / "node_modules" / ".bin" / "azurite-blob"
    if not exe.exists():
        pytest.fail(
            f"Azurite is not installed ({exe} missing): run `npm ci` in {REPO}", pytrace=False
        )
    port = free_port()
    proc = subprocess.Popen(
        [
            str(exe),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    try:
        wait_port(port, 30, proc)
        yield Azurite(port)
    finally:
        proc.kill()  # in-memory emulator: nothing to flush
        proc.wait(10)
