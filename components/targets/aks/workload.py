"""The scoring service on AKS: the Kubernetes side, applied through the cluster's Entra kubeconfig.

In one namespace (Pod Security ``restricted`` enforced):

* a **Secret** with the scoring keys (``SCORING_AUTH_KEYS``, checked by the host as
  ``Authorization: Bearer <key>``, as Azure ML's AKS web services did) and the Redis password;
* the scoring **Deployment**: the image by digest (a new digest is a new pod template, so
  ``pulumi up`` rolls it out: the seeds' ``service.update``), a RollingUpdate that never drops
  below the current capacity, CPU/memory requests and limits, liveness ``/``, readiness ``/ready``
  and a startup probe for slow ``init()``, non-root with a read-only root filesystem (``/tmp`` is
  an ``emptyDir``), no service-account token, spread across nodes;
* a **Service** of type LoadBalancer with an Azure DNS label: the endpoint is
  ``http://<label>.<region>.cloudapp.azure.com/score``, known before the IP is (see
  "Why LoadBalancer" below);
* a **HorizontalPodAutoscaler** (``autoscaling/v2``) with the seeds' numbers: min/max replicas,
  CPU target utilisation, scale up at once (window 0 s), scale down after 60 s; the maximum is
  raised to what the seeds' formula plans for ``autoscaleTargetRps``;
* a **PodDisruptionBudget** (``maxUnavailable: 1``, so node drains and upgrades always progress,
  even at one replica) and a **NetworkPolicy** (ingress only to the scoring port; egress only to
  DNS, Redis and HTTPS);
* with the accelerator on: a second Deployment (node selector + toleration of the tainted
  accelerator pool, ``nvidia.com/gpu: 1`` for GPU), its own Service, PDB and endpoint, and for
  GPU the NVIDIA device plugin DaemonSet that advertises ``nvidia.com/gpu``.

Why LoadBalancer and not an ingress with TLS: the seeds' AKS web service was a plain HTTP
endpoint with key auth unless a certificate was supplied; TLS on AKS needs a DNS name you own and
a certificate (Key Vault + the app routing add-on, or cert-manager with Let's Encrypt), which this
program cannot mint on its own. The Service is the honest default; put an ingress with TLS (or
Application Gateway for Containers) in front when you have the certificate, and until then treat
the key as protection against casual use only, not against an on-path observer.

FPGA: Project Brainwave (``Standard_PB6s``) ran only through Azure ML SDK v1's
``AccelContainerImage`` with Microsoft's own runtime and device plugin, never published for
plain Kubernetes. The FPGA variant here schedules the scoring image onto the PB6s pool (node
selector + toleration) so a Brainwave-enabled image can run there, but requests no extended
resource: there is no public FPGA device plugin to advertise one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contract import (
    AUTH_BEARER_KEY,
    LIVENESS_PATH,
    READINESS_PATH,
    Endpoint,
    ScoringDeployment,
    ScoringTarget,
)
from components.targets.aks.cluster import ACCELERATOR_LABEL, ACCELERATOR_TAINT_EFFECT
from components.targets.aks.settings import aks_service_dns_label

APP = "scoring"
RUN_AS = 10001  # a high UID/GID that clashes with no host user
NVIDIA_DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
CHECKOV_SKIP = "checkov.io/skip"


@dataclass(frozen=True)
class AksScoringArgs:
    deployment: ScoringDeployment
    kubeconfig: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    # Role assignments the Kubernetes API calls need first (the deployer's cluster role).
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)
    # The accelerator node pool, when there is one (its pods wait for its nodes).
    accelerator_pool: pulumi.Resource | None = None


def _manifest(value: Mapping[str, Any]) -> Any:
    """A spec in manifest form (camelCase dicts), as the SDK accepts it; typed loosely because
    the SDK's TypedDicts do not accept dicts assembled by helpers."""
    return value


def _labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "mlscore",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def _selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component}


def _skips(*checks: tuple[str, str]) -> dict[str, str]:
    """checkov skip annotations: ``CKV_K8S_n: reason`` pairs, each with its justification."""
    return {CHECKOV_SKIP + str(i + 1): f"{cid}={why}" for i, (cid, why) in enumerate(checks)}


# Each checkov skip carries its justification in the manifest itself.
_SCORING_SKIPS = (
    (
        "CKV_K8S_35",
        "the scoring host reads SCORING_AUTH_KEYS and REDIS_PASSWORD from its environment "
        "(the contract of every target); the values come from a Kubernetes Secret, never plain",
    ),
)


def pod_spec(
    d: ScoringDeployment,
    component: str,
    secret_name: pulumi.Input[str],
    *,
    accelerator: str | None = None,
) -> dict[str, Any]:
    """The scoring pod: the same container in every variant, only scheduling differs."""
    s = d.settings
    port = s.scoring.port
    # AKS pods do not run as the pull identity (no workload identity): the cache's key, if any.
    cache_env, cache_key = d.cache_env(signs_in_as=None)
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in {**d.runtime_env(), **cache_env}.items()
    ]
    env.append(
        {
            "name": "SCORING_AUTH_KEYS",
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "SCORING_AUTH_KEYS"}},
        }
    )
    if cache_key is not None:
        env.append(
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "REDIS_PASSWORD"}},
            }
        )
    cpu, memory = s.aks.cpu_millicores, s.aks.memory_mib
    limits: dict[str, str] = {"cpu": f"{2 * cpu}m", "memory": f"{memory}Mi"}
    if accelerator == "gpu":
        limits["nvidia.com/gpu"] = "1"
    probe = {"port": "http", "scheme": "HTTP"}
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
        "containers": [
            {
                "name": APP,
                "image": d.image,
                # Always: the kubelet re-checks the pull right (AcrPull) for every new pod; with
                # a digest it never pulls different bytes.
                "imagePullPolicy": "Always",
                "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
                "env": env,
                "resources": {
                    "requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
                    "limits": limits,
                },
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
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                # ScheduleAnyway: more replicas than nodes still schedule (the HPA may go far
                # past the node count); the scheduler only prefers the spread.
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": _selector(component)},
            }
        ],
        "nodeSelector": {"kubernetes.io/os": "linux"},
    }
    if accelerator is not None:
        spec["nodeSelector"] = {**spec["nodeSelector"], ACCELERATOR_LABEL: accelerator}
        spec["tolerations"] = [
            {
                "key": ACCELERATOR_LABEL,
                "operator": "Equal",
                "value": accelerator,
                "effect": ACCELERATOR_TAINT_EFFECT,
            }
        ]
        if accelerator == "gpu":  # AKS also taints GPU nodes it labels this way on some images
            spec["tolerations"].append(
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            )
    return spec


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


class AksScoring(ScoringTarget):
    """The scoring workload in the cluster; ``endpoint`` (and ``accelerator_endpoint``)."""

    accelerator_endpoint: Endpoint | None

    def __init__(self, name: str, args: AksScoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:targets:AksScoring", name, None, opts)
        d = args.deployment
        s = d.settings
        self.provider = k8s.Provider(
            "aks",
            kubeconfig=args.kubeconfig,
            delete_unreachable=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.provider)
        namespace_name = f"{s.naming.prefix}-scoring"

        self.namespace = k8s.core.v1.Namespace(
            "namespace",
            metadata={
                "name": namespace_name,
                "labels": {
                    "app.kubernetes.io/part-of": "mlscore",
                    # Pod Security admission: the strictest profile, enforced.
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
            opts=k8s_opts,
        )
        ns = self.namespace.metadata.apply(lambda m: m.name or namespace_name)

        secret_data: dict[str, pulumi.Input[str]] = {
            "SCORING_AUTH_KEYS": pulumi.Output.concat(
                d.scoring_keys[0].value, ",", d.scoring_keys[1].value
            )
        }
        _, cache_key = d.cache_env(signs_in_as=None)
        if cache_key is not None:
            secret_data["REDIS_PASSWORD"] = cache_key.value
        # egress to Redis only when the pods use it
        redis_port = d.cache.port if d.cache is not None and cache_key is not None else None
        self.secret = k8s.core.v1.Secret(
            "scoring-secrets",
            metadata={"name": f"{APP}-secrets", "namespace": ns, "labels": _labels("cpu")},
            type="Opaque",
            string_data={k: pulumi.Output.secret(v) for k, v in secret_data.items()},
            opts=k8s_opts,
        )
        secret_name = self.secret.metadata.apply(lambda m: m.name or f"{APP}-secrets")

        self.service_account = k8s.core.v1.ServiceAccount(
            "service-account",
            metadata={"name": APP, "namespace": ns, "labels": _labels("cpu")},
            automount_service_account_token=False,
            opts=k8s_opts,
        )

        autoscale = s.aks.autoscale
        self.deployment = self._deployment(
            "deployment",
            APP,
            ns,
            pod_spec(d, "cpu", secret_name),
            "cpu",
            replicas=None if autoscale.enabled else autoscale.min_replicas,
            after=[self.service_account],
            opts=k8s_opts,
        )
        label = aks_service_dns_label(s.naming)
        self.service = self._service("service", APP, ns, label, "cpu", k8s_opts)
        self._pdb("pdb", APP, ns, "cpu", k8s_opts)

        if autoscale.enabled:
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                "hpa",
                metadata={"name": APP, "namespace": ns, "labels": _labels("cpu")},
                spec=_manifest(
                    {
                        "scaleTargetRef": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": APP,
                        },
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
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=self.provider, depends_on=[self.deployment]
                ),
            )

        self.network_policy = k8s.networking.v1.NetworkPolicy(
            "network-policy",
            metadata={"name": APP, "namespace": ns, "labels": _labels("cpu")},
            spec=_manifest(network_policy_spec(s.scoring.port, redis_port)),
            opts=k8s_opts,
        )

        base = pulumi.Output.concat("http://", label, ".", s.location, ".cloudapp.azure.com")
        self.endpoint = Endpoint.for_host(
            base,
            AUTH_BEARER_KEY,
            key=d.scoring_keys[0].value,
            cluster=args.cluster_name,
            namespace=ns,
            ip=_ingress_ip(self.service),
        )

        self.accelerator_endpoint = None
        acc = s.accelerator
        if acc.enabled:
            acc_name = f"{APP}-{acc.kind}"
            after: list[pulumi.Resource] = [self.service_account]
            if args.accelerator_pool is not None:
                after.append(args.accelerator_pool)
            if acc.kind == "gpu":
                after.append(self._nvidia_device_plugin(k8s_opts))
            self.accelerator_deployment = self._deployment(
                "accelerator-deployment",
                acc_name,
                ns,
                pod_spec(d, acc.kind, secret_name, accelerator=acc.kind),
                acc.kind,
                # One pod per accelerator node: the pool has a fixed size, no HPA.
                replicas=acc.node_count,
                after=after,
                opts=k8s_opts,
            )
            acc_label = f"{label}-{acc.kind}"
            self.accelerator_service = self._service(
                "accelerator-service", acc_name, ns, acc_label, acc.kind, k8s_opts
            )
            self._pdb("accelerator-pdb", acc_name, ns, acc.kind, k8s_opts)
            acc_base = pulumi.Output.concat(
                "http://", acc_label, ".", s.location, ".cloudapp.azure.com"
            )
            self.accelerator_endpoint = Endpoint.for_host(
                acc_base,
                AUTH_BEARER_KEY,
                key=d.scoring_keys[0].value,
                cluster=args.cluster_name,
                namespace=ns,
                accelerator=acc.kind,
                vm_size=acc.vm_size,
                ip=_ingress_ip(self.accelerator_service),
            )

        outputs: dict[str, Any] = {"namespace": ns}
        if self.accelerator_endpoint is not None:
            outputs["accelerator_endpoint"] = self.accelerator_endpoint.to_output()
        self._finish(self.endpoint, **outputs)

    # --- helpers --------------------------------------------------------------------------------
    def _deployment(
        self,
        logical: str,
        name: str,
        ns: pulumi.Input[str],
        spec: Mapping[str, Any],
        component: str,
        *,
        replicas: int | None,
        after: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions,
    ) -> k8s.apps.v1.Deployment:
        skips = _SCORING_SKIPS
        deployment_spec: dict[str, Any] = {
            "selector": {"matchLabels": _selector(component)},
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 600,
            "strategy": {
                "type": "RollingUpdate",
                # Never below the current capacity during a rollout: one extra pod at a time.
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": _labels(component)},
                "spec": dict(spec),
            },
        }
        if replicas is not None:  # with an HPA the replica count is the HPA's alone
            deployment_spec["replicas"] = replicas
        return k8s.apps.v1.Deployment(
            logical,
            metadata={
                "name": name,
                "namespace": ns,
                "labels": _labels(component),
                "annotations": _skips(*skips),
            },
            spec=_manifest(deployment_spec),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(after))),
        )

    def _service(
        self,
        logical: str,
        name: str,
        ns: pulumi.Input[str],
        dns_label: str,
        component: str,
        opts: pulumi.ResourceOptions,
    ) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            logical,
            metadata={
                "name": name,
                "namespace": ns,
                "labels": _labels(component),
                "annotations": {
                    # <label>.<region>.cloudapp.azure.com on the Service's public IP.
                    "service.beta.kubernetes.io/azure-dns-label-name": dns_label,
                    # Azure LB health probe on the readiness path, not a bare TCP connect.
                    "service.beta.kubernetes.io/azure-load-balancer-health-probe-request-path": (
                        READINESS_PATH
                    ),
                },
            },
            spec=_manifest(
                {
                    "type": "LoadBalancer",
                    # Local: no second hop between nodes, and the client IP reaches the pod.
                    "externalTrafficPolicy": "Local",
                    "selector": _selector(component),
                    "ports": [
                        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
                    ],
                }
            ),
            opts=opts,
        )

    def _pdb(
        self,
        logical: str,
        name: str,
        ns: pulumi.Input[str],
        component: str,
        opts: pulumi.ResourceOptions,
    ) -> k8s.policy.v1.PodDisruptionBudget:
        return k8s.policy.v1.PodDisruptionBudget(
            logical,
            metadata={"name": name, "namespace": ns, "labels": _labels(component)},
            spec=_manifest(
                {
                    # maxUnavailable, not minAvailable: at one replica minAvailable 1 would block
                    # every node drain (AKS upgrades would stall); this allows one pod at a time.
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": _selector(component)},
                    "unhealthyPodEvictionPolicy": "AlwaysAllow",
                }
            ),
            opts=opts,
        )

    def _nvidia_device_plugin(self, opts: pulumi.ResourceOptions) -> k8s.apps.v1.DaemonSet:
        """NVIDIA's device plugin: advertises ``nvidia.com/gpu`` on the accelerator nodes."""
        labels = {"app.kubernetes.io/name": "nvidia-device-plugin"}
        # It talks to the kubelet over a host Unix socket only: no network in or out.
        k8s.networking.v1.NetworkPolicy(
            "nvidia-device-plugin-network-policy",
            metadata={"name": "nvidia-device-plugin", "namespace": "kube-system", "labels": labels},
            spec=_manifest(
                {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress", "Egress"]}
            ),
            opts=opts,
        )
        return k8s.apps.v1.DaemonSet(
            "nvidia-device-plugin",
            metadata={
                "name": "nvidia-device-plugin",
                "namespace": "kube-system",
                "labels": labels,
                "annotations": _skips(
                    (
                        "CKV_K8S_43",
                        "NVIDIA publishes the plugin by tag; pinned to a release tag, the digest "
                        "is not known offline",
                    ),
                    (
                        "CKV_K8S_8",
                        "the device plugin is a kubelet gRPC registration; it has no HTTP "
                        "endpoint to probe and the kubelet restarts it when it exits",
                    ),
                    ("CKV_K8S_9", "same as CKV_K8S_8: no endpoint for a readiness probe"),
                    (
                        "CKV_K8S_40",
                        "the plugin runs as root to write its socket to the kubelet's "
                        "device-plugins directory (a host path owned by root)",
                    ),
                    ("CKV_K8S_23", "same as CKV_K8S_40: root is needed for the kubelet socket"),
                ),
            },
            spec=_manifest(
                {
                    "selector": {"matchLabels": labels},
                    "updateStrategy": {"type": "RollingUpdate"},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "priorityClassName": "system-node-critical",
                            "automountServiceAccountToken": False,
                            "nodeSelector": {ACCELERATOR_LABEL: "gpu"},
                            "tolerations": [
                                {
                                    "key": ACCELERATOR_LABEL,
                                    "operator": "Exists",
                                    "effect": "NoSchedule",
                                },
                                {
                                    "key": "nvidia.com/gpu",
                                    "operator": "Exists",
                                    "effect": "NoSchedule",
                                },
                                {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            ],
                            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                            "containers": [
                                {
                                    "name": "nvidia-device-plugin",
                                    "image": NVIDIA_DEVICE_PLUGIN_IMAGE,
                                    "imagePullPolicy": "Always",
                                    "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                                    "resources": {
                                        "requests": {"cpu": "10m", "memory": "32Mi"},
                                        "limits": {"cpu": "100m", "memory": "128Mi"},
                                    },
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                    "volumeMounts": [
                                        {
                                            "name": "device-plugin",
                                            "mountPath": "/var/lib/kubelet/device-plugins",
                                        }
                                    ],
                                }
                            ],
                            "volumes": [
                                {
                                    "name": "device-plugin",
                                    "hostPath": {
                                        "path": "/var/lib/kubelet/device-plugins",
                                        "type": "Directory",
                                    },
                                }
                            ],
                        },
                    },
                }
            ),
            opts=opts,
        )


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


def _ingress_ip(service: k8s.core.v1.Service) -> pulumi.Output[str]:
    def first(status: Any) -> str:
        lb = getattr(status, "load_balancer", None)
        for ingress in getattr(lb, "ingress", None) or []:
            if getattr(ingress, "ip", None):
                return str(ingress.ip)
        return ""

    return service.status.apply(first)
