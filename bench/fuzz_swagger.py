"""Fuzz the scoring host through its own swagger document (schemathesis): a benchmark, not a test.

    python bench/fuzz_swagger.py [--max-examples 300] [--seed 1] [--version 3]

Serves the sample model (a schema-decorated ``run()``) on a loopback port, points schemathesis
(``pip install 'schemathesis>=4,<5'``) at ``/swagger.json?version=N``, and lets it send valid,
invalid and malformed requests to every operation the document lists. Checked: no 5xx
(``not_a_server_error``: bad input must be a 4xx with a reason, never a 500), and each response
within ``--max-response-time``. Prints schemathesis' summary, then the host's log lines above
INFO; exits with schemathesis' status. Machine-dependent and randomised: not part of ``make
test``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SCORE_PY = REPO / "scoring" / "sample_model" / "score.py"
sys.path.insert(0, str(REPO))

from run import free_port  # noqa: E402  (bench/run.py, next to this file)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the host exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"the host was not ready within {timeout} s")


def _schemathesis() -> str:
    exe = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if exe is None:
        raise SystemExit("schemathesis is not installed: pip install 'schemathesis>=4,<5'")
    return exe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--version", choices=("2", "3"), default="3")
    parser.add_argument("--max-response-time", type=float, default=2.0)
    args = parser.parse_args()
    exe = _schemathesis()

    from scoring.sample_model.train import train

    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        models = Path(tmp) / "models"
        train(models)
        port = free_port()
        log_path = Path(tmp) / "host.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "SCORING_"))}
        env["PYTHONPATH"] = str(REPO)
        cmd = [
            sys.executable,
            "-m",
            "scoring",
            "--entry_script",
            str(SCORE_PY),
            "--model_dir",
            str(models),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        try:
            _wait_ready(port, proc)
            base = f"http://127.0.0.1:{port}"
            status = subprocess.call(
                [
                    exe,
                    "run",
                    f"{base}/swagger.json?version={args.version}",
                    "--url",
                    base,
                    "--checks",
                    "not_a_server_error",
                    "--max-response-time",
                    str(args.max_response_time),
                    "--max-examples",
                    str(args.max_examples),
                    "--seed",
                    str(args.seed),
                    "--request-timeout",
                    "10",
                ],
                timeout=900,
            )
        finally:
            proc.terminate()
            proc.wait(15)
        lines = [
            line
            for line in log_path.read_text(errors="replace").splitlines()
            if " WARNING " in line or " ERROR " in line or " CRITICAL " in line
        ]
        print(f"\nhost log: {len(lines)} line(s) above INFO")
        for line in lines[:40]:
            print("  " + line)
        if proc.returncode not in (0, -15):
            print(f"the host exited with {proc.returncode}")
            return 1
        return status


if __name__ == "__main__":
    sys.exit(main())
