"""AKS target settings: the cluster (created or attached), the scoring workload's autoscaling,
and the accelerator (FPGA/GPU) node pool, with Azure ML's >= 12 vCPUs rule."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from components.config.naming import Naming
from components.config.reader import Reader
from components.config.sizes import FPGA_REGIONS, SIZES
from components.targets.aks.settings import versions
from components.targets.aks.settings.nodes import NodeSettings
from components.targets.aks.settings.nodes import read as read_nodes
from components.targets.aks.settings.pfx import Certificate
from components.targets.aks.settings.tls import read_certificate

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The settings' clock (looked up at each call: tests pass ``clock=`` or patch it)."""
    return datetime.now(UTC)


MIN_AKS_VCPUS = 12
KUBELOGIN_MODES = ("azurecli", "workloadidentity", "msi", "spn", "devicecode")
MAX_HPA_REPLICAS = 1000
# A host name: dot-separated labels of letters, digits and inner hyphens, a letter TLD (RFC 1123).
DNS_NAME = r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
# A Key Vault object name: 1-127 letters, digits and hyphens.
VAULT_OBJECT = r"[A-Za-z0-9-]{1,127}"
# The Istio add-on's revision, asm-<major>-<minor> (`az aks mesh get-revisions -l <region>`).
ISTIO_REVISION = r"asm-1-\d{2}"
DURATION = r"\d{1,3}[smh]"


def planned_max_replicas(
    target_rps: float, request_seconds: float, target_utilization: float, max_concurrent: int
) -> int:
    """The seeds' replica formula: ceil(rps x request seconds / utilisation / concurrency).

    ``target_utilization`` is a fraction (0.7 for 70%).
    """
    if target_rps <= 0 or request_seconds <= 0:
        raise ValueError("target_rps and request_seconds must be positive")
    if not 0 < target_utilization <= 1:
        raise ValueError("target_utilization is a fraction in (0, 1]")
    if max_concurrent < 1:
        raise ValueError("max_concurrent must be at least 1")
    return math.ceil(target_rps * request_seconds / target_utilization / max_concurrent)


@dataclass(frozen=True)
class AutoscaleSettings:
    enabled: bool
    min_replicas: int
    max_replicas: int
    target_utilization: int
    target_rps: int
    request_ms: int
    max_concurrent_per_container: int

    @property
    def planned_replicas(self) -> int | None:
        """Replicas the seeds' formula asks for at the target load, or None when no load is set."""
        if self.target_rps <= 0 or self.request_ms <= 0:
            return None
        return planned_max_replicas(
            self.target_rps,
            self.request_ms / 1000,
            self.target_utilization / 100,
            self.max_concurrent_per_container,
        )

    @property
    def effective_max_replicas(self) -> int:
        """The HPA maximum: the configured one, raised to the planned one when a load is set."""
        return max(self.max_replicas, self.planned_replicas or 0)

    @property
    def target_in_flight(self) -> float:
        """In-flight requests per replica KEDA aims at: the seeds' utilisation of a container's
        concurrency (maxConcurrentRequestsPerContainer x autoscaleTargetUtilization / 100)."""
        return self.max_concurrent_per_container * self.target_utilization / 100


@dataclass(frozen=True)
class IngressSettings:
    """How clients reach the scoring pods: the Istio add-on's external ingress gateway, HTTPS
    with a Key Vault certificate for ``host`` (see ingress.py)."""

    tls: bool = True
    host: str = ""  # the DNS name clients use; "" = any host (plain HTTP only)
    certificate_name: str = ""  # the secret in the workspace's key vault the gateway reads
    pfx_path: str = ""  # the PFX the program stores there (certificate.py)
    pfx_password: str = field(default="", repr=False)
    certificate: Certificate | None = field(default=None, repr=False)  # None: stand-in / off
    allow_http: bool = False  # plain HTTP on port 80 too (dev only)
    istio_revision: str = ""  # "": the add-on's default revision (settings/versions.py)
    # How often the Secrets Store CSI driver re-reads Key Vault (certificate and scoring keys).
    rotation_poll_interval: str = "2m"


@dataclass(frozen=True)
class AksSettings:
    enabled: bool
    existing_cluster_id: str
    kubernetes_version: str
    system_vm_size: str
    system_node_count: int
    vm_size: str
    node_count: int
    max_node_count: int
    autoscale: AutoscaleSettings
    # Scoring container: requests (limits are 2x CPU, equal memory; see workload.py).
    cpu_millicores: int = 500
    memory_mib: int = 1024
    # How the kubelogin exec plugin of the Entra ID kubeconfig signs in (azurecli, msi...).
    kubelogin_mode: str = "azurecli"
    # Control plane tier: Free (no SLA) or Standard (uptime SLA, for production).
    sku_tier: str = "Free"
    ingress: IngressSettings = field(default_factory=IngressSettings)
    nodes: NodeSettings = field(default_factory=NodeSettings)


@dataclass(frozen=True)
class AcceleratorSettings:
    enabled: bool
    kind: str
    vm_size: str
    node_count: int


def aks_service_dns_label(naming: Naming) -> str:
    """Azure DNS label of the AKS scoring Service's public IP (unique in the region)."""
    return naming.global_dashed("aks").lower()


def read(
    r: Reader, location: str, clock: Clock | None = None
) -> tuple[AksSettings, AcceleratorSettings]:
    now = (clock or utc_now)()
    aks = AksSettings(
        enabled=r.bool("aksEnabled"),
        existing_cluster_id=r.str("aksExistingClusterId"),
        kubernetes_version=r.str("aksKubernetesVersion"),
        system_vm_size=r.vm_size("aksSystemVmSize"),
        system_node_count=r.int_range("aksSystemNodeCount", 1, 100),
        vm_size=r.vm_size("aksVmSize"),
        node_count=r.int_range("aksNodeCount", 1, 1000),
        max_node_count=r.int_range("aksMaxNodeCount", 1, 1000),
        autoscale=_read_autoscale(r),
        cpu_millicores=r.int_range("aksCpuMillicores", 100, 64_000),
        memory_mib=r.int_range("aksMemoryMib", 128, 262_144),
        kubelogin_mode=r.choice("aksKubeloginMode", KUBELOGIN_MODES),
        sku_tier=r.choice("aksSkuTier", ("Free", "Standard", "Premium")),
        ingress=_read_ingress(r, r.bool("aksEnabled"), now),
    )
    creates = r.bool("aksEnabled") and not aks.existing_cluster_id
    aks = replace(
        aks,
        nodes=read_nodes(
            r,
            location,
            {"aksSystemVmSize": aks.system_vm_size, "aksVmSize": aks.vm_size},
            check=creates,
        ),
    )
    accelerator = AcceleratorSettings(
        enabled=r.bool("acceleratorEnabled"),
        kind=r.choice("acceleratorKind", ("gpu", "fpga")),
        vm_size=r.vm_size("acceleratorVmSize"),
        node_count=r.int_range("acceleratorNodeCount", 1, 100),
    )
    _check_cluster(r, aks)
    if creates and "aksKubernetesVersion" not in {k for p in r.problems for k in p.keys}:
        versions.check_kubernetes(r, aks.kubernetes_version, now)
    if aks.enabled and not aks.existing_cluster_id and aks.vm_size in SIZES:
        _check_vcpus(r, aks, accelerator)
    if accelerator.enabled:
        _check_accelerator(r, aks, accelerator, location)
    return aks, accelerator


def _read_autoscale(r: Reader) -> AutoscaleSettings:
    autoscale = AutoscaleSettings(
        enabled=r.bool("autoscaleEnabled"),
        min_replicas=r.int_range("autoscaleMinReplicas", 1, 1000),
        max_replicas=r.int_range("autoscaleMaxReplicas", 1, 1000),
        target_utilization=r.int_range("autoscaleTargetUtilization", 1, 100, "a percentage"),
        target_rps=r.int_range("autoscaleTargetRps", 0, 1_000_000),
        request_ms=r.int_range("autoscaleRequestMs", 0, 600_000),
        max_concurrent_per_container=r.int_range("maxConcurrentRequestsPerContainer", 1, 1000),
    )
    if autoscale.min_replicas > autoscale.max_replicas:
        r.fail(
            ("autoscaleMinReplicas", "autoscaleMaxReplicas"),
            f"{autoscale.min_replicas} > {autoscale.max_replicas}",
            "the minimum replica count is above the maximum",
            "raise mlscore:autoscaleMaxReplicas or lower mlscore:autoscaleMinReplicas",
        )
    if (autoscale.target_rps > 0) != (autoscale.request_ms > 0):
        r.fail(
            ("autoscaleTargetRps", "autoscaleRequestMs"),
            f"{autoscale.target_rps}, {autoscale.request_ms}",
            "replica planning needs both the target load and the request time",
            "set both (e.g. 20 rps and 10000 ms) or both to 0",
        )
    if 1 <= autoscale.target_utilization <= 100:
        planned = autoscale.planned_replicas
        if planned is not None and planned > MAX_HPA_REPLICAS:
            r.fail(
                ("autoscaleTargetRps", "autoscaleRequestMs", "maxConcurrentRequestsPerContainer"),
                f"{autoscale.target_rps} rps x {autoscale.request_ms} ms -> {planned} replicas",
                f"the planned replica maximum is above {MAX_HPA_REPLICAS}",
                "raise mlscore:maxConcurrentRequestsPerContainer (more workers per container) or "
                "lower the target load",
            )
    return autoscale


def _read_ingress(r: Reader, enabled: bool, now: datetime) -> IngressSettings:
    ingress = IngressSettings(
        tls=r.bool("aksTlsEnabled"),
        host=r.str("aksTlsHost").strip().lower(),
        certificate_name=r.str("aksTlsCertificateName").strip(),
        allow_http=r.bool("aksAllowHttp"),
        istio_revision=r.str("aksIstioRevision"),
        rotation_poll_interval=r.str("aksSecretsRotationInterval"),
    )
    path, password, cert = read_certificate(r, enabled and ingress.tls, ingress.host, now)
    ingress = replace(ingress, pfx_path=path, pfx_password=password, certificate=cert)
    if not enabled:
        return ingress
    if ingress.host:
        r.matches(
            "aksTlsHost",
            ingress.host,
            DNS_NAME,
            "not a DNS name",
            "use the host name clients call, e.g. scoring.contoso.com (no scheme, port or path)",
        )
    if ingress.certificate_name:
        r.matches(
            "aksTlsCertificateName",
            ingress.certificate_name,
            VAULT_OBJECT,
            "not a Key Vault certificate name",
            "use the name of the certificate in the workspace's key vault (letters, digits, -)",
        )
    if ingress.tls and not ingress.host:
        r.fail(
            ("aksTlsEnabled", "aksTlsHost"),
            "true, ''",
            "HTTPS needs the host name its certificate is for",
            "set mlscore:aksTlsHost to your DNS name (e.g. scoring.contoso.com), or, in dev "
            "only, mlscore:aksTlsEnabled to false and mlscore:aksAllowHttp to true",
        )
    if ingress.tls and not ingress.certificate_name:
        r.fail(
            ("aksTlsEnabled", "aksTlsCertificateName"),
            "true, ''",
            "TLS is on without a name for the certificate's secret in the workspace's key vault",
            "set mlscore:aksTlsCertificateName (e.g. scoring-tls) and mlscore:aksTlsPfxPath: the "
            "program stores that PFX under this name",
        )
    if not ingress.tls and not ingress.allow_http:
        r.fail(
            ("aksTlsEnabled", "aksAllowHttp"),
            "false, false",
            "with TLS off and plain HTTP refused the AKS endpoint would serve nobody",
            "turn mlscore:aksTlsEnabled on (production), or set mlscore:aksAllowHttp to true "
            "(dev only: keys cross the network in the clear)",
        )
    if ingress.istio_revision:
        r.matches(
            "aksIstioRevision",
            ingress.istio_revision,
            ISTIO_REVISION,
            "not an Istio add-on revision",
            "use asm-1-<minor> from `az aks mesh get-revisions --location <region>`, or leave "
            "it empty for the add-on's default",
        )
        versions.check_istio(r, ingress.istio_revision, now)
    r.matches(
        "aksSecretsRotationInterval",
        ingress.rotation_poll_interval,
        DURATION,
        "not a duration",
        "use e.g. 2m (seconds s, minutes m or hours h)",
    )
    return ingress


def _check_cluster(r: Reader, aks: AksSettings) -> None:
    if (
        aks.enabled
        and aks.existing_cluster_id
        and not re.fullmatch(
            r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
            r"Microsoft\.ContainerService/managedClusters/[^/]+",
            aks.existing_cluster_id,
            flags=re.IGNORECASE,
        )
    ):
        r.fail(
            "aksExistingClusterId",
            aks.existing_cluster_id,
            "not an AKS resource ID",
            "use /subscriptions/<id>/resourceGroups/<rg>/providers/"
            "Microsoft.ContainerService/managedClusters/<name>, or leave it empty",
        )
    if aks.kubernetes_version and not re.fullmatch(r"\d+\.\d+(\.\d+)?", aks.kubernetes_version):
        r.fail(
            "aksKubernetesVersion",
            aks.kubernetes_version,
            "not a Kubernetes version",
            "use e.g. 1.35, or leave it empty for AKS's default",
        )
    if aks.node_count > aks.max_node_count:
        r.fail(
            ("aksNodeCount", "aksMaxNodeCount"),
            f"{aks.node_count} > {aks.max_node_count}",
            "the autoscaler minimum is above its maximum",
            "raise mlscore:aksMaxNodeCount to at least mlscore:aksNodeCount",
        )


def _vcpus(size: str) -> int:
    return SIZES[size].vcpus if size in SIZES else 0


def _check_vcpus(r: Reader, aks: AksSettings, acc: AcceleratorSettings) -> None:
    """The seeds' rule for a cluster this stack creates: >= 12 vCPUs that run scoring pods.

    The system pool is tainted CriticalAddonsOnly (see cluster.py): it runs no scoring pods, so
    only the user pool (its autoscaler minimum) and the accelerator pool count.
    """
    user = aks.node_count * _vcpus(aks.vm_size)
    extra = acc.node_count * _vcpus(acc.vm_size) if acc.enabled else 0
    total = user + extra
    if total >= MIN_AKS_VCPUS:
        return
    needed = math.ceil((MIN_AKS_VCPUS - extra) / _vcpus(aks.vm_size))
    acc_part = (
        f" + {acc.node_count} x {acc.vm_size} = {extra} accelerator vCPUs, {total} in all"
        if extra
        else ""
    )
    keys = ("aksNodeCount", "aksVmSize") + (
        ("acceleratorNodeCount", "acceleratorVmSize") if extra else ()
    )
    r.fail(
        keys,
        f"{aks.node_count} x {aks.vm_size} = {user} vCPUs{acc_part}",
        f"Azure ML needs an AKS cluster with >= {MIN_AKS_VCPUS} vCPUs in total "
        "(user pool minimum + accelerator pool; the system pool runs no scoring pods)",
        f"raise mlscore:aksNodeCount to {needed} or pick a larger mlscore:aksVmSize",
    )


def _check_accelerator(
    r: Reader, aks: AksSettings, acc: AcceleratorSettings, location: str
) -> None:
    if not aks.enabled:
        r.fail(
            ("acceleratorEnabled", "aksEnabled"),
            "true, false",
            "the accelerator target is a node pool of the AKS cluster",
            "set mlscore:aksEnabled to true or mlscore:acceleratorEnabled to false",
        )
    size = SIZES.get(acc.vm_size)
    if size and acc.kind == "gpu" and size.gpus == 0:
        r.fail(
            ("acceleratorKind", "acceleratorVmSize"),
            acc.vm_size,
            "this size has no GPU",
            "pick an NC-family size such as Standard_NC4as_T4_v3",
        )
    if size and acc.kind == "fpga" and size.fpgas == 0:
        r.fail(
            ("acceleratorKind", "acceleratorVmSize"),
            acc.vm_size,
            "this size has no FPGA",
            "use Standard_PB6s (Project Brainwave)",
        )
    if acc.kind == "fpga" and location not in FPGA_REGIONS:
        r.fail(
            ("acceleratorKind", "location"),
            location,
            "FPGA (Standard_PB6s) was only offered in " + ", ".join(sorted(FPGA_REGIONS)),
            "deploy to one of those regions with PB-family quota approved, or use "
            "mlscore:acceleratorKind gpu",
        )
