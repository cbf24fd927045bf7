"""Azure ML target settings: the managed online endpoint (blue/green, mirroring) and batch
scoring on a cluster that scales to zero."""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.config.naming import Naming
from components.config.reader import Reader
from components.config.sizes import SIZES

# Sizes of components/config/sizes.py that Azure ML managed online endpoints offer (managed
# online endpoints SKU list); a size missing here is refused with a message saying how to add it.
ONLINE_INSTANCE_TYPES = frozenset(
    {
        "Standard_DS2_v2", "Standard_DS3_v2", "Standard_DS4_v2", "Standard_DS5_v2",
        "Standard_F4s_v2", "Standard_F8s_v2", "Standard_F16s_v2",
        "Standard_NC4as_T4_v3", "Standard_NC8as_T4_v3", "Standard_NC16as_T4_v3",
        "Standard_NC64as_T4_v3", "Standard_NC6s_v3", "Standard_NC12s_v3", "Standard_NC24s_v3",
        "Standard_NC24ads_A100_v4", "Standard_NC40ads_H100_v5",
    }
)  # fmt: skip


@dataclass(frozen=True)
class OnlineEndpointSettings:
    enabled: bool
    instance_type: str
    instance_count: int
    traffic_blue: int
    traffic_green: int
    mirror_green: int
    blue_image: str | None = None  # blue keeps this build (by digest); None: the current build


@dataclass(frozen=True)
class BatchSettings:
    enabled: bool
    vm_size: str
    max_nodes: int
    low_priority: bool
    instance_count: int = 1


def read_online(r: Reader, naming: Naming, repository: str) -> OnlineEndpointSettings:
    online = OnlineEndpointSettings(
        enabled=r.bool("onlineEndpointEnabled"),
        instance_type=r.vm_size("onlineInstanceType"),
        instance_count=r.int_range("onlineInstanceCount", 1, 100),
        traffic_blue=r.int_range("onlineTrafficBlue", 0, 100, "a percentage"),
        traffic_green=r.int_range("onlineTrafficGreen", 0, 100, "a percentage"),
        mirror_green=r.int_range("onlineMirrorGreen", 0, 50, "Azure ML mirrors at most 50%"),
        blue_image=r.str("onlineBlueImage") or None,
    )
    _check_traffic(r, online)
    _check_instances(r, online)
    _check_blue_image(r, online, naming, repository)
    return online


def _check_traffic(r: Reader, online: OnlineEndpointSettings) -> None:
    """Azure ML managed online endpoint rules of a safe rollout: traffic and mirroring."""
    if online.traffic_blue + online.traffic_green != 100:
        r.fail(
            ("onlineTrafficBlue", "onlineTrafficGreen"),
            f"{online.traffic_blue} + {online.traffic_green} = "
            f"{online.traffic_blue + online.traffic_green}",
            "live traffic percentages must add up to 100",
            "set them to e.g. 90 and 10",
        )
    if online.mirror_green and online.traffic_green:
        r.fail(
            ("onlineMirrorGreen", "onlineTrafficGreen"),
            f"{online.mirror_green}, {online.traffic_green}",
            "Azure ML mirrors traffic only to a deployment that gets no live traffic",
            "set mlscore:onlineTrafficGreen to 0 while mirroring, or mlscore:onlineMirrorGreen "
            "to 0 once green takes live traffic",
        )


def _check_instances(r: Reader, online: OnlineEndpointSettings) -> None:
    known = online.instance_type in SIZES
    if known and online.instance_type not in ONLINE_INSTANCE_TYPES:
        r.fail(
            "onlineInstanceType",
            online.instance_type,
            "not a size Azure ML managed online endpoints offer",
            "use e.g. Standard_DS3_v2 or Standard_F4s_v2 (managed online endpoints SKU list), "
            "or add the size to ONLINE_INSTANCE_TYPES in components/targets/aml/settings.py",
        )
    if online.enabled and online.instance_count > 20:
        r.fail(
            "onlineInstanceCount",
            online.instance_count,
            "more than 20 instances per deployment is beyond the default Azure ML quota",
            "set mlscore:onlineInstanceCount to 20 or less (raise the quota first for more)",
        )


def _check_blue_image(
    r: Reader, online: OnlineEndpointSettings, naming: Naming, repository: str
) -> None:
    """The pinned blue build must be one this stack pushed: its registry, its repository, a digest.

    Its environment version exists only if the stack deployed that build before (see
    online.py), so a tag, or an image from elsewhere, cannot be pinned.
    """
    image = online.blue_image
    if image is None:
        return
    expected = f"{naming.registry()}.azurecr.io/{repository}@sha256:"
    if not (image.startswith(expected) and re.fullmatch(r"[0-9a-f]{64}", image[len(expected) :])):
        r.fail(
            "onlineBlueImage",
            image,
            "blue can only keep a build this stack deployed before, named by its digest",
            f"set it to the previous value of the stack output `image` ({expected}<64 hex>), "
            'e.g. pulumi config set mlscore:onlineBlueImage "$(pulumi stack output image)" '
            "before deploying a new build; or leave it empty for blue to run the current build",
        )


def read_batch(r: Reader) -> BatchSettings:
    batch = BatchSettings(
        enabled=r.bool("batchEnabled"),
        vm_size=r.vm_size("batchVmSize"),
        max_nodes=r.int_range("batchMaxNodes", 1, 1000),
        low_priority=r.bool("batchLowPriority"),
        instance_count=r.int_range("batchInstanceCount", 1, 1000),
    )
    if batch.instance_count > batch.max_nodes:
        r.fail(
            ("batchInstanceCount", "batchMaxNodes"),
            f"{batch.instance_count} > {batch.max_nodes}",
            "a batch job cannot run on more nodes than the cluster may scale to",
            "raise mlscore:batchMaxNodes or lower mlscore:batchInstanceCount",
        )
    return batch
