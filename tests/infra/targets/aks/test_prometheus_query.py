"""The KEDA query against a real Prometheus that scrapes a running scoring host the way Azure
Managed Prometheus does.

What is real:

* the **query, threshold and replica bounds** come from the ``ScaledObject`` the program declares
  (the ``dev``/``prod`` runs under mocks, rendered as manifests), not from a copy in this test;
* the **scrape job** is Azure Managed Prometheus' pod-annotation job, vendored byte for byte from
  Azure/prometheus-collector (``prometheus/podannotationsDefault.yml``, see the README beside it),
  with the two edits the agent makes before loading it (prometheus-config-merger.go): the
  ``$$SCRAPE_INTERVAL$$`` placeholder and the namespace ``keep`` rule built from the program's own
  ``ama-metrics-settings-configmap`` (``podannotationnamespaceregex``);
* **Prometheus** is Debian's ``prometheus`` binary: it runs those ``relabel_configs``, scrapes,
  stores and evaluates the query (``/api/v1/query``);
* the **scoring host** is ``python -m scoring`` serving ``/metrics``; the in-flight requests are
  real HTTP requests held open by ``prometheus/gate.py``.

What stands in:

* **service discovery**: ``kubernetes_sd_configs`` (role ``pod``) is replaced by ``file_sd_configs``
  whose targets carry the ``__meta_kubernetes_*`` labels Kubernetes SD would set for a pod of the
  program's Deployment (its namespace, a ReplicaSet pod name ``<deployment>-<hash>-<suffix>``, the
  pod template's labels and annotations plus ``pod-template-hash``, sanitised like Prometheus
  does: https://prometheus.io/docs/prometheus/latest/configuration/configuration/#pod). The
  relabelling itself is Azure's, unchanged;
* the ``prometheus.io/port`` annotation carries the test host's free port instead of 5001, and
  the scrape interval is 1 s instead of the ConfigMap's 10 s (asserted, then shortened);
* two decoy targets point at the same host: an accelerator pod (``<app>-gpu-<hash>-<suffix>``,
  which the query must not count) and a pod in another namespace (which Azure's namespace rule
  drops);
* **KEDA** is replaced by its documented reading of the result
  (https://keda.sh/docs/latest/scalers/prometheus/: one element expected; an empty result is 0
  when ``ignoreNullValues`` is true, the default, an error when it is false), followed by the HPA
  rule the program replays in :mod:`components.targets.aks.scaling`.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from components.targets.aks import scaling
from preview import engine, manifests
from tests.scoring._scoring_support import Host, _launch, free_port

HERE = Path(__file__).resolve().parent / "prometheus"
AZURE_JOB = HERE / "podannotationsDefault.yml"
GATE_SCRIPT = HERE / "gate.py"
INSTALL = "apt-get install -y prometheus"
# k8s.io/apimachinery/pkg/util/rand: the alphabet of ReplicaSet hashes and pod name suffixes
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
LEVELS = (0, 1, 4, 8)


# --- the program's objects ---------------------------------------------------------------------
def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


class Declared:
    """What the program declares for the scoring Deployment's autoscaling."""

    def __init__(self, run: engine.Run) -> None:
        assert run.error is None, run.error
        docs = manifests.render(run)
        so = _find(docs, "ScaledObject", "scoring")
        self.namespace: str = so["metadata"]["namespace"]
        (self.trigger,) = so["spec"]["triggers"]
        self.query: str = self.trigger["metadata"]["query"]
        self.threshold = float(self.trigger["metadata"]["threshold"])
        self.min: int = so["spec"]["minReplicaCount"]
        self.max: int = so["spec"]["maxReplicaCount"]
        deployment = _find(docs, "Deployment", so["spec"]["scaleTargetRef"]["name"])
        self.app: str = deployment["metadata"]["name"]
        template = deployment["spec"]["template"]["metadata"]
        self.pod_labels: dict[str, str] = template["labels"]
        self.pod_annotations: dict[str, str] = template["annotations"]
        settings = _find(docs, "ConfigMap", "ama-metrics-settings-configmap")["data"]
        self.namespace_regex = _toml_value(settings["pod-annotation-based-scraping"])
        self.interval = _toml_value(settings["default-targets-scrape-interval-settings"])


def _toml_value(line: str) -> str:
    """``key = "value"`` (the ConfigMap's TOML-ish one-liners) -> ``value``."""
    match = re.fullmatch(r'\s*\w+\s*=\s*"([^"]*)"\s*', line)
    assert match, line
    return match.group(1)


# --- Prometheus with Azure's job -----------------------------------------------------------------
def _sanitise(name: str) -> str:
    """Prometheus' strutil.SanitizeLabelName, as Kubernetes SD applies it to label names."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def pod_target(
    address: str,
    namespace: str,
    pod_name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
) -> dict[str, Any]:
    """A file_sd target group with the meta labels Kubernetes SD (role pod) sets for a pod."""
    meta = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": pod_name,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_ready": "true",
    }
    for key, value in labels.items():
        meta[f"__meta_kubernetes_pod_label_{_sanitise(key)}"] = value
        meta[f"__meta_kubernetes_pod_labelpresent_{_sanitise(key)}"] = "true"
    for key, value in annotations.items():
        meta[f"__meta_kubernetes_pod_annotation_{_sanitise(key)}"] = value
        meta[f"__meta_kubernetes_pod_annotationpresent_{_sanitise(key)}"] = "true"
    return {"targets": [address], "labels": meta}


def azure_job(namespace_regex: str, interval: str, sd_file: Path) -> dict[str, Any]:
    """The vendored job with the agent's edits (prometheus-config-merger.go), discovery swapped."""
    (job,) = yaml.safe_load(AZURE_JOB.read_text())["scrape_configs"]
    assert job["scrape_interval"] == "$$SCRAPE_INTERVAL$$"
    job["scrape_interval"] = interval
    keep = {"source_labels": ["__meta_kubernetes_namespace"], "action": "keep"}
    job["relabel_configs"].append({**keep, "regex": namespace_regex})
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    job["file_sd_configs"] = [{"files": [str(sd_file)], "refresh_interval": "1s"}]
    return job


class Prometheus:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=5.0)

    def query(self, promql: str) -> list[dict[str, Any]]:
        r = self.client.get("/api/v1/query", params={"query": promql})
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        return body["data"]["result"]

    def targets(self) -> list[dict[str, Any]]:
        return self.client.get("/api/v1/targets").json()["data"]["activeTargets"]


def _start_prometheus(config: dict[str, Any], tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail(f"Prometheus is not installed: {INSTALL}", pytrace=False)
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    log.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((tmp / "prometheus.log").read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=0.5).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError((tmp / "prometheus.log").read_text())


def _pod_name(app: str, seed: int) -> str:
    pick = [K8S_ALPHABET[(seed * 7 + i * 11) % len(K8S_ALPHABET)] for i in range(15)]
    return f"{app}-{''.join(pick[:10])}-{''.join(pick[10:])}"


# --- KEDA's reading ------------------------------------------------------------------------------
class NullResult(Exception):
    """KEDA: 'prometheus metrics 'prometheus' target may be lost, the result is empty'."""


def keda_value(result: list[dict[str, Any]], ignore_null_values: bool) -> float:
    """How KEDA's Prometheus scaler reads an instant-query result
    (https://keda.sh/docs/latest/scalers/prometheus/)."""
    if not result:
        if ignore_null_values:
            return 0.0
        raise NullResult("the result is empty")
    assert len(result) == 1, f"KEDA refuses a result of {len(result)} elements: {result}"
    return float(result[0]["value"][1])


def hpa_replicas(total: float, d: Declared) -> int:
    """The HPA's answer from the minimum (where the Deployment sits), clamped to its bounds."""
    raw = scaling.recommend(d.min, total, d.threshold)
    return min(max(raw, d.min), d.max)


# --- the test ------------------------------------------------------------------------------------
@pytest.fixture(params=["dev", "prod"])
def declared(request: pytest.FixtureRequest) -> Declared:
    return Declared(request.getfixturevalue(request.param))


@pytest.fixture
def gated_host(tmp_path: Path) -> Iterator[Host]:
    host = _launch(GATE_SCRIPT, None, {"SCORING_RUN_THREADS": "8"}, tmp_path, True)
    yield host
    host.stop()


def _wait_for(prom: Prometheus, query: str, expected: float, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = prom.query(query)
        if len(result) == 1 and float(result[0]["value"][1]) == expected:
            return result
        time.sleep(0.2)
    series = prom.query(scaling.METRIC)
    raise AssertionError(
        f"{query!r} gave {result} while {expected:g} requests were in flight; "
        f"the series Prometheus holds for {scaling.METRIC}: {[s['metric'] for s in series]}"
    )


def test_the_declared_query_reads_the_in_flight_gauge_from_azures_scrape(
    declared: Declared, gated_host: Host, tmp_path: Path
) -> None:
    d = declared
    assert d.interval == scaling.SCRAPE_INTERVAL  # what Azure uses; 1 s here to keep it fast
    assert d.pod_annotations["prometheus.io/scrape"] == "true"
    annotations = {**d.pod_annotations, "prometheus.io/port": str(gated_host.port)}
    container = "127.0.0.1:5001"  # the pod IP and container port SD gives; relabelled to the host
    labels = {**d.pod_labels, "pod-template-hash": _pod_name(d.app, 1).split("-")[-2]}
    scoring_pod = _pod_name(d.app, 1)
    gpu_pod = _pod_name(f"{d.app}-gpu", 2)
    sd = tmp_path / "pods.json"
    sd.write_text(
        json.dumps(
            [
                pod_target(container, d.namespace, scoring_pod, labels, annotations),
                pod_target(
                    container,
                    d.namespace,
                    gpu_pod,
                    {**labels, "app.kubernetes.io/component": "gpu"},
                    annotations,
                ),
                pod_target(container, "default", _pod_name(d.app, 3), labels, annotations),
            ]
        )
    )
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [azure_job(d.namespace_regex, "1s", sd)],
    }
    proc, port = _start_prometheus(config, tmp_path)
    prom = Prometheus(port)
    pool = concurrent.futures.ThreadPoolExecutor(max(LEVELS))
    figures: list[str] = []
    try:
        # Azure's relabelling: the other namespace is dropped, the two pods in ours scraped
        deadline = time.monotonic() + 10
        while len(prom.query(scaling.METRIC)) < 2:
            assert time.monotonic() < deadline, prom.targets()
            time.sleep(0.2)
        series = [s["metric"] for s in prom.query(scaling.METRIC)]
        assert {s["kubernetes_pod_name"] for s in series} == {scoring_pod, gpu_pod}
        assert all(s["kubernetes_namespace"] == d.namespace for s in series)
        figures.append(f"query: {d.query}")
        figures.append(f"series: {series}")

        for n, level in enumerate(LEVELS):
            gate = tmp_path / f"gate-{n}"
            body = json.dumps({"gate": str(gate)}).encode()
            futures = [
                pool.submit(
                    gated_host.client.post,
                    "/score",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                for _ in range(level)
            ]
            result = _wait_for(prom, d.query, level)
            value = keda_value(result, ignore_null_values=False)
            replicas = hpa_replicas(value, d)
            # the seeds' formula, independently: ceil(in flight / target), clamped
            assert replicas == min(max(math.ceil(round(level / d.threshold, 9)), d.min), d.max)
            figures.append(
                f"{level} in flight -> KEDA reads {value:g} -> HPA {replicas} replicas "
                f"(threshold {d.threshold:g}, {d.min}..{d.max})"
            )
            gate.touch()
            for f in futures:
                assert f.result(timeout=30).status_code == 200
        print("\n" + "\n".join(figures))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for n in range(len(LEVELS)):
            (tmp_path / f"gate-{n}").touch()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_an_empty_result_is_an_error_keda_reports_not_a_silent_zero(prod: engine.Run) -> None:
    d = Declared(prod)
    # https://keda.sh/docs/latest/scalers/prometheus/ - ignoreNullValues defaults to true: an
    # empty result (a query whose labels match nothing) would read as 0 and never scale out
    assert d.trigger["metadata"].get("ignoreNullValues") == "false"
    assert keda_value([], ignore_null_values=True) == 0.0
    with pytest.raises(NullResult):
        keda_value([], ignore_null_values=False)
