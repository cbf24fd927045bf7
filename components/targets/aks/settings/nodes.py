"""Node pool hardening of a cluster this stack creates: availability zones, ephemeral OS disks,
pods per node and encryption at host, validated before any resource against two small tables.

* **Zones** (``aksZones``, e.g. ``1,2,3``): the system and user pools spread their nodes across
  the zones; a region without availability zones is refused. Regions with zones:
  https://learn.microsoft.com/azure/reliability/regions-list (the "Availability zone support"
  column), November 2026.
* **Ephemeral OS disks** (``aksOsDiskType``): the OS disk lives on the VM's cache disk or its
  temporary (resource) disk, so it must fit in one of them; sizes with neither (Dsv5, Dasv5,
  Dsv6, Esv5: "remote storage only") cannot have one. ``auto`` takes Ephemeral where the size
  allows, Managed elsewhere. AKS places the ephemeral disk on the cache disk, else on the temp
  disk: https://learn.microsoft.com/azure/aks/concepts-storage#ephemeral-os-disk. Cache and temp
  disk sizes (GiB) from each series' page under
  https://learn.microsoft.com/azure/virtual-machines/sizes/general-purpose/ (ddsv5-series,
  dsv5-series, dasv5-series, dsv6-series, dv2-dsv2-series, dv3-dsv3-series, fsv2-series,
  b-series) and .../gpu-accelerated/ncast4v3-series.
* **Max pods** (``aksMaxPods``, 50-250: Azure CNI overlay's limit,
  https://learn.microsoft.com/azure/aks/azure-cni-overlay#maximum-pods-per-node).
* **Encryption at host** (``aksEncryptionAtHost``): temp disks and OS/data disk caches encrypted
  on the VM host. The subscription must have ``Microsoft.Compute/EncryptionAtHost`` registered
  (``az feature register --namespace Microsoft.Compute --name EncryptionAtHost``, then
  ``az provider register -n Microsoft.Compute``):
  https://learn.microsoft.com/azure/aks/enable-host-encryption. The cluster component checks the
  registration at deploy time and stops with that command when it is missing (profiles.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.reader import Reader
from components.config.regions import REGIONS_WITH_ZONES

# VM size -> (cache disk GiB, temp disk GiB); 0 where the size has none.
VM_DISKS: dict[str, tuple[int, int]] = {
    "Standard_D2ds_v5": (0, 75),
    "Standard_D4ds_v5": (0, 150),
    "Standard_D8ds_v5": (0, 300),
    "Standard_D2s_v5": (0, 0),
    "Standard_D4s_v5": (0, 0),
    "Standard_D8s_v5": (0, 0),
    "Standard_D16s_v5": (0, 0),
    "Standard_D32s_v5": (0, 0),
    "Standard_D2as_v5": (0, 0),
    "Standard_D4as_v5": (0, 0),
    "Standard_D8as_v5": (0, 0),
    "Standard_D16as_v5": (0, 0),
    "Standard_D2s_v6": (0, 0),
    "Standard_D4s_v6": (0, 0),
    "Standard_D8s_v6": (0, 0),
    "Standard_D16s_v6": (0, 0),
    "Standard_E4s_v5": (0, 0),
    "Standard_E8s_v5": (0, 0),
    "Standard_E16s_v5": (0, 0),
    "Standard_DS2_v2": (86, 14),
    "Standard_DS3_v2": (172, 28),
    "Standard_DS4_v2": (344, 56),
    "Standard_DS5_v2": (688, 112),
    "Standard_D2s_v3": (50, 16),
    "Standard_D4s_v3": (100, 32),
    "Standard_D8s_v3": (200, 64),
    "Standard_D16s_v3": (400, 128),
    "Standard_F4s_v2": (64, 32),
    "Standard_F8s_v2": (128, 64),
    "Standard_F16s_v2": (256, 128),
    "Standard_B2s": (0, 8),
    "Standard_B2ms": (0, 16),
    "Standard_B4ms": (0, 32),
    "Standard_NC4as_T4_v3": (0, 180),
}


OS_DISK_TYPES = ("auto", "Ephemeral", "Managed")
MANAGED_OS_DISK_GB = 128
# Ephemeral OS disk sizes tried, largest first, when aksOsDiskSizeGb is 0 (auto).
EPHEMERAL_SIZES_GB = (128, 64, 48, 32)
MIN_MAX_PODS, MAX_MAX_PODS = 50, 250
ENCRYPTION_AT_HOST_FEATURE = ("Microsoft.Compute", "EncryptionAtHost")
ENCRYPTION_AT_HOST_FIX = (
    "register the subscription feature: az feature register --namespace Microsoft.Compute "
    "--name EncryptionAtHost, wait until `az feature show --namespace Microsoft.Compute --name "
    "EncryptionAtHost` says Registered, then az provider register -n Microsoft.Compute "
    "(https://learn.microsoft.com/azure/aks/enable-host-encryption); or set "
    "mlscore:aksEncryptionAtHost to false"
)


@dataclass(frozen=True)
class PoolDisk:
    os_disk_type: str  # Ephemeral or Managed
    os_disk_size_gb: int


@dataclass(frozen=True)
class NodeSettings:
    zones: tuple[str, ...] = ()
    os_disk_type: str = "auto"
    os_disk_size_gb: int = 0  # 0: the largest standard size that fits (ephemeral) or 128
    max_pods: int = 110
    encryption_at_host: bool = False

    def disk(self, vm_size: str) -> PoolDisk:
        """The OS disk of a pool of ``vm_size`` (validated by :func:`read`)."""
        room = ephemeral_room_gb(vm_size)
        ephemeral = self.os_disk_type == "Ephemeral" or (self.os_disk_type == "auto" and room > 0)
        if not ephemeral:
            return PoolDisk("Managed", self.os_disk_size_gb or MANAGED_OS_DISK_GB)
        size = self.os_disk_size_gb or next((g for g in EPHEMERAL_SIZES_GB if g <= room), 0)
        if size == 0 or size > room:  # auto on a size too small for any standard size
            return PoolDisk("Managed", self.os_disk_size_gb or MANAGED_OS_DISK_GB)
        return PoolDisk("Ephemeral", size)


def ephemeral_room_gb(vm_size: str) -> int:
    """The largest ephemeral OS disk ``vm_size`` holds: its cache disk, else its temp disk."""
    cache, temp = VM_DISKS.get(vm_size, (0, 0))
    return max(cache, temp)


def read(r: Reader, location: str, pool_sizes: dict[str, str], check: bool) -> NodeSettings:
    """``pool_sizes``: config key of each pool's VM size -> the size. ``check``: the stack
    creates the cluster (an attached one's pools are not ours to shape)."""
    raw_zones = r.str("aksZones").replace(" ", "")
    zones = tuple(z for z in raw_zones.split(",") if z)
    nodes = NodeSettings(
        zones=zones,
        os_disk_type=r.choice("aksOsDiskType", OS_DISK_TYPES),
        os_disk_size_gb=r.int_range("aksOsDiskSizeGb", 0, 2048),
        max_pods=r.int_range("aksMaxPods", MIN_MAX_PODS, MAX_MAX_PODS, "Azure CNI overlay"),
        encryption_at_host=r.bool("aksEncryptionAtHost"),
    )
    if not check:
        return nodes
    _check_zones(r, nodes, location)
    for key, size in pool_sizes.items():
        _check_disk(r, nodes, key, size)
    return nodes


def _check_zones(r: Reader, nodes: NodeSettings, location: str) -> None:
    if not nodes.zones:
        return
    if any(z not in ("1", "2", "3") for z in nodes.zones) or len(set(nodes.zones)) != len(
        nodes.zones
    ):
        r.fail(
            "aksZones",
            ",".join(nodes.zones),
            "availability zones are 1, 2 and 3, each at most once",
            "set mlscore:aksZones to e.g. 1,2,3, or leave it empty for no zones",
        )
    if location not in REGIONS_WITH_ZONES:
        r.fail(
            ("aksZones", "location"),
            f"{','.join(nodes.zones)} in {location}",
            f"{location} has no availability zones",
            "leave mlscore:aksZones empty in this region, or deploy to a region with zones "
            "(components/targets/aks/settings/nodes.py lists them)",
        )


def _check_disk(r: Reader, nodes: NodeSettings, key: str, size: str) -> None:
    room = ephemeral_room_gb(size)
    if nodes.os_disk_type == "Ephemeral" and size not in VM_DISKS:
        r.fail(
            ("aksOsDiskType", key),
            size,
            "the cache and temp disk sizes of this VM size are not known, so an ephemeral OS "
            "disk cannot be checked",
            "add the size to VM_DISKS in components/targets/aks/settings/nodes.py, or set "
            "mlscore:aksOsDiskType to auto or Managed",
        )
        return
    if nodes.os_disk_type == "Ephemeral" and room == 0:
        r.fail(
            ("aksOsDiskType", key),
            size,
            "this VM size has neither a cache disk nor a temp disk, so no ephemeral OS disk",
            f"pick a size with a local disk (e.g. the 'd' variant: {_d_variant(size)}), or set "
            "mlscore:aksOsDiskType to auto or Managed",
        )
        return
    wanted = nodes.os_disk_size_gb
    if nodes.os_disk_type == "Ephemeral" and wanted > room:
        r.fail(
            ("aksOsDiskSizeGb", key),
            f"{wanted} GB on {size}",
            f"an ephemeral OS disk must fit the VM's cache or temp disk ({room} GiB on {size})",
            f"set mlscore:aksOsDiskSizeGb to {room} or less (0 picks the largest that fits), or "
            "mlscore:aksOsDiskType to Managed",
        )


def _d_variant(size: str) -> str:
    """Standard_D4s_v5 -> Standard_D4ds_v5 (the same size with a temp disk), when it exists."""
    head, _, version = size.rpartition("_")
    if head.endswith("s") and not head.endswith("ds"):
        candidate = f"{head[:-1]}ds_{version}"
        if candidate in VM_DISKS:
            return candidate
    return "Standard_D4ds_v5"
