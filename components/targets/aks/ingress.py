"""TLS into the cluster through a managed AKS ingress: the Istio add-on's external ingress gateway.

**Why this one** (support status on 2026-12-01):

* The application routing add-on with **NGINX**: its support ended in November 2026 (Ingress
  NGINX's maintenance ended in March 2026; Microsoft patched the add-on's NGINX "through
  November 2026": https://learn.microsoft.com/azure/aks/app-routing-nginx-to-gateway-api-migration).
  Not for a new production service.
* The application routing add-on's **Gateway API** implementation
  (https://learn.microsoft.com/azure/aks/app-routing-gateway-api; announced in preview March
  2026, https://blog.aks.azure.com/2026/03/18/app-routing-gateway-api): the intended successor,
  but it is not in the ManagedCluster API of the installed SDK (2025-09-01: no Gateway API
  installation in ``ingressProfile``), so this program cannot switch it on.
* **Application Gateway for Containers**: generally available, but a separate Azure resource
  with a subnet delegated to it in the cluster's virtual network (this cluster's network is
  AKS-managed), and its ALB controller add-on needs the preview features
  ``ManagedGatewayAPIPreview`` / ``ApplicationLoadBalancerPreview``
  (https://learn.microsoft.com/azure/application-gateway/for-containers/quickstart-deploy-application-gateway-for-containers-alb-controller-addon).
* The **Istio add-on**: generally available, in the SDK's API (``serviceMeshProfile``), with a
  managed external ingress gateway and Istio's own ``Gateway``/``VirtualService`` API (its
  Kubernetes Gateway API support is still preview: https://learn.microsoft.com/azure/aks/istio-gateway-api).
  Microsoft documents TLS on it with a Key Vault certificate synced by the Secrets Store CSI
  driver (https://learn.microsoft.com/azure/aks/istio-secure-gateway). Chosen; no sidecars are
  injected (the gateway alone is used).

**What is declared.** In the gateway's namespace ``aks-istio-ingress`` (the add-on's): a
``Gateway`` selecting ``istio: aks-istio-ingressgateway-external`` with an HTTPS server for
``aksTlsHost`` (``tls.mode: SIMPLE``, ``minProtocolVersion: TLSV1_2``, ``credentialName`` = the
synced Secret) and, only with ``aksAllowHttp``, a plain HTTP server; no server on port 80
otherwise, so plain HTTP finds no listener. The certificate's ``SecretProviderClass`` and the
small ``tls-sync`` Deployment that mounts it (the driver syncs a Secret only while a pod mounts
it; two replicas and a PDB keep one mounted through node drains). Istio reads
``credentialName`` Secrets through SDS and follows their updates, so a certificate renewed in
Key Vault is served after the next rotation poll with no redeploy. In the scoring namespace a
``VirtualService`` routes the host's client paths (``CLIENT_PATHS``: not ``/status`` nor
``/metrics``) to the ClusterIP Service (the accelerator Deployment under ``/<kind>/``).

Dev without a domain (``aksTlsEnabled: false`` + ``aksAllowHttp: true``, dev only) serves plain
HTTP on the gateway's IP. A ``<label>.<region>.cloudapp.azure.com`` name with cert-manager is not
offered: the add-on reverts customisations of its gateway Service
(https://learn.microsoft.com/azure/aks/istio-deploy-ingress, "Customizations to IP address ...
aren't supported yet"), so no DNS label can be put on it.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.contract import LIVENESS_PATH, READINESS_PATH, SCORE_PATH, SWAGGER_PATH
from components.targets.aks.manifests import (
    APP,
    INGRESS_NAMESPACE,
    RUN_AS,
    WORKLOAD_IDENTITY_LABEL,
    csi_volume,
)
from components.targets.aks.secret_store import TLS_SECRET
from components.targets.aks.settings import IngressSettings

ISTIO_API = "networking.istio.io/v1"
GATEWAY_SELECTOR = {"istio": "aks-istio-ingressgateway-external"}
GATEWAY_SERVICE = "aks-istio-ingressgateway-external"
GATEWAY_NAME = APP
TLS_SYNC = f"{APP}-tls-sync"
TLS_MOUNT = "/mnt/tls"
MIN_TLS = "TLSV1_2"


def gateway_spec(ingress: IngressSettings) -> dict[str, Any]:
    servers: list[dict[str, Any]] = []
    if ingress.tls:
        servers.append(
            {
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": [ingress.host],
                "tls": {
                    "mode": "SIMPLE",
                    "credentialName": TLS_SECRET,
                    "minProtocolVersion": MIN_TLS,
                },
            }
        )
    if ingress.allow_http:
        servers.append(
            {
                "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                "hosts": [ingress.host or "*"],
            }
        )
    return {"selector": dict(GATEWAY_SELECTOR), "servers": servers}


# What clients of the endpoint use (the ``endpoints`` output: scoring_uri, swagger_uri,
# health_uri) and the liveness path Azure ML's AKS web services answered at ``/``. Not ``/status``
# (it names the model, the entry script's path and the cache host, and pings the cache on every
# call: an unauthenticated amplifier) nor ``/metrics``: neither is for clients. Managed Prometheus
# scrapes ``/metrics`` from the pods directly (the ``prometheus.io/*`` pod annotations, the
# NetworkPolicy lets kube-system in), never through the gateway, and the kubelet probes the pods
# directly too. A request no route matches gets the gateway's (Envoy's) 404 and never reaches a
# pod (route rules: https://istio.io/latest/docs/reference/config/networking/virtual-service/).
CLIENT_PATHS = (SCORE_PATH, SWAGGER_PATH, READINESS_PATH, LIVENESS_PATH)


def virtual_service_spec(
    ingress: IngressSettings, namespace: str, accelerator: str | None
) -> dict[str, Any]:
    """The host (or any host, plain HTTP in dev) to the scoring Service for the client paths
    alone (exact matches: the query string is not part of the match); the accelerator
    Deployment's Service for the same paths under ``/<kind>``, rewritten to the path the host
    serves (with an exact match ``rewrite.uri`` replaces the whole path)."""
    http: list[dict[str, Any]] = []
    if accelerator is not None:
        http += [
            {
                "name": f"{accelerator}-{_route_name(path)}",
                "match": [{"uri": {"exact": f"/{accelerator}{path}"}}],
                "rewrite": {"uri": path},
                "route": [_destination(f"{APP}-{accelerator}", namespace)],
            }
            for path in CLIENT_PATHS
        ]
    http.append(
        {
            "name": APP,
            "match": [{"uri": {"exact": path}} for path in CLIENT_PATHS],
            "route": [_destination(APP, namespace)],
        }
    )
    return {
        "hosts": [ingress.host or "*"],
        "gateways": [f"{INGRESS_NAMESPACE}/{GATEWAY_NAME}"],
        "http": http,
    }


def _route_name(path: str) -> str:
    """``/swagger.json`` -> ``swagger``; ``/`` -> ``live``."""
    return path.strip("/").split(".")[0] or "live"


def _destination(service: str, namespace: str) -> dict[str, Any]:
    return {
        "destination": {
            "host": f"{service}.{namespace}.svc.cluster.local",
            "port": {"number": 80},
        }
    }


def tls_sync_labels() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": TLS_SYNC,
        "app.kubernetes.io/part-of": "mlscore",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def tls_sync_spec(image: pulumi.Input[str], certificate_name: str) -> dict[str, Any]:
    """Two idle pods that keep the certificate's CSI volume mounted. They run the scoring image
    (already in the registry, pulled by digest with AcrPull) idle; ready once the certificate
    file is there."""
    probe = {"exec": {"command": ["test", "-s", f"{TLS_MOUNT}/{certificate_name}"]}}
    container = {
        "name": "tls-sync",
        "image": image,
        "imagePullPolicy": "Always",
        "command": ["python", "-c", "import signal; signal.pause()"],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "50m", "memory": "64Mi"},
        },
        "readinessProbe": {**probe, "periodSeconds": 30},
        "livenessProbe": {**probe, "periodSeconds": 60, "failureThreshold": 5},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True}],
    }
    selector = {"app.kubernetes.io/name": TLS_SYNC}
    return {
        "replicas": 2,
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": {**tls_sync_labels(), WORKLOAD_IDENTITY_LABEL: "true"}},
            "spec": {
                "serviceAccountName": TLS_SYNC,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUN_AS,
                    "runAsGroup": RUN_AS,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": [csi_volume("tls", TLS_SECRET)],
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": selector},
                    }
                ],
                "nodeSelector": {"kubernetes.io/os": "linux"},
            },
        },
    }


def tls_sync_network_policy_spec() -> dict[str, Any]:
    """The sync pods serve nothing and call nothing (the CSI driver on the node reads Key
    Vault): no traffic in or out."""
    return {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": TLS_SYNC}},
        "policyTypes": ["Ingress", "Egress"],
    }


def tls_sync_pdb_spec() -> dict[str, Any]:
    return {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": TLS_SYNC}}}
