"""The created cluster's profiles: node pools, network, add-ons, service mesh, autoscaler and
Azure Monitor (pure builders; cluster.py declares the resources with them).

Add-ons and profiles the scoring workload relies on (each documented where it is built):

* ``azureKeyvaultSecretsProvider``: the Secrets Store CSI driver with the Azure Key Vault
  provider, rotation on (https://learn.microsoft.com/azure/aks/csi-secrets-store-configuration-options
  "enableSecretRotation" / "rotationPollInterval"): it mounts the scoring keys and the TLS
  certificate and keeps their synced Kubernetes Secrets current.
* ``serviceMeshProfile``: the Istio add-on with its external ingress gateway
  (https://learn.microsoft.com/azure/aks/istio-deploy-ingress), the managed ingress that
  terminates TLS (see ingress.py for why this one).
* ``workloadAutoScalerProfile.keda``: the KEDA add-on
  (https://learn.microsoft.com/azure/aks/keda-deploy-add-on-arm).
* ``azureMonitorProfile.metrics``: Azure Managed Prometheus' agent (ama-metrics); its data
  collection rule is prometheus.py.
* no ``kubeDashboard`` add-on: the current API (2025-09-01 in the installed SDK) no longer has
  it (AKS removed the dashboard add-on for Kubernetes 1.19+,
  https://learn.microsoft.com/azure/aks/kubernetes-dashboard), so it cannot be on.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native.containerservice as cs

from components.platform.network_settings import AKS_POD_CIDR, AKS_SERVICE_CIDR, aks_dns_service_ip
from components.providers.feature_check import FeatureRegistration
from components.settings import Settings
from components.targets.aks.settings.nodes import ENCRYPTION_AT_HOST_FEATURE, ENCRYPTION_AT_HOST_FIX

SYSTEM_POOL = "system"
USER_POOL = "scoring"
SYSTEM_TAINT = "CriticalAddonsOnly=true:NoSchedule"


def host_encryption(
    s: Settings, subscription_id: pulumi.Input[str], parent: pulumi.Resource
) -> tuple[bool, list[pulumi.Resource]]:
    """``enableEncryptionAtHost`` of the pools, and what the pools must wait for: the check that
    the subscription's ``Microsoft.Compute/EncryptionAtHost`` feature is Registered. Without it
    Azure refuses the pools deep into a 10-minute create; the check stops first, with the fix
    (components/providers/feature_check.py, also for a feature never registered)."""
    if not s.aks.nodes.encryption_at_host:
        return False, []
    namespace, feature = ENCRYPTION_AT_HOST_FEATURE
    check = FeatureRegistration(
        "encryption-at-host-feature",
        subscription_id=subscription_id,
        namespace=namespace,
        feature=feature,
        needed_by="mlscore:aksEncryptionAtHost is true",
        fix=ENCRYPTION_AT_HOST_FIX,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return True, [check]


def _pool_hardening(s: Settings, vm_size: str, encryption: pulumi.Input[bool]) -> dict[str, Any]:
    """Zones, OS disk, max pods and encryption at host of a system or user pool (nodes.py)."""
    nodes = s.aks.nodes
    disk = nodes.disk(vm_size)
    return {
        "availability_zones": list(nodes.zones) or None,
        "os_disk_type": cs.OSDiskType(disk.os_disk_type),
        "os_disk_size_gb": disk.os_disk_size_gb,
        "max_pods": nodes.max_pods,
        "enable_encryption_at_host": encryption,
    }


def system_pool(
    s: Settings, encryption: pulumi.Input[bool], **network: Any
) -> cs.ManagedClusterAgentPoolProfileArgs:
    """The system pool; ``network``: its subnet and node public IP (aks/network.py)."""
    return cs.ManagedClusterAgentPoolProfileArgs(
        **network,
        name=SYSTEM_POOL,
        mode=cs.AgentPoolMode.SYSTEM,
        vm_size=s.aks.system_vm_size,
        count=s.aks.system_node_count,
        os_type=cs.OSType.LINUX,
        os_sku=cs.OSSKU.AZURE_LINUX3,
        type=cs.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
        node_taints=[SYSTEM_TAINT],
        upgrade_settings=cs.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
        **_pool_hardening(s, s.aks.system_vm_size, encryption),
    )


def user_pool_args(s: Settings, encryption: pulumi.Input[bool]) -> dict[str, Any]:
    """The pool of the scoring pods, autoscaled between aksNodeCount and aksMaxNodeCount."""
    return {
        "agent_pool_name": USER_POOL,
        "mode": cs.AgentPoolMode.USER,
        "vm_size": s.aks.vm_size,
        "os_type": cs.OSType.LINUX,
        "os_sku": cs.OSSKU.AZURE_LINUX3,
        "type": cs.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
        "enable_auto_scaling": True,
        "count": s.aks.node_count,
        "min_count": s.aks.node_count,
        "max_count": s.aks.max_node_count,
        "orchestrator_version": s.aks.kubernetes_version or None,
        "upgrade_settings": cs.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
        "node_labels": {"mlscore.io/pool": USER_POOL},
        "tags": dict(s.tags),
        **_pool_hardening(s, s.aks.vm_size, encryption),
    }


def network_profile() -> cs.ContainerServiceNetworkProfileArgs:
    """Azure CNI overlay; Cilium is both the dataplane and the network policy engine.

    The pod and service CIDRs and the DNS service IP are network_settings.py's, which checks
    them against the VNet (the service CIDR and DNS IP are AKS's defaults, which the SDK sends
    anyway: https://learn.microsoft.com/azure/aks/azure-cni-overlay#ip-address-planning)."""
    return cs.ContainerServiceNetworkProfileArgs(
        network_plugin=cs.NetworkPlugin.AZURE,
        network_plugin_mode=cs.NetworkPluginMode.OVERLAY,
        network_dataplane=cs.NetworkDataplane.CILIUM,
        network_policy=cs.NetworkPolicy.CILIUM,
        load_balancer_sku=cs.LoadBalancerSku.STANDARD,
        pod_cidr=AKS_POD_CIDR,
        service_cidr=AKS_SERVICE_CIDR,
        dns_service_ip=aks_dns_service_ip(),
    )


def addon_profiles(
    s: Settings, log_analytics_workspace_id: pulumi.Input[str]
) -> dict[str, cs.ManagedClusterAddonProfileArgs]:
    """Container Insights (managed identity), Azure Policy, and the Key Vault provider for the
    Secrets Store CSI driver with rotation."""
    return {
        "omsagent": cs.ManagedClusterAddonProfileArgs(
            enabled=True,
            config={
                "logAnalyticsWorkspaceResourceID": log_analytics_workspace_id,
                "useAADAuth": "true",
            },
        ),
        "azurepolicy": cs.ManagedClusterAddonProfileArgs(enabled=True),
        "azureKeyvaultSecretsProvider": cs.ManagedClusterAddonProfileArgs(
            enabled=True,
            config={
                "enableSecretRotation": "true",
                "rotationPollInterval": s.aks.ingress.rotation_poll_interval,
            },
        ),
    }


def service_mesh_profile(s: Settings) -> cs.ServiceMeshProfileArgs:
    """The Istio add-on at the configured revision (none: the add-on's default, see
    settings/versions.py), with its external ingress gateway only."""
    revision = s.aks.ingress.istio_revision
    return cs.ServiceMeshProfileArgs(
        mode=cs.ServiceMeshMode.ISTIO,
        istio=cs.IstioServiceMeshArgs(
            revisions=[revision] if revision else None,
            components=cs.IstioComponentsArgs(
                ingress_gateways=[
                    cs.IstioIngressGatewayArgs(
                        enabled=True, mode=cs.IstioIngressGatewayMode.EXTERNAL
                    )
                ]
            ),
        ),
    )


def workload_autoscaler(s: Settings) -> cs.ManagedClusterWorkloadAutoScalerProfileArgs:
    return cs.ManagedClusterWorkloadAutoScalerProfileArgs(
        keda=cs.ManagedClusterWorkloadAutoScalerProfileKedaArgs(enabled=s.aks.autoscale.enabled)
    )


def azure_monitor_profile() -> cs.ManagedClusterAzureMonitorProfileArgs:
    return cs.ManagedClusterAzureMonitorProfileArgs(
        metrics=cs.ManagedClusterAzureMonitorProfileMetricsArgs(enabled=True)
    )
