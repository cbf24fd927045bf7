"""The scoring workload's Kubernetes specs in manifest form: pure functions, no resources.

Each builder returns the camelCase dicts the Kubernetes SDK accepts as ``metadata`` or ``spec``;
``workload.py`` declares the resources with them (see its docstring for what each one does and
why).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.contract import LIVENESS_PATH, READINESS_PATH, ScoringDeployment
from components.targets.aks.cluster import ACCELERATOR_LABEL, ACCELERATOR_TAINT_EFFECT

APP = "scoring"
RUN_AS = 10001  # a high UID/GID that clashes with no host user
CHECKOV_SKIP = "checkov.io/skip"
# Azure Workload Identity: the webhook projects a token for pods with this label whose service
# account names the identity (https://learn.microsoft.com/azure/aks/workload-identity-overview).
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
WORKLOAD_IDENTITY_CLIENT_ID = "azure.workload.identity/client-id"
# The Secrets Store CSI driver, the SecretProviderClass of the scoring keys and of the telemetry
# connection string, and the Kubernetes Secret it syncs them into (one per key generation).
CSI_DRIVER = "secrets-store.csi.k8s.io"
KEYS_CLASS = f"{APP}-keys"
KEYS_MOUNT = "/mnt/secrets-store"
KEY_ENV = ("SCORING_KEY_PRIMARY", "SCORING_KEY_SECONDARY")
INSIGHTS_ENV = "APPLICATIONINSIGHTS_CONNECTION_STRING"
# The pod template carries the key generation it was rendered for (scoring_keys.Rotation).
KEY_GENERATION_ANNOTATION = "mlscore/scoring-key-generation"
METRICS_PATH = "/metrics"
# Namespaces whose pods reach the scoring port: the Istio add-on's ingress gateway and the
# managed Prometheus agent (ama-metrics, in kube-system).
INGRESS_NAMESPACE = "aks-istio-ingress"
SCRAPER_NAMESPACE = "kube-system"


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
        "the scoring host reads SCORING_AUTH_KEYS from its environment (the contract of every "
        "target); the keys come from Key Vault through the Secrets Store CSI driver's synced "
        "Secret (mounted and rotated by the driver), never from Pulumi state",
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
def keys_secret(generation: int) -> str:
    """The Kubernetes Secret the CSI driver syncs the keys and the connection string into for
    key generation ``generation``.

    Why a name per generation: the driver creates a synced Secret when a pod mounts the class
    and it does not exist yet; one that exists is left as it is ("If a secret with the same name
    already exists in the namespace of the pod, the error is nil": createK8sSecret in
    https://github.com/kubernetes-sigs/secrets-store-csi-driver/blob/main/controllers/secretproviderclasspodstatus_controller.go)
    and only the rotation poll (``rotationPollInterval``) rewrites it later. A pod of the new
    generation reading a Secret of the old name could start, before that poll, with the old
    keys in its environment, and env vars never change afterwards ("Using Kubernetes secret for
    environment variable: The pod needs to be restarted to get the latest secret",
    https://secrets-store-csi-driver.sigs.k8s.io/topics/secret-auto-rotation.html). Under a new
    name the first pod of the generation to mount the class makes the Secret from what it just
    fetched from Key Vault: the new keys."""
    return f"{APP}-keys-g{generation}"


def _secret_env(name: str, secret_name: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": name}}}


def scoring_env(d: ScoringDeployment, generation: int) -> list[dict[str, Any]]:
    """The host's env: the runtime settings, the cache through Entra ID as the pull identity
    (workload identity: no key exists), and from the CSI driver's synced Secret of the key
    generation the scoring keys and Application Insights' connection string (the host's
    telemetry: scoring/observability/settings.py; with ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING``
    of :meth:`ScoringDeployment.observability_env` it ingests as the pull identity).
    ``SCORING_AUTH_KEYS`` joins the two keys with Kubernetes' dependent variables (``$(VAR)`` of
    variables defined before it:
    https://kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/)."""
    cache_env, _ = d.cache_env(signs_in_as=d.identity.principal_id)
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in {**d.runtime_env(), **cache_env}.items()
    ]
    secret = keys_secret(generation)
    env += [_secret_env(name, secret) for name in (*KEY_ENV, INSIGHTS_ENV)]
    env.append({"name": "SCORING_AUTH_KEYS", "value": ",".join(f"$({n})" for n in KEY_ENV)})
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
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            # The CSI volume must be mounted for the driver to sync (and rotate) the Secret.
            {"name": "scoring-keys", "mountPath": KEYS_MOUNT, "readOnly": True},
        ],
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


def csi_volume(name: str, provider_class: str) -> dict[str, Any]:
    return {
        "name": name,
        "csi": {
            "driver": CSI_DRIVER,
            "readOnly": True,
            "volumeAttributes": {"secretProviderClass": provider_class},
        },
    }


def spread(component: str) -> list[dict[str, Any]]:
    """Across zones, then across nodes (topologySpreadConstraints,
    https://kubernetes.io/docs/concepts/scheduling-eviction/topology-spread-constraints/): a zone
    outage or a node loss takes one share of the replicas. ScheduleAnyway for both: dev's
    single-zone pool (and more replicas than nodes once the HPA scales out) still schedules; the
    scheduler only prefers the spread. Nodes of zonal AKS pools carry
    ``topology.kubernetes.io/zone`` (https://learn.microsoft.com/azure/aks/availability-zones)."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector(component)},
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def pod_spec(
    d: ScoringDeployment,
    component: str,
    generation: int,
    *,
    accelerator: str | None = None,
) -> dict[str, Any]:
    """The scoring pod: the same container in every variant, only scheduling differs."""
    container = scoring_container(d, scoring_env(d, generation), accelerator)
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
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            csi_volume("scoring-keys", KEYS_CLASS),
        ],
        "topologySpreadConstraints": spread(component),
        "nodeSelector": {"kubernetes.io/os": "linux"},
    }
    if accelerator is not None:
        spec["nodeSelector"] = {**spec["nodeSelector"], ACCELERATOR_LABEL: accelerator}
        spec["tolerations"] = accelerator_tolerations(accelerator)
    return spec


# --- the objects around it ----------------------------------------------------------------------
def pod_metadata(component: str, port: int, generation: int) -> dict[str, Any]:
    """Pod labels (with workload identity's) and annotations: those managed Prometheus' agent
    scrapes by (``prometheus.io/*`` in the namespaces ama-metrics-settings-configmap names:
    https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-metrics-scrape-configuration)
    and the key generation, so a new rotation period changes the pod template and ``pulumi up``
    rolls the pods (a Deployment rolls out when its ``.spec.template`` changes:
    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#updating-a-deployment)."""
    return {
        "labels": {**labels(component), WORKLOAD_IDENTITY_LABEL: "true"},
        "annotations": {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": METRICS_PATH,
            "prometheus.io/scheme": "http",
            KEY_GENERATION_ANNOTATION: str(generation),
        },
    }


def deployment_spec(
    spec: Mapping[str, Any],
    component: str,
    replicas: int | None,
    template_metadata: Mapping[str, Any] | None = None,
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
            "metadata": dict(template_metadata or {"labels": labels(component)}),
            "spec": dict(spec),
        },
    }
    if replicas is not None:  # with KEDA's HPA the replica count is the HPA's alone
        deployment["replicas"] = replicas
    return deployment


def service_spec(component: str) -> dict[str, Any]:
    """ClusterIP behind the Istio ingress gateway: no public address of its own."""
    return {
        "type": "ClusterIP",
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


# Azure Managed Redis' OSS clustering policy: "The initial connection is through port 10000.
# Connecting to individual nodes is done using ports in the 85XX range" (which change over time;
# cluster clients learn them from CLUSTER NODES): learn.microsoft.com/azure/redis/architecture.
OSS_CLUSTER_NODE_PORTS = (8500, 8599)


def network_policy_spec(
    port: int, redis_port: int | None, redis_cluster: bool = False
) -> dict[str, Any]:
    """Scoring pods: ingress only on the scoring port and only from the ingress gateway and the
    metrics agent; egress only to DNS, Redis (and its cluster nodes' ports under the OSS
    clustering policy) and HTTPS (Entra ID tokens, Application Insights)."""
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
    if redis_port is not None and redis_cluster:  # endPort: GA in Kubernetes 1.25
        low, high = OSS_CLUSTER_NODE_PORTS
        egress.append({"ports": [{"protocol": "TCP", "port": low, "endPort": high}]})
    return {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": APP}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                    for ns in (INGRESS_NAMESPACE, SCRAPER_NAMESPACE)
                ],
                "ports": [{"protocol": "TCP", "port": port}],
            }
        ],
        "egress": egress,
    }
