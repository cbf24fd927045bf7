"""NVIDIA's device plugin: the DaemonSet that advertises ``nvidia.com/gpu`` on the GPU pool.

AKS installs the NVIDIA driver on GPU node sizes (``gpuProfile.driver: Install``, see
``cluster.py``) but not the device plugin; without it no node offers ``nvidia.com/gpu`` and the
GPU pods never schedule.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.targets.aks.cluster import ACCELERATOR_LABEL
from components.targets.aks.manifests import as_manifest, skips

NVIDIA_DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
NAME = "nvidia-device-plugin"
NAMESPACE = "kube-system"
DEVICE_PLUGINS_DIR = "/var/lib/kubelet/device-plugins"

# Each checkov skip carries its justification in the manifest itself.
_SKIPS = (
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
)


def nvidia_device_plugin(opts: pulumi.ResourceOptions) -> k8s.apps.v1.DaemonSet:
    """The plugin's DaemonSet, and a NetworkPolicy that shuts its pods off the network."""
    labels = {"app.kubernetes.io/name": NAME}
    # It talks to the kubelet over a host Unix socket only: no network in or out.
    k8s.networking.v1.NetworkPolicy(
        "nvidia-device-plugin-network-policy",
        metadata={"name": NAME, "namespace": NAMESPACE, "labels": labels},
        spec=as_manifest(
            {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress", "Egress"]}
        ),
        opts=opts,
    )
    return k8s.apps.v1.DaemonSet(
        "nvidia-device-plugin",
        metadata={
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": labels,
            "annotations": skips(*_SKIPS),
        },
        spec=as_manifest(
            {
                "selector": {"matchLabels": labels},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {"metadata": {"labels": labels}, "spec": plugin_pod_spec()},
            }
        ),
        opts=opts,
    )


def plugin_pod_spec() -> dict[str, Any]:
    """On every GPU node, system-critical, with the kubelet's device-plugins directory."""
    return {
        "priorityClassName": "system-node-critical",
        "automountServiceAccountToken": False,
        "nodeSelector": {ACCELERATOR_LABEL: "gpu"},
        "tolerations": [
            {"key": ACCELERATOR_LABEL, "operator": "Exists", "effect": "NoSchedule"},
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
        ],
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": NAME,
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
                "volumeMounts": [{"name": "device-plugin", "mountPath": DEVICE_PLUGINS_DIR}],
            }
        ],
        "volumes": [
            {
                "name": "device-plugin",
                "hostPath": {"path": DEVICE_PLUGINS_DIR, "type": "Directory"},
            }
        ],
    }
