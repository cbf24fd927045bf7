"""The scoring workload's Kubernetes specs in manifest form: pure functions, no resources.

Each builder returns the camelCase dicts the Kubernetes SDK accepts as ``metadata`` or ``spec``;
``workload.py`` declares the resources with them (see its docstring for what each one does and
why).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from components.contract import LIVENESS_PATH, READINESS_PATH, ScoringDeployment
from components.targets.aks.cluster import ACCELERATOR_LABEL, ACCELERATOR_TAINT_EFFECT
from components.targets.aks.settings import AutoscaleSettings

APP = "scoring"
RUN_AS = 10001  # a high UID/GID that clashes with no host user
CHECKOV_SKIP = "checkov.io/skip"


def as_manifest(value: Mapping[str, Any]) -> Any:
    """A spec in manifest form (camelCase dicts), as the SDK accepts it; typed loosely because
    the SDK's TypedDicts do not accept dicts assembled by helpers."""
    return value


def labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "mlscore",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component}


def skips(*checks: tuple[str, str]) -> dict[str, str]:
    """checkov skip annotations: ``CKV_K8S_n: reason`` pairs, each with its justification."""
    return {CHECKOV_SKIP + str(i + 1): f"{cid}={why}" for i, (cid, why) in enumerate(checks)}


# Each checkov skip carries its justification in the manifest itself.
SCORING_SKIPS = (
    (
        "CKV_K8S_35",
        "the scoring host reads SCORING_AUTH_KEYS and REDIS_PASSWORD from its environment "
        "(the contract of every target); the values come from a Kubernetes Secret, never plain",
    ),
)


def namespace_metadata(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {
            "app.kubernetes.io/part-of": "mlscore",
            # Pod Security admission: the strictest profile, enforced.
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        },
    }


# --- the scoring pod ----------------------------------------------------------------------------
def _secret_env(name: str, secret_name: pulumi.Input[str]) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": name}}}


def scoring_env(d: ScoringDeployment, secret_name: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The host's env: the runtime settings, the cache's, and the keys from the Secret."""
    # AKS pods do not run as the pull identity (no workload identity): the cache's key, if any.
    cache_env, cache_key = d.cache_env(signs_in_as=None)
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in {**d.runtime_env(), **cache_env}.items()
    ]
    env.append(_secret_env("SCORING_AUTH_KEYS", secret_name))
    if cache_key is not None:
        env.append(_secret_env("REDIS_PASSWORD", secret_name))
    return env


def _probes() -> dict[str, Any]:
    probe = {"port": "http", "scheme": "HTTP"}
    return {
        # init() may load a large model: the startup probe gives it up to 5 minutes
        # before liveness takes over.
        "startupProbe": {
            "httpGet": {"path": LIVENESS_PATH, **probe},
            "periodSeconds": 10,
            "failureThreshold": 30,
        },
        "livenessProbe": {
            "httpGet": {"path": LIVENESS_PATH, **probe},
            "periodSeconds": 15,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": READINESS_PATH, **probe},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 2,
        },
    }


def scoring_container(
    d: ScoringDeployment, env: list[dict[str, Any]], accelerator: str | None
) -> dict[str, Any]:
    """The scoring container: the same in every variant but for the GPU limit."""
    s = d.settings
    cpu, memory = s.aks.cpu_millicores, s.aks.memory_mib
    limits: dict[str, str] = {"cpu": f"{2 * cpu}m", "memory": f"{memory}Mi"}
    if accelerator == "gpu":
        limits["nvidia.com/gpu"] = "1"
    return {
        "name": APP,
        "image": d.image,
        # Always: the kubelet re-checks the pull right (AcrPull) for every new pod; with
        # a digest it never pulls different bytes.
        "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": s.scoring.port, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
            "limits": limits,
        },
        **_probes(),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def accelerator_tolerations(accelerator: str) -> list[dict[str, Any]]:
    """What lets the accelerator pods onto the tainted accelerator pool."""
    tolerations: list[dict[str, Any]] = [
        {
            "key": ACCELERATOR_LABEL,
            "operator": "Equal",
            "value": accelerator,
            "effect": ACCELERATOR_TAINT_EFFECT,
        }
    ]
    if accelerator == "gpu":  # AKS also taints GPU nodes it labels this way on some images
        tolerations.append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    return tolerations


def pod_spec(
    d: ScoringDeployment,
    component: str,
    secret_name: pulumi.Input[str],
    *,
    accelerator: str | None = None,
) -> dict[str, Any]:
    """The scoring pod: the same container in every variant, only scheduling differs."""
    container = scoring_container(d, scoring_env(d, secret_name), accelerator)
    spec: dict[str, Any] = {
        "serviceAccountName": APP,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                # ScheduleAnyway: more replicas than nodes still schedule (the HPA may go far
                # past the node count); the scheduler only prefers the spread.
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector(component)},
            }
        ],
        "nodeSelector": {"kubernetes.io/os": "linux"},
    }
    if accelerator is not None:
        spec["nodeSelector"] = {**spec["nodeSelector"], ACCELERATOR_LABEL: accelerator}
        spec["tolerations"] = accelerator_tolerations(accelerator)
    return spec


# --- the objects around it ----------------------------------------------------------------------
def deployment_spec(
    spec: Mapping[str, Any], component: str, replicas: int | None
) -> dict[str, Any]:
    deployment: dict[str, Any] = {
        "selector": {"matchLabels": selector(component)},
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": 600,
        "strategy": {
            "type": "RollingUpdate",
            # Never below the current capacity during a rollout: one extra pod at a time.
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {
            "metadata": {"labels": labels(component)},
            "spec": dict(spec),
        },
    }
    if replicas is not None:  # with an HPA the replica count is the HPA's alone
        deployment["replicas"] = replicas
    return deployment


def service_annotations(dns_label: str) -> dict[str, str]:
    return {
        # <label>.<region>.cloudapp.azure.com on the Service's public IP.
        "service.beta.kubernetes.io/azure-dns-label-name": dns_label,
        # Azure LB health probe on the readiness path, not a bare TCP connect.
        "service.beta.kubernetes.io/azure-load-balancer-health-probe-request-path": (
            READINESS_PATH
        ),
    }


def service_spec(component: str) -> dict[str, Any]:
    return {
        "type": "LoadBalancer",
        # Local: no second hop between nodes, and the client IP reaches the pod.
        "externalTrafficPolicy": "Local",
        "selector": selector(component),
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
    }


def pdb_spec(component: str) -> dict[str, Any]:
    return {
        # maxUnavailable, not minAvailable: at one replica minAvailable 1 would block
        # every node drain (AKS upgrades would stall); this allows one pod at a time.
        "maxUnavailable": 1,
        "selector": {"matchLabels": selector(component)},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


def hpa_behavior() -> dict[str, Any]:
    """The seeds' scaling rhythm: up at once, down after about a minute."""
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15},
                {"type": "Pods", "value": 4, "periodSeconds": 15},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 60,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
    }


def hpa_spec(autoscale: AutoscaleSettings) -> dict[str, Any]:
    """CPU utilisation between the seeds' min and (planned) max replicas."""
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
        "minReplicas": autoscale.min_replicas,
        "maxReplicas": autoscale.effective_max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": autoscale.target_utilization,
                    },
                },
            }
        ],
        "behavior": hpa_behavior(),
    }


def network_policy_spec(port: int, redis_port: int | None) -> dict[str, Any]:
    """Scoring pods: ingress only on the scoring port; egress only to DNS, Redis and HTTPS
    (Entra ID tokens, Application Insights)."""
    egress: list[dict[str, Any]] = [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    },
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {"ports": [{"protocol": "TCP", "port": 443}]},
    ]
    if redis_port is not None:
        egress.append({"ports": [{"protocol": "TCP", "port": redis_port}]})
    return {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": APP}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"ports": [{"protocol": "TCP", "port": port}]}],
        "egress": egress,
    }
