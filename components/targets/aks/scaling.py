"""Autoscaling on concurrency, as the seeds define it: KEDA scales the scoring Deployment on the
host's ``scoring_requests_in_flight`` gauge, read from Azure Managed Prometheus.

**The target.** Azure ML's router scaled on utilisation = busy / available concurrency; here a
replica's target is ``maxConcurrentRequestsPerContainer x autoscaleTargetUtilization / 100``
in-flight requests (:attr:`AutoscaleSettings.target_in_flight`).

**The objects.** A ``TriggerAuthentication`` (KEDA signs in to the Azure Monitor workspace with
workload identity: ``podIdentity.provider: azure-workload``,
https://keda.sh/docs/latest/authentication-providers/azure-ad-workload-identity/), and a
``ScaledObject`` with the ``prometheus`` trigger
(https://keda.sh/docs/latest/scalers/prometheus/) on the sum of the gauge over the scoring pods,
``metricType: AverageValue``, ``ignoreNullValues: "false"`` (a query that matches nothing is an
error KEDA reports, not a 0 that keeps the minimum for ever). KEDA creates and owns the one HPA
on the Deployment (https://keda.sh/docs/latest/reference/scaledobject-spec/): there is no other. Its
``advanced.horizontalPodAutoscalerConfig.behavior`` is the seeds' rhythm: up at once (window
0 s, double or +4 pods per 15 s), down after a 60 s stabilisation window. The scrape interval of
the pods (``podannotations`` in ama-metrics-settings-configmap) is 10 s, so a load change reaches
the HPA within ~10-30 s (scrape, ingestion, the HPA's 15 s sync): "seconds", not the seeds' 1 s.

**The rule the HPA applies** (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details),
for an external metric with an ``AverageValue`` target (KEDA's metric is the query's total):

    ratio   = total / (target x currentReplicas)
    desired = currentReplicas                          if |ratio - 1| <= 0.1 (the tolerance)
            = ceil(currentReplicas x ratio) = ceil(total / target)   otherwise

then the behaviour: a scale-down takes the **highest** recommendation of the last 60 s
(stabilisation window), a scale-up is capped by the policies (per 15 s: +100 % or +4 pods,
whichever is more), and the result is clamped to [min, max]. :func:`simulate` replays a trace of
in-flight counts through exactly this; by Little's law (in flight = rps x request time) its
steady state is the seeds' ``ceil(rps x request seconds / utilisation / concurrency)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.targets.aks.settings import AutoscaleSettings

METRIC = "scoring_requests_in_flight"
KEDA_API = "keda.sh/v1alpha1"
TOLERANCE = 0.1
SYNC_SECONDS = 15
DOWN_WINDOW_SECONDS = 60
UP_PERCENT, UP_PODS = 100, 4
SCRAPE_INTERVAL = "10s"
POLLING_SECONDS = 5


def hpa_behavior() -> dict[str, Any]:
    """The seeds' scaling rhythm: up at once, down after about a minute."""
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": UP_PERCENT, "periodSeconds": SYNC_SECONDS},
                {"type": "Pods", "value": UP_PODS, "periodSeconds": SYNC_SECONDS},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": DOWN_WINDOW_SECONDS,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": SYNC_SECONDS}],
        },
    }


def in_flight_query(namespace: str, app: str) -> str:
    """The gauge summed over the CPU Deployment's pods (``<app>-<rs>-<pod>``: not the
    accelerator Deployment's ``<app>-<kind>-<rs>-<pod>``).

    The labels are the ones Azure Managed Prometheus' pod-annotation job writes:
    ``kubernetes_namespace`` and ``kubernetes_pod_name`` (its ``relabel_configs``, in
    https://github.com/Azure/prometheus-collector/blob/main/otelcollector/configmapparser/default-prom-configs/podannotationsDefault.yml),
    not the ``namespace``/``pod`` of other scrape setups: a query on those matches nothing.
    tests/infra/targets/aks/test_prometheus_query.py runs it on a real Prometheus with that job."""
    return (
        f'sum({METRIC}{{kubernetes_namespace="{namespace}",'
        f'kubernetes_pod_name=~"{app}-[a-z0-9]+-[a-z0-9]+"}})'
    )


def threshold(target: float) -> str:
    """KEDA's threshold string: at most 3 decimals (a Kubernetes quantity in milli-units)."""
    return f"{target:.3f}".rstrip("0").rstrip(".")


def trigger_authentication_spec(keda_client_id: pulumi.Input[str]) -> dict[str, Any]:
    return {"podIdentity": {"provider": "azure-workload", "identityId": keda_client_id}}


def scaled_object_spec(
    autoscale: AutoscaleSettings,
    app: str,
    namespace: str,
    query_endpoint: pulumi.Input[str],
    auth_name: str,
) -> dict[str, Any]:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
        "pollingInterval": POLLING_SECONDS,
        "minReplicaCount": autoscale.min_replicas,
        "maxReplicaCount": autoscale.effective_max_replicas,
        "advanced": {
            "horizontalPodAutoscalerConfig": {"name": app, "behavior": hpa_behavior()},
        },
        "triggers": [
            {
                "type": "prometheus",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": query_endpoint,
                    "query": in_flight_query(namespace, app),
                    "threshold": threshold(autoscale.target_in_flight),
                    # an empty result is an error KEDA reports on the ScaledObject, not a
                    # silent 0 (the default, true): every pod exports the gauge, 0 when idle,
                    # and minReplicaCount >= 1, so the series exist whenever the query is right
                    # (https://keda.sh/docs/latest/scalers/prometheus/)
                    "ignoreNullValues": "false",
                },
                "authenticationRef": {"name": auth_name},
            }
        ],
    }


def metrics_settings(namespace: str) -> dict[str, str]:
    """``ama-metrics-settings-configmap`` (kube-system): the agent's defaults
    (https://github.com/Azure/prometheus-collector, otelcollector/configmaps/) with pod
    annotation scraping on in the scoring namespace, every 10 s."""
    return {
        "schema-version": "v1",
        "config-version": "ver1",
        "pod-annotation-based-scraping": f'podannotationnamespaceregex = "{namespace}"',
        "default-targets-scrape-interval-settings": f'podannotations = "{SCRAPE_INTERVAL}"',
        "debug-mode": "enabled = false",
    }


# --- the HPA's rule, replayed --------------------------------------------------------------------
def seeds_replicas(in_flight: float, a: AutoscaleSettings) -> int:
    """The seeds' replica count for a load: in flight / (concurrency x utilisation), clamped."""
    wanted = math.ceil(round(in_flight / a.target_in_flight, 9)) if in_flight > 0 else 0
    return min(max(wanted, a.min_replicas), a.effective_max_replicas)


def recommend(current: int, total: float, target: float) -> int:
    """One HPA recommendation for an AverageValue external metric (tolerance included)."""
    if current == 0:
        return math.ceil(total / target)
    ratio = total / (target * current)
    if abs(ratio - 1.0) <= TOLERANCE:
        return current
    return math.ceil(round(current * ratio, 9))


@dataclass(frozen=True)
class Step:
    second: int
    in_flight: float
    recommended: int
    replicas: int
    seeds: int


def simulate(trace: Sequence[tuple[int, float]], a: AutoscaleSettings) -> list[Step]:
    """``trace``: (second, in-flight total) samples, replayed every HPA sync (15 s) from
    ``a.min_replicas``; each step records what the HPA chose and what the seeds' formula says."""
    if not trace:
        return []
    target = a.target_in_flight
    current = a.min_replicas
    history: list[tuple[int, int]] = []  # (second, recommendation) for the down window
    steps: list[Step] = []
    end = trace[-1][0]
    for second in range(0, end + 1, SYNC_SECONDS):
        total = _sample(trace, second)
        raw = recommend(current, total, target)
        raw = min(max(raw, a.min_replicas), a.effective_max_replicas)
        history = [(t, r) for t, r in history if t > second - DOWN_WINDOW_SECONDS]
        history.append((second, raw))
        if raw < current:  # down: the highest recommendation in the window, never up
            chosen = min(current, max(r for _, r in history))
        else:  # up: no window, capped by the policies
            chosen = min(raw, max(current * (100 + UP_PERCENT) // 100, current + UP_PODS))
        current = min(max(chosen, a.min_replicas), a.effective_max_replicas)
        steps.append(Step(second, total, raw, current, seeds_replicas(total, a)))
    return steps


def _sample(trace: Sequence[tuple[int, float]], second: int) -> float:
    """The latest sample at or before ``second``."""
    value = trace[0][1]
    for t, v in trace:
        if t > second:
            break
        value = v
    return value


def table(steps: Sequence[Step]) -> str:
    rows = [f"{'t (s)':>6} {'in flight':>9} {'HPA raw':>7} {'replicas':>8} {'seeds':>5}"]
    rows += [
        f"{s.second:>6} {s.in_flight:>9g} {s.recommended:>7} {s.replicas:>8} {s.seeds:>5}"
        for s in steps
    ]
    return "\n".join(rows)
