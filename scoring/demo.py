"""Local run (the seeds' LocalWebservice): serve the sample model and score the seed payload.

    python -m scoring.demo [--model-dir .local/model] [--keep]

Trains the sample model into ``--model-dir`` if it is not there, starts ``python -m scoring`` on
127.0.0.1 on a free port, waits for ``/ready``, POSTs the seed payload twice, prints the
responses and stops the server (``--keep`` leaves it running until Ctrl-C). With ``REDIS_HOST``
(and ``REDIS_PORT``, ``REDIS_SSL=false`` for a local redis-server) in the environment the second
call is a cache hit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SEED_PAYLOAD = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}
HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the sample model locally and score.")
    parser.add_argument("--model-dir", default=".local/model")
    parser.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = parser.parse_args(argv)

    model_dir = Path(args.model_dir).resolve()
    if not (model_dir / "diabetes-ridge" / "1" / "model.joblib").is_file():
        from .sample_model.train import train

        print(f"training the sample model into {model_dir}", flush=True)
        train(model_dir)
    port = args.port or _free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "scoring",
        "--entry_script",
        str(HERE / "sample_model/score.py"),
        "--model_dir",
        str(model_dir),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                print(f"server exited with {proc.returncode}", file=sys.stderr)
                return 1
            try:
                if _get(base + "/ready") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > 60:
                print("server not ready after 60s", file=sys.stderr)
                return 1
            time.sleep(0.05)
        print(f"ready after {time.monotonic() - t0:.2f}s: {base}/score", flush=True)
        body = json.dumps(SEED_PAYLOAD).encode()
        for attempt in (1, 2):
            if attempt == 2:
                time.sleep(0.1)  # the cache store happens just after the first response
            req = urllib.request.Request(
                base + "/score",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                cache = r.headers.get("x-scoring-cache", "off")
                print(
                    f"POST /score #{attempt} -> {r.status} (cache: {cache}) {r.read().decode()}",
                    flush=True,
                )
        with urllib.request.urlopen(base + "/status", timeout=5) as r:
            print("GET /status -> " + r.read().decode(), flush=True)
        if args.keep:
            print("serving; Ctrl-C to stop", flush=True)
            proc.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
