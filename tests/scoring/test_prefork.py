"""One copy of the model for all workers: init() runs once, then the workers are forked from
the process that holds it (SCORING_PRELOAD, default true); opting out, and the automatic
opt-out of a script whose init() starts threads."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
from _scoring_support import SCRIPTS, Host, HostFactory

BIG = SCRIPTS / "big_model.py"
MODEL_MB = 400  # the figure: 4 workers within 1.25x of one


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"INIT_LOG": str(tmp_path / "init.log"), "BIG_MODEL_MB": str(MODEL_MB), **extra}


def _inits(tmp_path: Path) -> list[int]:
    return [int(p) for p in (tmp_path / "init.log").read_text().split()]


def _workers(host: Host) -> list[psutil.Process]:
    main = psutil.Process(host.proc.pid)
    return [c for c in main.children() if c.status() != psutil.STATUS_ZOMBIE]


def _pss_mb(host: Host) -> float:
    main = psutil.Process(host.proc.pid)
    return sum(p.memory_full_info().pss for p in [main, *main.children()]) / 2**20


def test_init_runs_once_and_the_workers_share_the_model(
    start_host: HostFactory, tmp_path: Path
) -> None:
    (tmp_path / "1").mkdir()
    one = start_host(BIG, env=_env(tmp_path / "1"), args=["--worker_count", "1"])
    four = start_host(BIG, env=_env(tmp_path), args=["--worker_count", "4"])
    assert _inits(tmp_path) == [four.proc.pid]  # one init(), in the main process
    pids = {four.client.post("/score", json={}).json()["pid"] for _ in range(20)}
    workers = _workers(four)
    assert len(workers) == 4 and pids <= {w.pid for w in workers}
    for worker in workers:  # what a worker holds alone: no copy of the model
        assert worker.memory_full_info().uss / 2**20 < MODEL_MB / 4
    assert one.client.post("/score", json={}).status_code == 200
    assert _pss_mb(four) <= 1.25 * _pss_mb(one)


def test_a_worker_that_dies_is_forked_again_without_init(
    start_host: HostFactory, tmp_path: Path
) -> None:
    host = start_host(BIG, env=_env(tmp_path, BIG_MODEL_MB="8"), args=["--worker_count", "2"])
    victim = _workers(host)[0].pid
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = {w.pid for w in _workers(host)}
        if len(pids) == 2 and victim not in pids:
            break
        time.sleep(0.1)
    assert len(pids) == 2 and victim not in pids
    assert all(host.client.post("/score", json={}).status_code == 200 for _ in range(10))
    assert _inits(tmp_path) == [host.proc.pid]
    assert f"worker {victim} exited (signal SIGKILL)" in host.log()


def test_opting_out_runs_init_in_each_worker(start_host: HostFactory, tmp_path: Path) -> None:
    env = _env(tmp_path, BIG_MODEL_MB="8", SCORING_PRELOAD="false")
    host = start_host(BIG, env=env, args=["--worker_count", "2"])
    deadline = time.monotonic() + 20
    while len(_inits(tmp_path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert host.proc.pid not in _inits(tmp_path) and len(_inits(tmp_path)) == 2


def test_a_script_whose_init_starts_threads_is_not_forked(
    start_host: HostFactory, tmp_path: Path
) -> None:
    env = _env(tmp_path, BIG_MODEL_MB="8", INIT_THREAD="true")
    host = start_host(BIG, env=env, args=["--worker_count", "2"])
    deadline = time.monotonic() + 20
    while len(_inits(tmp_path)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    inits = _inits(tmp_path)
    assert inits[0] == host.proc.pid and len(inits) == 3  # then once in each spawned worker
    assert "init() started 1 thread(s) (poller)" in host.log()
    assert host.client.post("/score", json={}).status_code == 200
