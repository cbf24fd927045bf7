"""The host under overload and at scale (issue 32): ``python bench/overload.py``.

1. Overload: a ``run()`` of 20 ms (``model20ms.py``), one worker, ``wrk`` with 4, 64 and 256
   connections (its 2 s client timeout), with the queue wait limit off (what the host did
   before), at its default (1 call at a time, 500 ms) and with a raised concurrency (4 run
   threads). Per row: requests/s, answers 200 and 503 a second, client timeouts and other socket
   errors, the latency of the admitted (200) and refused (503) requests from the host's access
   log, the slowest ``/ready`` probed during the run, and the host's memory (USS) before and after.
2. Memory: a 400 MB model (``model400mb.py``) with 1, 2 and 4 workers, each worker running
   ``init()`` (``SCORING_PRELOAD=false``: before) or forked after one ``init()`` (after): the
   process tree's PSS, USS and RSS (psutil), cold start and ``init()`` runs.
3. Throughput of the sample model with 1 and 2 workers (``wrk -c8``, interleaved rounds).

Writes ``bench/results/overload-<time>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil
from run import BENCH, REPO, SCORE_PY, _ms, free_port, post_ok

SCENARIOS = {
    "no limit (before)": {"SCORING_MAX_QUEUE_WAIT_MS": "0"},
    "default: 1 run, 500 ms": {},
    "raised: 4 runs, 500 ms": {"SCORING_RUN_THREADS": "4"},
}
_ACCESS = re.compile(r"azmlinfsrv - POST /score (\d{3}) ([\d.]+)ms")


class Host:
    def __init__(self, entry: Path, env: dict[str, str], workers: int, work: Path) -> None:
        self.port = free_port()
        self.log_path = work / f"host-{self.port}.log"
        cmd = [sys.executable, "-m", "scoring", "--entry_script", str(entry), "--host"]
        cmd += ["127.0.0.1", "--port", str(self.port), "--worker_count", str(workers)]
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SCORING_", "REDIS_"))}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                env={**base, "PYTHONPATH": str(REPO), **env},
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.t0 = time.perf_counter()

    def wait_workers(self, workers: int) -> float:
        """Seconds from spawn until every worker said it is ready."""
        deadline = time.perf_counter() + 300
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"host exited:\n{self.log()}")
            if self.log().count(" ready (model ") >= workers and post_ok(self.port):
                return time.perf_counter() - self.t0
            time.sleep(0.01)
        raise TimeoutError(self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def memory(self) -> dict[str, float]:
        main = psutil.Process(self.proc.pid)
        infos = [p.memory_full_info() for p in [main, *main.children(recursive=True)]]
        mb = 2**20
        return {
            "processes": len(infos),
            "pss_mb": round(sum(i.pss for i in infos) / mb, 1),
            "uss_mb": round(sum(i.uss for i in infos) / mb, 1),
            "rss_mb": round(sum(i.rss for i in infos) / mb, 1),
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def wrk(port: int, seconds: int, connections: int) -> dict[str, float]:
    load = [f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "2s"]
    out = subprocess.run(
        ["wrk", "-t1", *load, "-s", str(BENCH / "post.lua"), f"http://127.0.0.1:{port}/score"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        found = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"wrk_p{pct}_ms"] = _ms(found.group(1)) if found else float("nan")
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = [int(n) for n in sock.groups()] if sock else [0, 0, 0, 0]
    result["client_timeouts"] = errors[3]
    result["socket_errors"] = sum(errors[:3])
    result["requests"] = requests
    return result


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


class Probe(threading.Thread):
    """GET /ready every 0.2 s on a fresh connection (the slowest answer, failures), and the
    host's memory (USS) every second."""

    def __init__(self, host: Host) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, host.port
        self.stop, self.slowest, self.failures = threading.Event(), 0.0, 0
        self.uss: list[float] = []

    def run(self) -> None:
        ticks = 0
        while not self.stop.wait(0.2):
            ticks += 1
            if ticks % 5 == 0:
                self.uss.append(self.host.memory()["uss_mb"])
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=5):
                    pass
            except OSError:
                self.failures += 1
            self.slowest = max(self.slowest, time.perf_counter() - t0)


def overload_row(host: Host, seconds: int, connections: int) -> dict[str, float]:
    offset = len(host.log())
    before = host.memory()
    probe = Probe(host)
    probe.start()
    result = wrk(host.port, seconds, connections)
    probe.stop.set()
    probe.join()
    after = host.memory()
    time.sleep(0.5)  # the access log is written every 0.2 s
    lines = _ACCESS.findall(host.log()[offset:])
    ok = [float(ms) for status, ms in lines if status == "200"]
    refused = [float(ms) for status, ms in lines if status == "503"]
    return {
        **result,
        "ok_per_s": round(len(ok) / seconds, 1),
        "refused_per_s": round(len(refused) / seconds, 1),
        "admitted_p50_ms": _pct(ok, 0.5),
        "admitted_p99_ms": _pct(ok, 0.99),
        "refused_p50_ms": _pct(refused, 0.5),
        "refused_p99_ms": _pct(refused, 0.99),
        "ready_slowest_ms": round(probe.slowest * 1000, 1),
        "ready_failures": probe.failures,
        "uss_before_mb": before["uss_mb"],
        "uss_during_mb": probe.uss,  # every second
        "uss_after_mb": after["uss_mb"],
    }


def overload(work: Path, seconds: int) -> dict[str, dict[str, dict[str, float]]]:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, env in SCENARIOS.items():
        host = Host(BENCH / "model20ms.py", env, 1, work)
        try:
            host.wait_workers(1)
            table[name] = {}
            for connections in (4, 64, 256):
                row = overload_row(host, seconds, connections)
                table[name][f"c{connections}"] = row
                print(f"{name:24} c{connections:<4} {json.dumps(row)}", flush=True)
        finally:
            host.stop()
    return table


def memory(work: Path) -> dict[str, dict[str, dict[str, float]]]:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for mode, preload in (("before: init() in each worker", "false"), ("after: forked", "true")):
        table[mode] = {}
        for workers in (1, 2, 4):
            host = Host(BENCH / "model400mb.py", {"SCORING_PRELOAD": preload}, workers, work)
            try:
                cold = host.wait_workers(workers)
                for _ in range(20):
                    post_ok(host.port)
                row = {**host.memory(), "cold_start_s": round(cold, 2)}
                row["init_runs"] = max(
                    host.log().count("init() completed in"), 1 if preload == "true" else 0
                )
            finally:
                host.stop()
            table[mode][f"{workers} worker(s)"] = row
            print(f"{mode:30} {workers} {json.dumps(row)}", flush=True)
    return table


def throughput(work: Path, seconds: int, rounds: int) -> dict[str, dict[str, float]]:
    sys.path.insert(0, str(REPO))
    from scoring.sample_model.train import train

    models = work / "models"
    train(models)
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for _ in range(rounds):
        for workers in runs:
            env = {"AZUREML_MODEL_DIR": str(models)}
            host = Host(SCORE_PY, env, workers, work)
            try:
                host.wait_workers(workers)
                wrk(host.port, 2, 8)  # warm up
                runs[workers].append(wrk(host.port, seconds, 8))
            finally:
                host.stop()
    return {
        f"{w} worker(s)": {
            "rps": round(statistics.median(r["rps"] for r in rs), 1),
            "p99_ms": round(statistics.median(r["wrk_p99_ms"] for r in rs), 2),
            "rps_rounds": [r["rps"] for r in rs],
        }
        for w, rs in runs.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds")
    parser.add_argument("--only", choices=("overload", "memory", "throughput"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scoring-overload-"))
    report: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "duration_s": args.duration,
    }
    if args.only in (None, "overload"):
        report["overload_20ms_run_1_worker"] = overload(work, args.duration)
    if args.only in (None, "memory"):
        report["memory_400mb_model"] = memory(work)
    if args.only in (None, "throughput"):
        report["throughput_sample_model_c8"] = throughput(work, args.duration, args.rounds)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = BENCH / "results" / f"overload-{stamp}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"when": stamp, **report}, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
