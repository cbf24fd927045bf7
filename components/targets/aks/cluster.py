"""The AKS cluster of the seeds' production web service (or an existing one, attached by ID).

Created cluster:

* **Pools.** AKS needs one system pool when the cluster is created, so it is inline in the
  ``ManagedCluster``; it is tainted ``CriticalAddonsOnly`` and runs only system pods. The user pool
  that runs the scoring pods, and the opt-in accelerator pool, are separate ``AgentPool``
  resources: a pool's VM size cannot change in place, so a new size is a new pool beside the old
  one. The user pool runs the cluster autoscaler (min ``aksNodeCount``, max ``aksMaxNodeCount``).
  Azure Linux 3 on the system and user pools; Ubuntu on the accelerator pool (the image the
  NVIDIA driver install of AKS and the Brainwave-era FPGA nodes target).
* **Identity and access.** Entra ID integration (managed AAD) with **Azure RBAC for Kubernetes
  authorization** and local accounts off: who may do what in the cluster is an Azure role
  assignment, granted by this same program (the deployer gets *Azure Kubernetes Service RBAC
  Cluster Admin* so ``pulumi up`` can apply the workload), reviewed with the rest of the
  subscription's access, and there is no static admin kubeconfig to leak. Kubernetes RBAC would
  need a ClusterRoleBinding created with admin credentials first, i.e. local accounts on.
* **Registry pull.** The kubelet identity AKS creates gets AcrPull on the registry; no image pull
  secret exists.
* **Network.** Azure CNI overlay with the Cilium dataplane, which is also the network policy
  engine (AKS's current recommendation; Calico and Azure NPM are the older engines).
* **Monitoring.** Container Insights (the ``omsagent`` add-on) to the Log Analytics workspace,
  authenticated with its managed identity (``useAADAuth``); Azure Managed Prometheus for the
  scoring pods' in-flight gauge that KEDA scales on (prometheus.py).
* **Add-ons of the workload** (profiles.py): the Secrets Store CSI driver with rotation, the
  Istio add-on's external ingress gateway, KEDA; the OIDC issuer and workload identity on.
* **Nodes** (nodes.py): availability zones, ephemeral OS disks where the size allows, max pods,
  encryption at host (checked against the subscription's feature registration first).
* **Credentials.** ``listManagedClusterUserCredentials`` returns an Entra ID kubeconfig whose
  ``kubelogin`` exec plugin is set to sign in the way ``aksKubeloginMode`` says (Azure CLI on a
  workstation, workload identity in CI). It is a secret Output.

Attached cluster (``aksExistingClusterId``): looked up, its kubelet identity gets AcrPull, the
accelerator pool (if enabled) is added to it, and its vCPUs are checked at deploy time (a
warning: its size is only known to Azure).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.containerservice as cs
import yaml

from components.config.sizes import SIZES
from components.contract import ROLE_ACR_PULL, NetworkRef, role_definition_id
from components.providers.kube_access import KubeAccess
from components.settings import Settings
from components.targets.aks import profiles
from components.targets.aks.insights import container_insights
from components.targets.aks.network import ControlPlane, api_server_access, pool_network
from components.targets.aks.profiles import SYSTEM_POOL, SYSTEM_TAINT, USER_POOL
from components.targets.aks.prometheus import ManagedPrometheus, managed_prometheus
from components.targets.aks.settings import MIN_AKS_VCPUS, versions

__all__ = ["SYSTEM_POOL", "SYSTEM_TAINT", "USER_POOL", "AksCluster", "AksClusterArgs"]

# Azure built-in role: full access to Kubernetes objects through Azure RBAC for Kubernetes.
ROLE_AKS_RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"

# What the program does first in the cluster (workload.py): the reviews the readiness wait asks.
FIRST_CALLS = (
    {"verb": "create", "group": "", "resource": "namespaces"},
    {"verb": "create", "group": "apps", "resource": "deployments"},
)

# The Kubernetes minor the rendered manifests are validated against when aksKubernetesVersion is
# empty (AKS picks): the oldest one in support at the clock's date (settings/versions.py).

# The accelerator pool is tainted so that only pods that tolerate it land there, and labelled so
# that the accelerator Deployment can select it (see workload.py).
ACCELERATOR_LABEL = "mlscore.io/accelerator"
ACCELERATOR_TAINT_EFFECT = "NoSchedule"

_CLUSTER_ID = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.ContainerService/managedClusters/(?P<name>[^/]+)",
    re.IGNORECASE,
)


def kubernetes_minor(version: str, at: date) -> str:
    """``1.35.2`` -> ``1.35``; empty -> the oldest minor AKS supports on ``at``."""
    return ".".join(version.split(".")[:2]) if version else versions.default_minor(at)


def parse_cluster_id(cluster_id: str) -> tuple[str, str]:
    """(resource group, cluster name) of an AKS resource ID."""
    match = _CLUSTER_ID.fullmatch(cluster_id.strip())
    if not match:
        raise ValueError(f"not an AKS resource ID: {cluster_id!r}")
    return match["rg"], match["name"]


def accelerator_pool_name(kind: str) -> str:
    return "gpu" if kind == "gpu" else "fpga"


def accelerator_taint(kind: str) -> str:
    return f"{ACCELERATOR_LABEL}={kind}:{ACCELERATOR_TAINT_EFFECT}"


def use_kubelogin(kubeconfig: str, login: str) -> str:
    """The Entra ID kubeconfig with its kubelogin exec plugin set to ``--login <login>``.

    AKS returns ``kubelogin get-token ... --login devicecode``: interactive, so unusable in
    ``pulumi up`` on CI. For non-interactive modes the public client's ``--client-id`` is dropped
    (Azure CLI, workload identity and managed identity bring their own identity).
    """
    doc = yaml.safe_load(kubeconfig)
    for user in doc.get("users") or []:
        exec_ = (user.get("user") or {}).get("exec")
        if not exec_ or "kubelogin" not in str(exec_.get("command", "")):
            continue
        args = [str(a) for a in exec_.get("args") or []]
        out: list[str] = []
        skip = False
        for i, arg in enumerate(args):
            if skip:
                skip = False
                continue
            if arg in ("--login", "-l") or (
                arg == "--client-id" and login not in ("devicecode", "spn")
            ):
                skip = i + 1 < len(args)
                continue
            out.append(arg)
        exec_["args"] = [*out, "--login", login]
    return yaml.safe_dump(doc, sort_keys=False)


def api_target(kubeconfig: str) -> dict[str, str]:
    """The API server, its CA and the Entra server application ID (kubelogin's ``--server-id``)
    of the kubeconfig's current cluster."""
    doc = yaml.safe_load(kubeconfig) or {}
    cluster = ((doc.get("clusters") or [{}])[0]).get("cluster") or {}
    server_id = ""
    for user in doc.get("users") or []:
        args = [str(a) for a in (((user.get("user") or {}).get("exec") or {}).get("args") or [])]
        if "--server-id" in args[:-1]:
            server_id = args[args.index("--server-id") + 1]
    return {
        "server": str(cluster.get("server") or ""),
        "ca_data": str(cluster.get("certificate-authority-data") or ""),
        "server_id": server_id,
    }


def _kubeconfig(result: Any, login: str) -> str:
    configs = result.kubeconfigs or []
    if not configs:
        raise ValueError("AKS returned no kubeconfig for the cluster user")
    return use_kubelogin(base64.b64decode(configs[0].value).decode(), login)


def cluster_vcpus(pools: list[Any] | None) -> tuple[int, list[str]]:
    """vCPUs of an existing cluster's non-system pools (count or autoscaler minimum), and the
    VM sizes the size table does not know."""
    total, unknown = 0, []
    for pool in pools or []:
        mode, size = getattr(pool, "mode", None), getattr(pool, "vm_size", "") or ""
        if mode == "System" and (getattr(pool, "node_taints", None) or []):
            continue  # a tainted system pool runs no scoring pods
        count = getattr(pool, "min_count", None) or getattr(pool, "count", None) or 0
        if size in SIZES:
            total += count * SIZES[size].vcpus
        else:
            unknown.append(size)
    return total, unknown


@dataclass(frozen=True)
class AksClusterArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    registry_id: pulumi.Input[str]
    log_analytics_workspace_id: pulumi.Input[str]
    deployer_object_id: pulumi.Input[str]
    # The VNet under network isolation: nodes on its aks-nodes subnet (aks/network.py).
    network: NetworkRef | None = None


class AksCluster(pulumi.ComponentResource):
    """The cluster: ``name``, ``id``, ``fqdn``, ``kubeconfig`` (secret) and ``grants`` (what the
    workload's Kubernetes calls must wait for: the kubelet's AcrPull and :class:`KubeAccess`, the
    bounded wait until the deployer's AKS RBAC role works in the API)."""

    name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    grants: tuple[pulumi.Resource, ...]
    oidc_issuer_url: pulumi.Output[str]
    prometheus: ManagedPrometheus

    def __init__(self, name: str, args: AksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlscore:aks:Cluster", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.accelerator_pool: cs.AgentPool | None = None
        self.user_pool: cs.AgentPool | None = None  # a created cluster's scoring pool

        if s.aks.existing_cluster_id:
            resource_group_name, kubelet_object_id = self._attach(s.aks.existing_cluster_id)
            deployer_grant: pulumi.Input[str] = ""  # attached: the deployer's access is given
            cluster_name = parse_cluster_id(s.aks.existing_cluster_id)[1]
        else:
            resource_group_name = args.resource_group_name
            encryption, feature_checks = profiles.host_encryption(s, args.subscription_id, self)
            pools = pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=feature_checks)
            )
            cluster = self._create(args, encryption, pools)
            self.name = cluster.name
            self.id = cluster.id
            self.fqdn = cluster.fqdn.apply(lambda f: f or "")
            self.oidc_issuer_url = cluster.oidc_issuer_profile.apply(_issuer_url)
            kubelet_object_id = cluster.identity_profile.apply(_kubelet_object_id)
            deployer_grant = self._deployer_grant(args, cluster, child).id
            self.user_pool = self._user_pool(args, cluster, encryption, feature_checks)
            self.insights = container_insights(
                s, resource_group_name, cluster, args.log_analytics_workspace_id, child
            )
            cluster_name = s.naming.dashed("aks")
        # The pods' metrics for KEDA, in the stack's resource group (also for an attached cluster).
        self.prometheus = managed_prometheus(
            s,
            args.resource_group_name,
            args.subscription_id,
            self.id,
            cluster_name,
            self.oidc_issuer_url,
            child,
        )

        self.acr_pull = self._kubelet_acr_pull(args, kubelet_object_id, child)
        if s.accelerator.enabled:
            self.accelerator_pool = self._accelerator_pool(
                s, resource_group_name, args.network, child
            )

        self.resource_group_name = pulumi.Output.from_input(resource_group_name)
        self.kubeconfig = self._user_kubeconfig(resource_group_name, s.aks.kubelogin_mode)
        self.api_access = self._api_access(deployer_grant, child)
        self.grants = (self.acr_pull, self.api_access)
        # What every Kubernetes API call waits for: the grants. The Deployments also wait for a
        # created cluster's user pool (AksScoringArgs.user_pool), not the namespace, secrets and
        # services, which the API takes while the pool is still being created.
        self.ready: tuple[pulumi.Resource, ...] = self.grants
        self.register_outputs(
            {
                "name": self.name,
                "id": self.id,
                "fqdn": self.fqdn,
                "kubeconfig": self.kubeconfig,
                "oidc_issuer_url": self.oidc_issuer_url,
                "prometheus_query_endpoint": self.prometheus.query_endpoint,
            }
        )

    def _attach(self, cluster_id: str) -> tuple[str, pulumi.Output[str]]:
        """An existing cluster: looked up, its size checked. (resource group, kubelet object ID)"""
        rg_name, cluster_name = parse_cluster_id(cluster_id)
        found = cs.get_managed_cluster_output(
            resource_group_name=rg_name, resource_name=cluster_name, opts=child_invoke(self)
        )
        self.name = pulumi.Output.from_input(cluster_name)
        self.id = found.id
        self.fqdn = found.fqdn.apply(lambda f: f or "")
        kubelet_object_id = found.identity_profile.apply(_kubelet_object_id)
        # Workload identity needs the attached cluster's OIDC issuer (az aks update
        # --enable-oidc-issuer --enable-workload-identity).
        self.oidc_issuer_url = found.oidc_issuer_profile.apply(_issuer_url)
        found.agent_pool_profiles.apply(lambda pools: _warn_if_small(cluster_name, pools))
        return rg_name, kubelet_object_id

    def _deployer_grant(
        self, args: AksClusterArgs, cluster: cs.ManagedCluster, child: pulumi.ResourceOptions
    ) -> authorization.RoleAssignment:
        # The deployer applies the workload through Azure RBAC for Kubernetes.
        return authorization.RoleAssignment(
            "deployer-cluster-admin",
            principal_id=args.deployer_object_id,
            principal_type=args.settings.deployer_principal_type,
            role_definition_id=role_definition_id(
                args.subscription_id, ROLE_AKS_RBAC_CLUSTER_ADMIN
            ),
            scope=cluster.id,
            opts=child,
        )

    def _api_access(
        self, deployer_grant: pulumi.Input[str], child: pulumi.ResourceOptions
    ) -> KubeAccess:
        """Readiness, not a race: the first Kubernetes call waits (boundedly) until the
        deployer's new AKS RBAC role answers ``allowed`` (see components/providers/kube_access)."""
        target = self.kubeconfig.apply(api_target)
        return KubeAccess(
            "deployer-api-access",
            server=target.apply(lambda t: t["server"]),
            ca_data=target.apply(lambda t: t["ca_data"]),
            server_id=target.apply(lambda t: t["server_id"]),
            reviews=FIRST_CALLS,
            role_assignment_id=deployer_grant,
            opts=child,
        )

    def _user_pool(
        self,
        args: AksClusterArgs,
        cluster: cs.ManagedCluster,
        encryption: pulumi.Input[bool],
        after: list[pulumi.Resource],
    ) -> cs.AgentPool:
        """The pool of the scoring pods (profiles.user_pool_args)."""
        return cs.AgentPool(
            "user-pool",
            resource_group_name=args.resource_group_name,
            resource_name_=cluster.name,
            **profiles.user_pool_args(args.settings, encryption),
            **pool_network(args.network),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["count"], depends_on=after),
        )

    def _kubelet_acr_pull(
        self,
        args: AksClusterArgs,
        kubelet_object_id: pulumi.Input[str],
        child: pulumi.ResourceOptions,
    ) -> authorization.RoleAssignment:
        # The kubelet pulls the scoring image with its managed identity: AcrPull, no secret.
        return authorization.RoleAssignment(
            "kubelet-acrpull",
            principal_id=kubelet_object_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition_id(args.subscription_id, ROLE_ACR_PULL),
            scope=args.registry_id,
            opts=child,
        )

    def _accelerator_pool(
        self,
        s: Settings,
        resource_group_name: pulumi.Input[str],
        network: NetworkRef | None,
        child: pulumi.ResourceOptions,
    ) -> cs.AgentPool:
        """The tainted, labelled GPU or FPGA pool, of a fixed size."""
        acc = s.accelerator
        return cs.AgentPool(
            "accelerator-pool",
            agent_pool_name=accelerator_pool_name(acc.kind),
            resource_group_name=resource_group_name,
            resource_name_=self.name,
            mode=cs.AgentPoolMode.USER,
            vm_size=acc.vm_size,
            os_type=cs.OSType.LINUX,
            os_sku=cs.OSSKU.UBUNTU,
            type=cs.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
            count=acc.node_count,
            enable_auto_scaling=False,
            max_pods=s.aks.nodes.max_pods,
            node_labels={ACCELERATOR_LABEL: acc.kind},
            node_taints=[accelerator_taint(acc.kind)],
            # AKS installs the NVIDIA driver on GPU sizes; the device plugin that advertises
            # nvidia.com/gpu is deployed by device_plugins.py.
            gpu_profile=cs.GPUProfileArgs(driver=cs.GPUDriver.INSTALL)
            if acc.kind == "gpu"
            else None,
            orchestrator_version=s.aks.kubernetes_version or None,
            **pool_network(network),
            tags=dict(s.tags),
            opts=child,
        )

    def _user_kubeconfig(
        self, resource_group_name: pulumi.Input[str], login: str
    ) -> pulumi.Output[str]:
        """The Entra ID kubeconfig of the cluster user, set to sign in as ``login`` (secret)."""
        credentials = cs.list_managed_cluster_user_credentials_output(
            resource_group_name=resource_group_name,
            resource_name=self.name,
            opts=child_invoke(self),
        )
        return pulumi.Output.secret(credentials.apply(lambda r: _kubeconfig(r, login)))

    def _create(
        self, args: AksClusterArgs, encryption: pulumi.Input[bool], child: pulumi.ResourceOptions
    ) -> cs.ManagedCluster:
        s = args.settings
        control_plane = ControlPlane(
            s, args.resource_group_name, args.subscription_id, args.network, child
        )
        return cs.ManagedCluster(
            "cluster",
            resource_name_=s.naming.dashed("aks"),
            resource_group_name=args.resource_group_name,
            location=s.location,
            dns_prefix=s.naming.dashed("aks"),
            kubernetes_version=s.aks.kubernetes_version or None,
            sku=cs.ManagedClusterSKUArgs(
                name=cs.ManagedClusterSKUName.BASE, tier=cs.ManagedClusterSKUTier(s.aks.sku_tier)
            ),
            identity=control_plane.args,  # user-assigned under isolation (aks/network.py)
            enable_rbac=True,
            aad_profile=cs.ManagedClusterAADProfileArgs(
                managed=True, enable_azure_rbac=True, tenant_id=args.tenant_id
            ),
            disable_local_accounts=True,
            # AKS needs one system pool at creation: inline, tainted for system pods only.
            agent_pool_profiles=[profiles.system_pool(s, encryption, **pool_network(args.network))],
            network_profile=profiles.network_profile(),
            api_server_access_profile=api_server_access(s),
            addon_profiles=profiles.addon_profiles(s, args.log_analytics_workspace_id),
            service_mesh_profile=profiles.service_mesh_profile(s),
            workload_auto_scaler_profile=profiles.workload_autoscaler(s),
            azure_monitor_profile=profiles.azure_monitor_profile(),
            auto_upgrade_profile=cs.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=cs.UpgradeChannel.PATCH,
                node_os_upgrade_channel=cs.NodeOSUpgradeChannel.NODE_IMAGE,
            ),
            oidc_issuer_profile=cs.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=cs.ManagedClusterSecurityProfileArgs(
                workload_identity=cs.ManagedClusterSecurityProfileWorkloadIdentityArgs(
                    enabled=True
                ),
                image_cleaner=cs.ManagedClusterSecurityProfileImageCleanerArgs(
                    enabled=True, interval_hours=48
                ),
            ),
            tags=dict(s.tags),
            # The first node joins the subnet as the control plane: its grant comes first.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=control_plane.depends_on)
            ),
        )


def child_invoke(parent: pulumi.Resource) -> pulumi.InvokeOutputOptions:
    return pulumi.InvokeOutputOptions(parent=parent)


def _issuer_url(profile: Any) -> str:
    url = getattr(profile, "issuer_url", None) if profile is not None else None
    if url is None and isinstance(profile, dict):
        url = profile.get("issuerURL") or profile.get("issuer_url")
    return url or ""


def _kubelet_object_id(profile: Any) -> str:
    identity = (profile or {}).get("kubeletidentity")
    object_id = getattr(identity, "object_id", None) if identity is not None else None
    if object_id is None and isinstance(identity, dict):
        object_id = identity.get("objectId") or identity.get("object_id")
    return object_id or ""


def _warn_if_small(cluster: str, pools: list[Any] | None) -> None:
    total, unknown = cluster_vcpus(pools)
    if unknown:
        pulumi.log.warn(
            f"AKS cluster {cluster}: VM sizes {', '.join(unknown)} are not in "
            "components/config/sizes.py; "
            f"cannot check Azure ML's >= {MIN_AKS_VCPUS} vCPUs rule"
        )
    elif total < MIN_AKS_VCPUS:
        pulumi.log.warn(
            f"AKS cluster {cluster} has {total} vCPUs for workloads; Azure ML needs >= "
            f"{MIN_AKS_VCPUS} vCPUs: scale its user pool up"
        )
