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
    Endpoint,
    ScoringDeployment,
    ScoringTarget,
    SecretRef,
)
from components.targets.aks.device_plugins import nvidia_device_plugin
from components.targets.aks.manifests import (
    APP,
    SCORING_SKIPS,
    as_manifest,
    deployment_spec,
    hpa_spec,
    labels,
    namespace_metadata,
    network_policy_spec,
    pdb_spec,
    pod_spec,
    service_annotations,
    service_spec,
    skips,
)
from components.targets.aks.settings import AutoscaleSettings, aks_service_dns_label


@dataclass(frozen=True)
class AksScoringArgs:
    deployment: ScoringDeployment
    kubeconfig: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    # Role assignments the Kubernetes API calls need first (the deployer's cluster role).
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)
    # The accelerator node pool, when there is one (its pods wait for its nodes).
    accelerator_pool: pulumi.Resource | None = None


class AksScoring(ScoringTarget):
    """The scoring workload in the cluster; ``endpoint`` (and ``accelerator_endpoint``)."""

    accelerator_endpoint: Endpoint | None

    def __init__(self, name: str, args: AksScoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:targets:AksScoring", name, None, opts)
        d = args.deployment
        s = d.settings
        self.provider = self._kubernetes_provider(args)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.provider)
        namespace_name = f"{s.naming.prefix}-scoring"
        self.namespace = k8s.core.v1.Namespace(
            "namespace", metadata=as_manifest(namespace_metadata(namespace_name)), opts=k8s_opts
        )
        ns = self.namespace.metadata.apply(lambda m: m.name or namespace_name)
        _, cache_key = d.cache_env(signs_in_as=None)
        self.secret = self._secret(d, cache_key, ns, k8s_opts)
        secret_name = self.secret.metadata.apply(lambda m: m.name or f"{APP}-secrets")
        self.service_account = self._service_account(ns, k8s_opts)

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
            self.hpa = self._hpa(ns, autoscale)
        self.network_policy = self._network_policy(d, cache_key, ns, k8s_opts)
        self.endpoint = self._endpoint(args, ns, label, self.service)

        self.accelerator_endpoint = None
        if s.accelerator.enabled:
            self.accelerator_endpoint = self._accelerator(args, ns, secret_name, label, k8s_opts)

        outputs: dict[str, Any] = {"namespace": ns}
        if self.accelerator_endpoint is not None:
            outputs["accelerator_endpoint"] = self.accelerator_endpoint.to_output()
        self._finish(self.endpoint, **outputs)

    # --- helpers --------------------------------------------------------------------------------
    def _kubernetes_provider(self, args: AksScoringArgs) -> k8s.Provider:
        """The cluster's API through its Entra kubeconfig, once the deployer may use it."""
        return k8s.Provider(
            "aks",
            kubeconfig=args.kubeconfig,
            delete_unreachable=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )

    def _service_account(
        self, ns: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> k8s.core.v1.ServiceAccount:
        return k8s.core.v1.ServiceAccount(
            "service-account",
            metadata={"name": APP, "namespace": ns, "labels": labels("cpu")},
            automount_service_account_token=False,
            opts=opts,
        )

    def _network_policy(
        self,
        d: ScoringDeployment,
        cache_key: SecretRef | None,
        ns: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
    ) -> k8s.networking.v1.NetworkPolicy:
        # egress to Redis only when the pods use it
        redis_port = d.cache.port if d.cache is not None and cache_key is not None else None
        return k8s.networking.v1.NetworkPolicy(
            "network-policy",
            metadata={"name": APP, "namespace": ns, "labels": labels("cpu")},
            spec=as_manifest(network_policy_spec(d.settings.scoring.port, redis_port)),
            opts=opts,
        )

    def _secret(
        self,
        d: ScoringDeployment,
        cache_key: SecretRef | None,
        ns: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
    ) -> k8s.core.v1.Secret:
        """The scoring keys, and the Redis password when the pods sign in with it."""
        secret_data: dict[str, pulumi.Input[str]] = {
            "SCORING_AUTH_KEYS": pulumi.Output.concat(
                d.scoring_keys[0].value, ",", d.scoring_keys[1].value
            )
        }
        if cache_key is not None:
            secret_data["REDIS_PASSWORD"] = cache_key.value
        return k8s.core.v1.Secret(
            "scoring-secrets",
            metadata={"name": f"{APP}-secrets", "namespace": ns, "labels": labels("cpu")},
            type="Opaque",
            string_data={k: pulumi.Output.secret(v) for k, v in secret_data.items()},
            opts=opts,
        )

    def _hpa(
        self, ns: pulumi.Input[str], autoscale: AutoscaleSettings
    ) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
        return k8s.autoscaling.v2.HorizontalPodAutoscaler(
            "hpa",
            metadata={"name": APP, "namespace": ns, "labels": labels("cpu")},
            spec=as_manifest(hpa_spec(autoscale)),
            opts=pulumi.ResourceOptions(
                parent=self, provider=self.provider, depends_on=[self.deployment]
            ),
        )

    def _endpoint(
        self,
        args: AksScoringArgs,
        ns: pulumi.Input[str],
        dns_label: str,
        service: k8s.core.v1.Service,
        **extra: Any,
    ) -> Endpoint:
        """``http://<label>.<region>.cloudapp.azure.com``, known before the IP is."""
        d = args.deployment
        base = pulumi.Output.concat(
            "http://", dns_label, ".", d.settings.location, ".cloudapp.azure.com"
        )
        return Endpoint.for_host(
            base,
            AUTH_BEARER_KEY,
            key=d.scoring_keys[0].value,
            cluster=args.cluster_name,
            namespace=ns,
            **extra,
            ip=_ingress_ip(service),
        )

    def _accelerator(
        self,
        args: AksScoringArgs,
        ns: pulumi.Input[str],
        secret_name: pulumi.Input[str],
        label: str,
        opts: pulumi.ResourceOptions,
    ) -> Endpoint:
        """The accelerator Deployment (and for GPU the device plugin), its Service and PDB."""
        d = args.deployment
        acc = d.settings.accelerator
        acc_name = f"{APP}-{acc.kind}"
        after: list[pulumi.Resource] = [self.service_account]
        if args.accelerator_pool is not None:
            after.append(args.accelerator_pool)
        if acc.kind == "gpu":
            after.append(nvidia_device_plugin(opts))
        self.accelerator_deployment = self._deployment(
            "accelerator-deployment",
            acc_name,
            ns,
            pod_spec(d, acc.kind, secret_name, accelerator=acc.kind),
            acc.kind,
            # One pod per accelerator node: the pool has a fixed size, no HPA.
            replicas=acc.node_count,
            after=after,
            opts=opts,
        )
        acc_label = f"{label}-{acc.kind}"
        self.accelerator_service = self._service(
            "accelerator-service", acc_name, ns, acc_label, acc.kind, opts
        )
        self._pdb("accelerator-pdb", acc_name, ns, acc.kind, opts)
        return self._endpoint(
            args,
            ns,
            acc_label,
            self.accelerator_service,
            accelerator=acc.kind,
            vm_size=acc.vm_size,
        )

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
        return k8s.apps.v1.Deployment(
            logical,
            metadata={
                "name": name,
                "namespace": ns,
                "labels": labels(component),
                "annotations": skips(*SCORING_SKIPS),
            },
            spec=as_manifest(deployment_spec(spec, component, replicas)),
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
                "labels": labels(component),
                "annotations": service_annotations(dns_label),
            },
            spec=as_manifest(service_spec(component)),
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
            metadata={"name": name, "namespace": ns, "labels": labels(component)},
            spec=as_manifest(pdb_spec(component)),
            opts=opts,
        )


def _ingress_ip(service: k8s.core.v1.Service) -> pulumi.Output[str]:
    def first(status: Any) -> str:
        lb = getattr(status, "load_balancer", None)
        for ingress in getattr(lb, "ingress", None) or []:
            if getattr(ingress, "ip", None):
                return str(ingress.ip)
        return ""

    return service.status.apply(first)
