"""The scoring service on AKS: the Kubernetes side, applied through the cluster's Entra kubeconfig.

In the scoring namespace (Pod Security ``restricted`` enforced):

* a **ServiceAccount** federated with the pull identity (Azure Workload Identity: the cluster's
  OIDC issuer, a federated identity credential on the identity for
  ``system:serviceaccount:<ns>:scoring``, the ``azure.workload.identity/client-id`` annotation,
  pods labelled ``azure.workload.identity/use: "true"``,
  https://learn.microsoft.com/azure/aks/workload-identity-deploy-cluster). The pods sign in to
  the cache with Entra ID as that identity (azure-identity's ManagedIdentityCredential takes the
  workload identity token when the webhook's variables are set); no cache key exists anywhere;
* a **SecretProviderClass** for the scoring keys and Application Insights' connection string
  (secret_store.py; the connection string is a Key Vault secret of its own, as for App
  Service): the Secrets Store CSI driver reads them from Key Vault as the pull identity, mounts
  them and syncs them into the ``scoring-keys-g<generation>`` Secret the host's
  ``SCORING_AUTH_KEYS`` and telemetry are read from. Pulumi never writes a secret into the
  cluster;
* **key rotation reaches the pods**: the keys are env vars, which a Secret's update never
  changes in a running container (the driver's rotation updates the mount and the Secret, "the
  pod needs to be restarted to get the latest secret as environment variable":
  https://learn.microsoft.com/azure/aks/csi-secrets-store-configuration-options). So the pod
  template carries the key generation (``rotation(settings).generation``, as App Service's
  ``SCORING_ROTATION_GENERATION``: an annotation and the generation's Secret name), the first
  ``pulumi up`` of a new period rolls the pods after Key Vault holds the new keys (the Deployment
  waits for the SecretProviderClass, which waits for the Key Vault secrets), and each new pod
  reads the new keys (manifests.keys_secret). Reading the mounted files in the host instead
  would need no rollout, but the host's contract in every target is ``SCORING_AUTH_KEYS``;
* the scoring **Deployment**: the image by digest (a new digest is a new pod template, so
  ``pulumi up`` rolls it out: the seeds' ``service.update``), a RollingUpdate that never drops
  below the current capacity, requests and limits, liveness ``/``, readiness ``/ready``, a
  startup probe for slow ``init()``, non-root with a read-only root filesystem, no service
  account token, spread across nodes, annotated for managed Prometheus' scraping of ``/metrics``;
* a **ClusterIP Service** behind the Istio ingress gateway (ingress.py: ``Gateway`` with TLS 1.2+
  and the Key Vault certificate, ``VirtualService``);
* autoscaling (scaling.py): KEDA's **ScaledObject** and **TriggerAuthentication** on the
  in-flight gauge; KEDA owns the only HPA;
* a **PodDisruptionBudget** (``maxUnavailable: 1``) and a **NetworkPolicy** (ingress only from
  the gateway and the metrics agent to the scoring port; egress only to DNS, the cache and HTTPS);
* with the accelerator on: a second Deployment (node selector + toleration of the tainted
  accelerator pool, ``nvidia.com/gpu: 1`` for GPU), its Service, PDB and endpoint under
  ``/<kind>/``, and for GPU the NVIDIA device plugin DaemonSet.

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

from components.contract import AUTH_BEARER_KEY, Endpoint, ScoringDeployment, ScoringTarget
from components.platform.scoring_keys import CONTENT_CONNECTION, rotation, vault_secret
from components.providers.gateway_address import GatewayAddress
from components.targets.aks import certificate, scaling, secret_store
from components.targets.aks import ingress as gw
from components.targets.aks.cluster import api_target
from components.targets.aks.device_plugins import nvidia_device_plugin
from components.targets.aks.identity import federate_pull_identity
from components.targets.aks.manifests import (
    APP,
    INGRESS_NAMESPACE,
    INSIGHTS_ENV,
    KEY_ENV,
    KEYS_CLASS,
    SCORING_SKIPS,
    SCRAPER_NAMESPACE,
    WORKLOAD_IDENTITY_CLIENT_ID,
    as_manifest,
    deployment_spec,
    keys_secret,
    labels,
    namespace_metadata,
    network_policy_spec,
    pdb_spec,
    pod_metadata,
    pod_spec,
    service_spec,
    skips,
)

METRICS_SETTINGS = "ama-metrics-settings-configmap"


@dataclass(frozen=True)
class AksScoringArgs:
    deployment: ScoringDeployment
    kubeconfig: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    # What the Kubernetes API calls need first: the deployer's cluster role and AcrPull.
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)
    # The accelerator node pool, when there is one (its pods wait for its nodes).
    accelerator_pool: pulumi.Resource | None = None
    # A created cluster's user pool: the scoring and tls-sync pods run only there (the system
    # pool is tainted CriticalAddonsOnly, https://learn.microsoft.com/azure/aks/use-system-pools),
    # so their Deployments wait for its nodes; on a first run pulumi-kubernetes' rollout await
    # would otherwise time out while the pool is still being created.
    user_pool: pulumi.Resource | None = None
    tenant_id: pulumi.Input[str] = ""
    # Workload identity and KEDA (AksCluster: oidc_issuer_url, prometheus).
    oidc_issuer_url: pulumi.Input[str] = ""
    prometheus_query_endpoint: pulumi.Input[str] = ""
    keda_client_id: pulumi.Input[str] = ""


class AksScoring(ScoringTarget):
    """The scoring workload in the cluster; ``endpoint`` (and ``accelerator_endpoint``)."""

    accelerator_endpoint: Endpoint | None

    def __init__(self, name: str, args: AksScoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:targets:AksScoring", name, None, opts)
        d = args.deployment
        s = d.settings
        self.provider = self._kubernetes_provider(args)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.provider)
        ns = f"{s.naming.prefix}-scoring"
        self.namespace = k8s.core.v1.Namespace(
            "namespace", metadata=as_manifest(namespace_metadata(ns)), opts=k8s_opts
        )
        after_ns = pulumi.ResourceOptions.merge(
            k8s_opts, pulumi.ResourceOptions(depends_on=[self.namespace])
        )
        tls = s.aks.ingress.tls
        self.credentials = federate_pull_identity(
            d.identity, args.oidc_issuer_url, ns, gw.TLS_SYNC if tls else None, self
        )
        self.service_account = self._service_account(APP, ns, d.identity.client_id, after_ns)
        self.key_generation = rotation(s).generation
        self.keys = self._keys_provider(args, ns, after_ns)

        autoscale = s.aks.autoscale
        self.deployment = self._deployment(
            "deployment",
            APP,
            ns,
            pod_spec(d, "cpu", self.key_generation),
            "cpu",
            replicas=None if autoscale.enabled else autoscale.min_replicas,
            after=[self.service_account, self.keys, *self.credentials, *_pool(args.user_pool)],
            opts=after_ns,
        )
        self.service = self._service("service", APP, ns, "cpu", after_ns)
        self._pdb("pdb", APP, ns, "cpu", after_ns)
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            "network-policy",
            metadata={"name": APP, "namespace": ns, "labels": labels("cpu")},
            spec=as_manifest(
                network_policy_spec(
                    s.scoring.port,
                    self._redis_port(d),
                    redis_cluster=d.cache is not None and d.cache.cluster,
                )
            ),
            opts=after_ns,
        )
        self.metrics_settings = k8s.core.v1.ConfigMap(
            "metrics-settings",
            metadata={"name": METRICS_SETTINGS, "namespace": SCRAPER_NAMESPACE},
            data=scaling.metrics_settings(ns),
            opts=k8s_opts,
        )
        if autoscale.enabled:
            self._autoscaler(args, ns, after_ns)
        self._ingress(args, ns, k8s_opts, after_ns)
        self.endpoint = self._endpoint(args, ns)

        self.accelerator_endpoint = None
        if s.accelerator.enabled:
            self.accelerator_endpoint = self._accelerator(args, ns, after_ns)

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

    @staticmethod
    def _redis_port(d: ScoringDeployment) -> int | None:
        cache_env, _ = d.cache_env(signs_in_as=d.identity.principal_id)
        return d.cache.port if d.cache is not None and cache_env else None

    def _service_account(
        self,
        name: str,
        ns: str,
        client_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
        logical: str = "service-account",
        component_labels: Mapping[str, str] | None = None,
    ) -> k8s.core.v1.ServiceAccount:
        return k8s.core.v1.ServiceAccount(
            logical,
            metadata={
                "name": name,
                "namespace": ns,
                "labels": dict(component_labels or labels("cpu")),
                "annotations": {WORKLOAD_IDENTITY_CLIENT_ID: client_id},
            },
            automount_service_account_token=False,
            opts=opts,
        )

    def _keys_provider(
        self, args: AksScoringArgs, ns: str, opts: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        """The class of the scoring keys and the telemetry connection string (a Key Vault secret
        renewed with the keys, like App Service's: its expiry follows the rotation)."""
        d = args.deployment
        schedule = rotation(d.settings)
        insights = vault_secret(
            "aks-appinsights-secret",
            "aks-appinsights-connection",
            d.app_insights_connection_string,
            d.resource_group_name,
            d.key_vault.name,
            pulumi.ResourceOptions(parent=self),
            expires=schedule.expires,
            content_type=CONTENT_CONNECTION,
        )
        primary, secondary = d.scoring_keys
        synced = [
            (secret_store.secret_name_of(r.uri), env)
            for r, env in zip((primary, secondary, insights), (*KEY_ENV, INSIGHTS_ENV), strict=True)
        ]
        return k8s.apiextensions.CustomResource(
            "scoring-keys",
            api_version=secret_store.PROVIDER_API,
            kind="SecretProviderClass",
            metadata={"name": KEYS_CLASS, "namespace": ns, "labels": labels("cpu")},
            spec=secret_store.keys_spec(
                keys_secret(self.key_generation),
                synced,
                d.identity.client_id,
                args.tenant_id,
                d.key_vault.name,
            ),
            opts=opts,
        )

    def _autoscaler(self, args: AksScoringArgs, ns: str, opts: pulumi.ResourceOptions) -> None:
        """KEDA's TriggerAuthentication and ScaledObject (its HPA is the only one)."""
        autoscale = args.deployment.settings.aks.autoscale
        auth_name = f"{APP}-prometheus"
        self.trigger_auth = k8s.apiextensions.CustomResource(
            "keda-trigger-auth",
            api_version=scaling.KEDA_API,
            kind="TriggerAuthentication",
            metadata={"name": auth_name, "namespace": ns, "labels": labels("cpu")},
            spec=scaling.trigger_authentication_spec(args.keda_client_id),
            opts=opts,
        )
        self.scaled_object = k8s.apiextensions.CustomResource(
            "keda-scaled-object",
            api_version=scaling.KEDA_API,
            kind="ScaledObject",
            metadata={"name": APP, "namespace": ns, "labels": labels("cpu")},
            spec=scaling.scaled_object_spec(
                autoscale, APP, ns, args.prometheus_query_endpoint, auth_name
            ),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[self.deployment, self.trigger_auth])
            ),
        )

    def _ingress(
        self,
        args: AksScoringArgs,
        ns: str,
        k8s_opts: pulumi.ResourceOptions,
        after_ns: pulumi.ResourceOptions,
    ) -> None:
        """The Gateway (and the TLS certificate's sync) in the gateway's namespace, the
        VirtualService beside the Service."""
        d = args.deployment
        ingress = d.settings.aks.ingress
        acc = d.settings.accelerator
        if ingress.tls:
            self._tls_sync(args, k8s_opts)
        self.gateway = k8s.apiextensions.CustomResource(
            "gateway",
            api_version=gw.ISTIO_API,
            kind="Gateway",
            metadata={"name": gw.GATEWAY_NAME, "namespace": INGRESS_NAMESPACE},
            spec=gw.gateway_spec(ingress),
            opts=k8s_opts,
        )
        self.virtual_service = k8s.apiextensions.CustomResource(
            "virtual-service",
            api_version=gw.ISTIO_API,
            kind="VirtualService",
            metadata={"name": APP, "namespace": ns, "labels": labels("cpu")},
            spec=gw.virtual_service_spec(ingress, ns, acc.kind if acc.enabled else None),
            opts=after_ns,
        )
        # The add-on's gateway Service: its public IP, for the DNS record of aksTlsHost, awaited
        # (boundedly) rather than read once: on a first run the add-on creates the Service and
        # its load balancer IP after the cluster (components/providers/gateway_address.py; not
        # a static IP of ours: the add-on reverts IP customizations).
        target = pulumi.Output.from_input(args.kubeconfig).apply(api_target)
        self.gateway_address = GatewayAddress(
            "ingress-gateway-address",
            server=target.apply(lambda t: t["server"]),
            ca_data=target.apply(lambda t: t["ca_data"]),
            server_id=target.apply(lambda t: t["server_id"]),
            namespace=INGRESS_NAMESPACE,
            service=gw.GATEWAY_SERVICE,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*args.after, *_pool(args.user_pool)]
            ),
        )

    def _tls_sync(self, args: AksScoringArgs, opts: pulumi.ResourceOptions) -> None:
        d = args.deployment
        cert = d.settings.aks.ingress.certificate_name
        self.tls_secret = certificate.store(
            d.settings.aks.ingress, d.resource_group_name, d.key_vault.name, self
        )
        meta = {"namespace": INGRESS_NAMESPACE, "labels": gw.tls_sync_labels()}
        self.tls_provider = k8s.apiextensions.CustomResource(
            "tls-certificate",
            api_version=secret_store.PROVIDER_API,
            kind="SecretProviderClass",
            metadata={"name": secret_store.TLS_SECRET, **meta},
            spec=secret_store.tls_spec(
                cert, d.identity.client_id, args.tenant_id, d.key_vault.name
            ),
            opts=opts,
        )
        account = self._service_account(
            gw.TLS_SYNC,
            INGRESS_NAMESPACE,
            d.identity.client_id,
            opts,
            logical="tls-sync-service-account",
            component_labels=gw.tls_sync_labels(),
        )
        self.tls_sync = k8s.apps.v1.Deployment(
            "tls-sync",
            metadata=as_manifest({"name": gw.TLS_SYNC, **meta}),
            spec=as_manifest(gw.tls_sync_spec(d.image, cert)),
            opts=pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    depends_on=[
                        self.tls_provider,
                        account,
                        self.tls_secret,
                        *self.credentials,
                        *_pool(args.user_pool),
                    ]
                ),
            ),
        )
        k8s.networking.v1.NetworkPolicy(
            "tls-sync-network-policy",
            metadata=as_manifest({"name": gw.TLS_SYNC, **meta}),
            spec=as_manifest(gw.tls_sync_network_policy_spec()),
            opts=opts,
        )
        k8s.policy.v1.PodDisruptionBudget(
            "tls-sync-pdb",
            metadata=as_manifest({"name": gw.TLS_SYNC, **meta}),
            spec=as_manifest(gw.tls_sync_pdb_spec()),
            opts=opts,
        )

    def _endpoint(self, args: AksScoringArgs, ns: str, path: str = "", **extra: Any) -> Endpoint:
        """``https://<aksTlsHost>`` (or, plain HTTP in dev, the host or the gateway's IP)."""
        d = args.deployment
        ingress = d.settings.aks.ingress
        ip = self.gateway_address.ip
        if ingress.tls:
            base: pulumi.Input[str] = f"https://{ingress.host}"
        elif ingress.host:
            base = f"http://{ingress.host}"
        else:
            base = pulumi.Output.concat("http://", ip)
        return Endpoint.for_host(
            pulumi.Output.concat(base, path),
            AUTH_BEARER_KEY,
            key=d.scoring_keys[0].value,
            tls=ingress.tls,
            cluster=args.cluster_name,
            namespace=ns,
            **extra,
            ingress_ip=ip,
        )

    def _accelerator(self, args: AksScoringArgs, ns: str, opts: pulumi.ResourceOptions) -> Endpoint:
        """The accelerator Deployment (and for GPU the device plugin), its Service and PDB."""
        d = args.deployment
        acc = d.settings.accelerator
        acc_name = f"{APP}-{acc.kind}"
        after: list[pulumi.Resource] = [self.service_account, self.keys, *self.credentials]
        if args.accelerator_pool is not None:
            after.append(args.accelerator_pool)
        if acc.kind == "gpu":
            after.append(
                nvidia_device_plugin(pulumi.ResourceOptions(parent=self, provider=self.provider))
            )
        self.accelerator_deployment = self._deployment(
            "accelerator-deployment",
            acc_name,
            ns,
            pod_spec(d, acc.kind, self.key_generation, accelerator=acc.kind),
            acc.kind,
            # One pod per accelerator node: the pool has a fixed size, no autoscaler.
            replicas=acc.node_count,
            after=after,
            opts=opts,
        )
        self.accelerator_service = self._service(
            "accelerator-service", acc_name, ns, acc.kind, opts
        )
        self._pdb("accelerator-pdb", acc_name, ns, acc.kind, opts)
        return self._endpoint(args, ns, f"/{acc.kind}", accelerator=acc.kind, vm_size=acc.vm_size)

    def _deployment(
        self,
        logical: str,
        name: str,
        ns: str,
        spec: Mapping[str, Any],
        component: str,
        *,
        replicas: int | None,
        after: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions,
    ) -> k8s.apps.v1.Deployment:
        port = self_port(spec)
        return k8s.apps.v1.Deployment(
            logical,
            metadata={
                "name": name,
                "namespace": ns,
                "labels": labels(component),
                "annotations": skips(*SCORING_SKIPS),
            },
            spec=as_manifest(
                deployment_spec(
                    spec, component, replicas, pod_metadata(component, port, self.key_generation)
                )
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(after))),
        )

    def _service(
        self, logical: str, name: str, ns: str, component: str, opts: pulumi.ResourceOptions
    ) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            logical,
            metadata={"name": name, "namespace": ns, "labels": labels(component)},
            spec=as_manifest(service_spec(component)),
            opts=opts,
        )

    def _pdb(
        self, logical: str, name: str, ns: str, component: str, opts: pulumi.ResourceOptions
    ) -> k8s.policy.v1.PodDisruptionBudget:
        return k8s.policy.v1.PodDisruptionBudget(
            logical,
            metadata={"name": name, "namespace": ns, "labels": labels(component)},
            spec=as_manifest(pdb_spec(component)),
            opts=opts,
        )


def self_port(spec: Mapping[str, Any]) -> int:
    """The scoring container's port (the one managed Prometheus scrapes)."""
    return int(spec["containers"][0]["ports"][0]["containerPort"])


def _pool(pool: pulumi.Resource | None) -> list[pulumi.Resource]:
    return [pool] if pool is not None else []
