"""AKS as one target: the cluster (>= 12 vCPUs, or an attached one) and the scoring workload on
it behind the Istio ingress gateway's HTTPS, scaled by KEDA, with the optional accelerator
(FPGA/GPU) deployment as a second endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from components.contract import AksWorkload, Interfaces, ScoringDeployment, TargetEntry
from components.platform import diagnostics as diag
from components.platform.bundle import Platform
from components.targets.aks.cluster import AksCluster, AksClusterArgs
from components.targets.aks.manifests import APP
from components.targets.aks.workload import AksScoring, AksScoringArgs

KEY = "aks"
ACCELERATOR_KEY = "aks_accelerator"  # the seeds' FPGA service, or GPU


@dataclass(frozen=True)
class Aks:
    cluster: AksCluster
    scoring: AksScoring
    attached: bool  # an existing cluster: not ours to change (no diagnostic setting on it)
    max_replicas: int | None  # the autoscaler's maximum; None without autoscaling

    def interfaces(self) -> Interfaces:
        c = self.cluster
        endpoints = {KEY: self.scoring.endpoint}
        if self.scoring.accelerator_endpoint is not None:
            endpoints[ACCELERATOR_KEY] = self.scoring.accelerator_endpoint
        return Interfaces(
            endpoints=endpoints,
            diagnostics=() if self.attached else tuple(diag.aks_cluster("aks", c.id)),
            alerts=(AksWorkload(c.id, APP, self.max_replicas),),
            outputs={
                "aks": {
                    "cluster_name": c.name,
                    "fqdn": c.fqdn,
                    "kubeconfig": c.kubeconfig,
                    "oidc_issuer_url": c.oidc_issuer_url,
                    "prometheus_query_endpoint": c.prometheus.query_endpoint,
                }
            },
        )


def build(d: ScoringDeployment, p: Platform) -> Aks:
    s = d.settings
    cluster = AksCluster(
        "aks",
        AksClusterArgs(
            s,
            d.resource_group_name,
            p.subscription_id,
            p.tenant_id,
            p.registry.id,
            p.monitoring.log_analytics_id,
            p.deployer_object_id,
            network=d.network,
        ),
    )
    scoring = AksScoring(
        "aks-scoring",
        AksScoringArgs(
            d,
            cluster.kubeconfig,
            cluster.name,
            cluster.ready,
            cluster.accelerator_pool,
            user_pool=cluster.user_pool,
            tenant_id=p.tenant_id,
            oidc_issuer_url=cluster.oidc_issuer_url,
            prometheus_query_endpoint=cluster.prometheus.query_endpoint,
            keda_client_id=cluster.prometheus.keda_identity.client_id,
        ),
    )
    autoscale = s.aks.autoscale
    return Aks(
        cluster,
        scoring,
        attached=bool(s.aks.existing_cluster_id),
        max_replicas=autoscale.effective_max_replicas if autoscale.enabled else None,
    )


TARGET: TargetEntry[Platform] = TargetEntry(KEY, lambda s: s.aks.enabled, build)
