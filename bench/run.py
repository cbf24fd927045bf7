"""Benchmark: this scoring host vs Microsoft's azmlinfsrv vs a bare constant on our stack.

    python bench/run.py [--duration 10] [--connections 8] [--cold-runs 5] [--rounds 3]

Side by side in one run, on loopback, one worker each (azmlinfsrv: one gunicorn sync worker;
ours: one process, one event loop and one run() thread), the same sample model and score.py,
``wrk -t1 -c8``. The servers are measured in interleaved rounds and each figure is the median,
so drift on a shared machine falls on all of them alike.
Cold start = process start to the first 200 from POST /score with the seed payload. It is also
split: the entry script's own import + init() + first run() without any server (timed in each
server's venv) and what the server adds to it.
Both servers also serve a run() that costs next to nothing (bench/trivial.py): the ratio there
compares the servers' own overheads, which the sample model's run() cost dilutes.
Then the cache scenario: a 20 ms model served by our host without and with a local
redis-server (every request after the first is a hit).
Then observability (bench/observability_overhead.py): telemetry and data collection on vs off.
Prints a table and writes bench/results/<utc-timestamp>.json. Not a test: numbers are
machine-dependent; compare the ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SCORE_PY = REPO / "scoring" / "sample_model" / "score.py"
PAYLOAD = (BENCH / "post.lua").read_text().split("'")[1].encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_ok(port: int) -> bool:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/score",
        data=PAYLOAD,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, cwd: Path):
        self.name, self.cmd, self.env, self.port, self.cwd = name, cmd, env, port, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and return seconds from spawn to the first 200 on POST /score."""
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = t0 + 120
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            if post_ok(self.port):
                return time.perf_counter() - t0
            time.sleep(0.005)
        raise TimeoutError(f"{self.name} did not answer within 120 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: gunicorn master + worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


# Process start to the end of the entry script's own import, init() and first run(), with no
# server: the part of a cold start that no server can remove. What a server adds is the rest.
_SCRIPT_ALONE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("entry_module", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
mod.init()
if "inference_schema" in sys.modules:  # a schema-decorated run() takes the JSON's fields
    mod.run(**json.loads(sys.argv[2]))
else:
    mod.run(sys.argv[2])
"""


def script_alone(python: str, entry: Path, models: Path, env: dict[str, str], runs: int) -> float:
    """Median seconds from spawn to the end of the script's import + init() + first run()."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            [python, "-c", _SCRIPT_ALONE, str(entry), PAYLOAD.decode()],
            env={**env, "AZUREML_MODEL_DIR": str(models)},
            cwd=entry.parent,
            check=True,
            timeout=120,
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(port: int, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(BENCH / "post.lua"),
            f"http://127.0.0.1:{port}/score",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "90", "99"):
        result[f"p{pct}_ms"] = _ms(re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(map(int, sock.groups())) if sock else 0
    return result


REFERENCE_REQUIREMENTS = [
    "azureml-inference-server-http>=1.4,<2",
    "inference-schema>=1.8,<2",
    "scikit-learn>=1.5,<2",
    "joblib>=1.4,<2",
    "numpy>=1.26,<3",
]


def reference_python(explicit: str | None) -> str:
    """A Python with azmlinfsrv. It gets its own venv: azureml-inference-server-http pins
    opentelemetry 1.33, which conflicts with pulumi's in the project venv."""
    if explicit:
        return explicit
    venv = REPO / ".local" / "bench-reference-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv.relative_to(REPO)} for azmlinfsrv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *REFERENCE_REQUIREMENTS], check=True
        )
    return str(python)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved wrk runs per server (median is kept)"
    )
    parser.add_argument("--observability-only", action="store_true", help="sinks on vs off only")
    parser.add_argument(
        "--reference-python",
        help="a python with azureml-inference-server-http "
        "(default: .local/bench-reference-venv, created on first use)",
    )
    return parser.parse_args()


Maker = Callable[[int], Server]  # a server on the given port, not started yet


def _entry_flags(entry: Path, models: Path, port: int) -> list[str]:
    """The command-line flags both servers take (azmlinfsrv's)."""
    flags = ["--entry_script", str(entry), "--model_dir", str(models), "--port", str(port)]
    return [*flags, "--worker_count", "1"]


class Setup:
    """The trained sample model, the environment and the Pythons of the servers under test."""

    def __init__(self, reference_python_path: str | None) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="scoring-bench-"))
        sys.path.insert(0, str(REPO))
        from scoring.sample_model.train import train

        self.models = self.work / "models"
        train(self.models)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SCORING_"))}
        env["PYTHONPATH"] = str(REPO)
        self.env = env
        self.py = sys.executable
        self.ref_py = reference_python(reference_python_path)

    def ours(self, entry: Path, port: int, extra: dict[str, str] | None = None) -> Server:
        cmd = [self.py, "-m", "scoring", *_entry_flags(entry, self.models, port)]
        return Server(
            "scoring",
            [*cmd, "--host", "127.0.0.1"],
            {**self.env, **(extra or {})},
            port,
            self.work,
        )

    def reference(self, port: int, entry: Path = SCORE_PY) -> Server:
        cmd = [self.ref_py, str(BENCH / "azmlinfsrv_loopback.py")]
        return Server(
            "azmlinfsrv", [*cmd, *_entry_flags(entry, self.models, port)], self.env, port, self.work
        )

    def baseline(self, port: int) -> Server:
        uvicorn = [self.py, "-m", "uvicorn", "constant_app:app", "--host", "127.0.0.1"]
        options = ["--loop", "asyncio", "--http", "httptools", "--no-access-log"]
        return Server(
            "uvicorn-constant",
            [*uvicorn, "--port", str(port), *options, "--log-level", "warning"],
            {**self.env, "PYTHONPATH": str(BENCH)},
            port,
            BENCH,
        )


def cold_start(make: Maker) -> float:
    """Seconds from spawn to the first 200 of a fresh server, which is then stopped."""
    server = make(free_port())
    try:
        return server.start()
    finally:
        server.stop()


def warm_up(server: Server, connections: int) -> None:
    server.start()
    wrk(server.port, 2, connections)


def cold_starts(makers: dict[str, Maker], runs: int) -> dict[str, list[float]]:
    colds: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(runs):  # interleaved, so drift on a shared machine hits all alike
        for name, make in makers.items():
            colds[name].append(cold_start(make))
    return colds


def throughput_rounds(
    makers: dict[str, Maker], args: argparse.Namespace
) -> dict[str, list[dict[str, float]]]:
    """All servers up at once (idle while not measured), measured in interleaved rounds."""
    servers = {name: make(free_port()) for name, make in makers.items()}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    try:
        for server in servers.values():
            warm_up(server, args.connections)
        for _ in range(args.rounds):
            for name, server in servers.items():
                rounds[name].append(wrk(server.port, args.duration, args.connections))
    finally:
        for server in servers.values():
            server.stop()
    return rounds


def medians(
    rounds: dict[str, list[dict[str, float]]], colds: dict[str, list[float]]
) -> dict[str, dict[str, float]]:
    """Each figure is the median over the rounds."""
    results: dict[str, dict[str, float]] = {}
    for name, runs in rounds.items():
        results[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        if name in colds:
            results[name]["cold_start_s"] = statistics.median(colds[name])
        print(f"{name}: {results[name]}", flush=True)
    return results


def add_script_alone(results: dict[str, dict[str, float]], setup: Setup, runs: int) -> None:
    """The entry script's own import + init() + first run(), without a server, in each venv."""
    for name, python in (("scoring", setup.py), ("azmlinfsrv", setup.ref_py)):
        results[name]["script_alone_s"] = script_alone(
            python, SCORE_PY, setup.models, setup.env, runs
        )
    for name in ("scoring", "azmlinfsrv"):
        print(f"{name}: score.py alone {results[name]['script_alone_s']:.2f}s", flush=True)


def add_light_cold_starts(results: dict[str, dict[str, float]], setup: Setup, runs: int) -> None:
    """Cold start with a light entry script (no scikit-learn import): the servers' overhead."""
    light = BENCH / "model20ms.py"
    for name, make in (
        ("azmlinfsrv", lambda p: setup.reference(p, light)),
        ("scoring", lambda p: setup.ours(light, p)),
    ):
        light_colds = [cold_start(make) for _ in range(runs)]
        results[name]["cold_start_light_script_s"] = statistics.median(light_colds)
        print(f"{name}: cold start, light script {results[name]['cold_start_light_script_s']:.2f}s")


def start_redis(port: int) -> subprocess.Popen[bytes]:
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return subprocess.Popen(
        ["redis-server", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def add_cache_scenario(
    results: dict[str, dict[str, float]], setup: Setup, args: argparse.Namespace
) -> None:
    """A 20 ms model, same host, without and with Redis."""
    redis_port = free_port()
    redis = start_redis(redis_port)
    cached = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port), "REDIS_SSL": "false"}
    try:
        for name, extra in (("scoring-20ms-uncached", {}), ("scoring-20ms-cached", cached)):
            server = setup.ours(BENCH / "model20ms.py", free_port(), extra)
            try:
                warm_up(server, args.connections)
                results[name] = wrk(server.port, args.duration, args.connections)
            finally:
                server.stop()
            print(f"{name}: {results[name]}", flush=True)
    finally:
        redis.kill()
        redis.wait(5)


def compute_ratios(results: dict[str, dict[str, float]]) -> dict[str, float]:
    ref, us = results["azmlinfsrv"], results["scoring"]
    return {
        "rps_vs_reference": us["rps"] / ref["rps"],
        "p99_vs_reference": us["p99_ms"] / ref["p99_ms"],
        "cold_start_vs_reference": us["cold_start_s"] / ref["cold_start_s"],
        # what each server adds to the script's own import + init() + first run()
        "cold_start_beyond_script_vs_reference": (us["cold_start_s"] - us["script_alone_s"])
        / (ref["cold_start_s"] - ref["script_alone_s"]),
        # the lowest cold_start_vs_reference any server could reach with this script
        "cold_start_floor_vs_reference": us["script_alone_s"] / ref["cold_start_s"],
        "cold_start_light_script_vs_reference": us["cold_start_light_script_s"]
        / ref["cold_start_light_script_s"],
        "rps_vs_bare_stack": us["rps"] / results["uvicorn-constant"]["rps"],
        # the same ratio when run() costs nothing: how the servers' own overheads compare
        "rps_vs_reference_trivial_run": results["scoring-trivial-run"]["rps"]
        / results["azmlinfsrv-trivial-run"]["rps"],
        "cache_hit_speedup_20ms_model": results["scoring-20ms-cached"]["rps"]
        / results["scoring-20ms-uncached"]["rps"],
    }


def print_table(results: dict[str, dict[str, float]]) -> None:
    print()
    print(
        f"{'server':24} {'req/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'cold s':>7} {'errors':>6}"
    )
    for name, r in results.items():
        cold = f"{r['cold_start_s']:.2f}" if "cold_start_s" in r else "-"
        print(
            f"{name:24} {r['rps']:>10.0f} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {cold:>7} {r['non_2xx'] + r['socket_errors']:>6.0f}"
        )


def print_ratios(ratios: dict[str, float]) -> None:
    goals = {
        "rps_vs_reference": (">=", 3.0),
        "p99_vs_reference": ("<=", 0.5),
        "cold_start_vs_reference": ("<=", 0.6),
        "cold_start_beyond_script_vs_reference": ("<=", 0.6),
        "cold_start_light_script_vs_reference": ("<=", 0.6),
        "cache_hit_speedup_20ms_model": (">=", 20.0),
    }
    print()
    for key, value in ratios.items():
        goal = goals.get(key)
        verdict = ""
        if goal:
            ok = value >= goal[1] if goal[0] == ">=" else value <= goal[1]
            verdict = f"  (goal {goal[0]} {goal[1]}: {'met' if ok else 'NOT met'})"
        print(f"{key:32} {value:8.2f}{verdict}")


def write_results(
    args: argparse.Namespace,
    results: dict[str, dict[str, float]],
    rounds: dict[str, list[dict[str, float]]],
    ratios: dict[str, float],
) -> Path:
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "when": stamp,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "duration_s": args.duration,
            "connections": args.connections,
            "wrk_threads": 1,
            "rounds": args.rounds,
            "cold_runs": args.cold_runs,
            "workers": 1,
        },
        "results": results,
        "rps_rounds": {name: [r["rps"] for r in runs] for name, runs in rounds.items()},
        "ratios": ratios,
    }
    out = out_dir / f"{stamp}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out


def main() -> int:
    args = parse_args()
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install -y {tool}")
    setup = Setup(args.reference_python)
    from observability_overhead import measure  # this folder is on sys.path

    scripts = {"sample": SCORE_PY, "trivial": BENCH / "trivial.py"}
    if args.observability_only:  # telemetry and data collection on vs off, nothing else
        measure(setup, args, throughput_rounds, medians, {}, scripts, free_port)
        return 0
    makers: dict[str, Maker] = {
        "azmlinfsrv": setup.reference,
        "scoring": lambda p: setup.ours(SCORE_PY, p),
        "uvicorn-constant": setup.baseline,
    }
    # The same two servers with a run() that costs next to nothing: the servers' own overhead.
    trivial = BENCH / "trivial.py"
    overhead_makers: dict[str, Maker] = {
        "azmlinfsrv-trivial-run": lambda p: setup.reference(p, trivial),
        "scoring-trivial-run": lambda p: setup.ours(trivial, p),
    }
    colds = cold_starts(makers, args.cold_runs)
    rounds = throughput_rounds({**makers, **overhead_makers}, args)
    results = medians(rounds, colds)
    add_script_alone(results, setup, args.cold_runs)
    add_light_cold_starts(results, setup, args.cold_runs)
    add_cache_scenario(results, setup, args)
    obs = measure(setup, args, throughput_rounds, medians, results, scripts, free_port)
    rounds.update(obs[0])
    ratios = {**compute_ratios(results), **obs[1]}
    print_table(results)
    print_ratios(ratios)
    out = write_results(args, results, rounds, ratios)
    print(f"\nwrote {out.relative_to(REPO)}")
    shutil.rmtree(setup.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
