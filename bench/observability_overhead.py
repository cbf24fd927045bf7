"""What observability costs: this host with telemetry and with model data collection on, side by
side with both off (called by bench/run.py; the same interleaved rounds and medians).

Telemetry goes to a fake Application Insights ingestion endpoint on loopback (a thread of this
process answering ``POST /v2.1/track`` as the service does), through the real exporter; data
collection to Azurite (``node_modules/.bin/azurite-blob``). Both with the sample model and with
a run() that costs nothing (the worst case: the host's own overhead is all there is). Variants:

* ``telemetry``: the default sampler (rate-limited, 5 requests a second, failures always);
* ``telemetry-all``: every request exported (``OTEL_TRACES_SAMPLER=always_on``);
* ``collection``: every input and output written (``DATA_COLLECTION_SAMPLING_RATE=1``).

The report also counts what reached the fakes, so a variant that silently exported nothing
cannot pass for a cheap one.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

IKEY = "3f1b2c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
QUIET_SDK = {  # the exporter's statistics about itself would go to Microsoft
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
}
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
GOAL = 0.10  # at most 10% of throughput


class FakeIngestion:
    def __init__(self) -> None:
        self.items = 0
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                n = len(json.loads(raw))
                outer.items += n
                outer.requests += 1
                body = json.dumps({"itemsReceived": n, "itemsAccepted": n, "errors": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        self.connection_string = (
            f"InstrumentationKey={IKEY};IngestionEndpoint=http://127.0.0.1:{port}/"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Azurite:
    def __init__(self, repo: Path, port: int) -> None:
        exe = repo / "node_modules" / ".bin" / "azurite-blob"
        if not exe.exists():
            raise SystemExit(f"Azurite is not installed ({exe}): run `npm ci`")
        cmd = [str(exe), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
        self.proc = subprocess.Popen(
            [*cmd, "--inMemoryPersistence", "--skipApiVersionCheck", "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),
        )
        self.connection_string = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("Azurite did not start")

    def lines(self, container: str = "modeldata") -> int:
        from azure.storage.blob import BlobServiceClient

        client = BlobServiceClient.from_connection_string(self.connection_string)
        c = client.get_container_client(container)
        if not c.exists():
            return 0
        return sum(c.download_blob(b.name).readall().count(b"\n") for b in c.list_blobs())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


Ours = Callable[[Path, int, dict[str, str]], Any]  # Setup.ours(entry, port, extra env)


def makers(
    ours: Ours, scripts: dict[str, Path], ingestion: FakeIngestion, azurite: Azurite
) -> dict[str, Callable[[int], Any]]:
    telemetry = {
        **QUIET_SDK,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
    }
    variants = {
        "off": {},
        "telemetry": telemetry,
        "telemetry-all": {**telemetry, "OTEL_TRACES_SAMPLER": "always_on"},
        "collection": {
            "DATA_COLLECTION_ENABLED": "true",
            "DATA_COLLECTION_CONNECTION_STRING": azurite.connection_string,
            "DATA_COLLECTION_SAMPLING_RATE": "1",
        },
    }
    out: dict[str, Callable[[int], Any]] = {}
    for script, entry in scripts.items():
        for variant, env in variants.items():
            if script != "sample" and variant == "telemetry":
                continue  # the rate-limited sampler: as cheap with any run()

            def make(port: int, entry: Path = entry, env: dict[str, str] = env) -> Any:
                return ours(entry, port, env)

            out[f"obs-{script}-{variant}"] = make
    return out


def costs(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """Throughput lost to each sink, as a share of the same host with both off."""
    out: dict[str, float] = {}
    for name, r in results.items():
        if not name.startswith("obs-") or name.endswith("-off"):
            continue
        script = name.split("-")[1]
        off = results.get(f"obs-{script}-off")
        if off:
            out[f"{name[4:]}_rps_cost"] = 1.0 - r["rps"] / off["rps"]
    return out


def print_costs(costs_: dict[str, float]) -> None:
    print()
    for key, value in costs_.items():
        verdict = "met" if value <= GOAL else "NOT met"
        print(f"{key:34} {value * 100:7.1f}%  (goal <= {GOAL * 100:.0f}%: {verdict})")


def measure(
    setup: Any,
    args: Any,
    rounds_of: Callable[..., dict[str, list[dict[str, float]]]],
    medians_of: Callable[..., dict[str, dict[str, float]]],
    results: dict[str, dict[str, float]],
    scripts: dict[str, Path],
    free_port: Callable[[], int],
) -> tuple[dict[str, list[dict[str, float]]], dict[str, float]]:
    """The variants in interleaved rounds (bench/run.py's ``throughput_rounds``), their medians
    added to ``results``; returns the rounds and the costs (and what reached the fakes)."""
    repo = Path(__file__).resolve().parent.parent
    ingestion = FakeIngestion()
    azurite = Azurite(repo, free_port())
    try:
        rounds = rounds_of(makers(setup.ours, scripts, ingestion, azurite), args)
        results.update(medians_of(rounds, {}))
        out = costs(results)
        out["obs_telemetry_items_received"] = float(ingestion.items)
        out["obs_collected_lines"] = float(azurite.lines())
    finally:
        ingestion.close()
        azurite.close()
    print_costs({k: v for k, v in out.items() if k.endswith("_cost")})
    return rounds, out
