"""Settings of network isolation: the VNet, its subnets, the allow-lists (issue 18).

``networkIsolation`` (on in prod, off in dev) puts the data planes (key vault, workspace storage,
registry, cache, ML workspace) behind private endpoints in a VNet that also holds the App Service
and Functions integration subnets, the AKS nodes and (when enabled) the ACI container groups.

How it relates to ``publicNetworkAccess`` (the switch the data-plane resources already read):

=================  ===================  ==========================================================
networkIsolation   publicNetworkAccess  data planes
=================  ===================  ==========================================================
false              true                 public, open to any address (dev)
false              false                public access disabled; no private path (bring your own)
true               true                 private endpoints; the public endpoint stays on for
                                        ``deployerIpRanges`` only (default deny, allow-list):
                                        deploy from an allow-listed machine outside the stack's
                                        region, or (with IoT Edge, whose devices need the
                                        registry's) from a runner in the VNet, no deployer ranges
true               false                private endpoints only: deploy from a runner in the VNet
=================  ===================  ==========================================================

The supported deploy paths, then: (1) an allow-listed machine or runner with a fixed public
egress IP **outside the stack's Azure region**: "IP network rules have no effect on requests
originating from the same Azure region as the storage account. Use Virtual network rules to
allow same-region requests"
(https://learn.microsoft.com/azure/storage/common/storage-network-security#restrictions-for-ip-network-rules),
so a same-region runner would be refused by every storage account whatever deployerIpRanges says;
(2) a runner inside the VNet, which reaches every data plane through its private endpoint (the
private DNS zones are linked to the VNet): ``publicNetworkAccess: false`` without IoT Edge, or
``publicNetworkAccess: true`` with empty ``deployerIpRanges`` when IoT Edge is on (the registry's
public endpoint then admits ``iotHubIpFilter`` only, the other data planes deny every public
request; the deploy calls the IoT Hub's REST API over the internet, so the runner's egress IP goes
in ``iotHubIpFilter`` too). Either way the runner's egress IP goes in ``aksApiAuthorizedIpRanges``
(the AKS API server is public with authorized ranges).

:attr:`NetworkSettings.data_plane` names the row (``public``, ``disabled``, ``allow-list``,
``private``). Under isolation, ``publicNetworkAccess: true`` never means open to everyone, so it
is refused without ``deployerIpRanges``; the list is refused where nothing would read it.

Every CIDR is checked with :mod:`ipaddress` before any resource is declared: valid, IPv4, the
subnets inside the VNet and apart from each other, each large enough for what it holds.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from typing import Any

from components.config.reader import Reader

IPv4Net = ipaddress.IPv4Network

# Azure keeps five addresses of every subnet (the first four and the last) and the smallest
# subnet is a /29: https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq
# ("Are there any restrictions on using IP addresses within these subnets?").
AZURE_RESERVED = 5
SMALLEST_SUBNET = 29

# App Service / Functions (Elastic Premium) VNet integration: a subnet delegated to
# Microsoft.Web/serverFarms, at least a /28, a /26 recommended; one address per plan instance,
# and twice that for a short time while the plan scales:
# https://learn.microsoft.com/azure/app-service/overview-vnet-integration#subnet-requirements
WEB_DELEGATION = "Microsoft.Web/serverFarms"
WEB_SMALLEST = 28
WEB_RECOMMENDED = 26
# ACI container groups in a VNet: a subnet delegated to Microsoft.ContainerInstance/containerGroups
# that holds nothing else; one address per container group:
# https://learn.microsoft.com/azure/container-instances/container-instances-virtual-network-concepts
ACI_DELEGATION = "Microsoft.ContainerInstance/containerGroups"
# A Container Apps environment (workload profiles) in a VNet: a subnet delegated to
# Microsoft.App/environments, "The minimum required subnet size is /27"; a serverless GPU replica
# takes one address of its own: https://learn.microsoft.com/azure/container-apps/networking and
# https://learn.microsoft.com/azure/container-apps/gpu-serverless-overview
CONTAINER_APPS_DELEGATION = "Microsoft.App/environments"
CONTAINER_APPS_SMALLEST = 27
# AKS with Azure CNI Overlay: nodes take addresses from the subnet, pods from the overlay pod CIDR
# ("a /24 subnet can fit up to 251 nodes"):
# https://learn.microsoft.com/azure/aks/azure-cni-overlay#ip-address-planning
# The pod CIDR and the service CIDR must not overlap the VNet. These are the cluster's values
# (components/targets/aks/profiles.py sets the pod CIDR; the service CIDR is AKS's default).
AKS_POD_CIDR = "10.244.0.0/16"
AKS_SERVICE_CIDR = "10.0.0.0/16"
AKS_MAX_SURGE = 0.33  # the node pools' upgradeSettings.maxSurge (aks/profiles.py): extra nodes
# Up to 200 authorized ranges; not with private clusters; Standard load balancer only:
# https://learn.microsoft.com/azure/aks/api-server-authorized-ip-ranges
AKS_MAX_AUTHORIZED_RANGES = 200
# Addresses a private endpoint takes in the endpoints subnet, budgeted per group id: one per
# endpoint, the registry two (the login server and the region's data endpoint:
# https://learn.microsoft.com/azure/container-registry/container-registry-private-link), the ML
# workspace a budget of four (api, notebooks and the workspace's other FQDNs share its NIC).
ENDPOINT_ADDRESSES = {"registry": 2, "amlworkspace": 4}
# Public endpoints see public source addresses: a private, loopback or link-local range in an
# allow-list can never match (storage refuses RFC 1918 ranges outright:
# https://learn.microsoft.com/azure/storage/common/storage-network-security-limits).
NOT_PUBLIC = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip
PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)

# Subnet roles: (config key, Azure subnet name).
SUBNETS = {
    "private_endpoints": ("subnetPrivateEndpoints", "private-endpoints"),
    "app_service": ("subnetAppService", "app-service"),
    "functions": ("subnetFunctions", "functions"),
    "aks_nodes": ("subnetAksNodes", "aks-nodes"),
    "aci": ("subnetAci", "aci"),
    "container_apps": ("subnetContainerApps", "container-apps"),
}

PUBLIC, DISABLED, ALLOW_LIST, PRIVATE = "public", "disabled", "allow-list", "private"


@dataclass(frozen=True)
class NetworkSettings:
    isolated: bool = False
    vnet_address_space: str = ""
    # role -> CIDR, only the subnets this stack creates (see SUBNETS)
    subnets: dict[str, str] = field(default_factory=dict)
    deployer_ip_ranges: tuple[str, ...] = ()
    aks_api_authorized_ip_ranges: tuple[str, ...] = ()  # the effective list (see read)
    iot_hub_ip_filter: tuple[str, ...] = ()
    data_plane: str = PUBLIC

    def subnet_name(self, role: str) -> str:
        return SUBNETS[role][1]


def read(r: Reader) -> NetworkSettings:
    """The network keys, checked against each other and against the targets they serve."""
    isolated = r.bool("networkIsolation")
    for key in ("vnetAddressSpace", *(k for k, _ in SUBNETS.values())):
        r.str(key)  # read in every stack; checked only where they are used (isolation below)
    public = _peek_bool(r, "publicNetworkAccess", True)
    deployer = _ip_list(r, "deployerIpRanges")
    aks_ranges = _ip_list(r, "aksApiAuthorizedIpRanges", limit=AKS_MAX_AUTHORIZED_RANGES)
    iot_filter = _ip_list(r, "iotHubIpFilter")
    data_plane = (
        (ALLOW_LIST if public else PRIVATE) if isolated else (PUBLIC if public else DISABLED)
    )
    failed = {k for p in r.problems for k in p.keys}  # a bad list says so once, not again below
    if not failed & {"deployerIpRanges", "aksApiAuthorizedIpRanges", "iotHubIpFilter"}:
        _check_access(r, isolated, public, deployer, iot=_peek_bool(r, "iotEnabled", False))
        _check_aks_api(r, isolated, aks_ranges, deployer)
    if not isolated:
        return NetworkSettings(
            aks_api_authorized_ip_ranges=aks_ranges,
            iot_hub_ip_filter=iot_filter,
            data_plane=data_plane,
        )
    _check_registry(r)
    if "iotHubIpFilter" not in failed:
        _check_iot(r, public, iot_filter)
    vnet = _cidr(r, "vnetAddressSpace")
    subnets = _subnets(r, vnet)
    return NetworkSettings(
        isolated=True,
        vnet_address_space=str(vnet) if vnet else r.str("vnetAddressSpace"),
        subnets={role: str(net) for role, net in subnets.items()},
        deployer_ip_ranges=deployer,
        aks_api_authorized_ip_ranges=aks_ranges or (deployer if _aks_created(r) else ()),
        iot_hub_ip_filter=iot_filter,
        data_plane=data_plane,
    )


def aks_dns_service_ip() -> str:
    """The cluster DNS service's address: the tenth of AKS_SERVICE_CIDR (10.0.0.10, AKS's
    default); it must lie inside the service CIDR and not be its first address:
    https://learn.microsoft.com/azure/aks/azure-cni-overlay#ip-address-planning"""
    return str(ipaddress.IPv4Network(AKS_SERVICE_CIDR)[10])


def storage_ip_rules(ranges: tuple[str, ...]) -> list[str]:
    """``ranges`` as storage's IP rules take them: /31 and /32 as single addresses, since
    "small address ranges using prefix sizes of /31 or /32 aren't supported"
    (https://learn.microsoft.com/azure/storage/common/storage-network-security-limits)."""
    values: list[str] = []
    for text in ranges:
        net = ipaddress.IPv4Network(text)
        values += [str(a) for a in net] if net.prefixlen >= 31 else [str(net)]
    return values


# --- the relation of the keys ---------------------------------------------------------------------
def _check_access(
    r: Reader, isolated: bool, public: bool, deployer: tuple[str, ...], *, iot: bool
) -> None:
    """The deploy paths of the module docstring; with IoT Edge on, allow-list mode without
    deployer ranges is the runner-in-the-VNet path (the registry stays public for the devices)."""
    if deployer and not isolated:
        r.fail(
            ("deployerIpRanges", "networkIsolation"),
            ",".join(deployer),
            "the deployer allow-list only applies with network isolation (without it the data "
            "planes follow publicNetworkAccess alone)",
            "set mlscore:networkIsolation to true, or clear mlscore:deployerIpRanges",
        )
    elif isolated and public and not deployer and not iot:
        r.fail(
            ("networkIsolation", "publicNetworkAccess", "deployerIpRanges"),
            "true",
            "with network isolation, publicNetworkAccess true keeps the data planes' public "
            "endpoints for the deploying machine only, and deployerIpRanges lists no one",
            "set mlscore:deployerIpRanges to the public IPs or CIDRs of a deploying machine "
            "outside the stack's Azure region (storage ignores IP rules for same-region "
            "clients), or set mlscore:publicNetworkAccess to false and deploy from a runner "
            "inside the VNet",
        )
    elif isolated and not public and deployer:
        r.fail(
            ("deployerIpRanges", "publicNetworkAccess"),
            ",".join(deployer),
            "publicNetworkAccess false disables the public endpoints, so no allow-list applies",
            "set mlscore:publicNetworkAccess to true to allow these addresses, or clear "
            "mlscore:deployerIpRanges and deploy from a runner inside the VNet",
        )


def _check_registry(r: Reader) -> None:
    sku = str(r.raw("registrySku")[1])
    if sku != "Premium":  # "Private endpoints are available in the Premium service tier"
        r.fail(  # https://learn.microsoft.com/azure/container-registry/container-registry-private-link
            ("networkIsolation", "registrySku"),
            sku,
            "private endpoints and network rules are container registry Premium features",
            "set mlscore:registrySku to Premium, or mlscore:networkIsolation to false",
        )


def _aks_created(r: Reader) -> bool:
    return _peek_bool(r, "aksEnabled", False) and not str(r.raw("aksExistingClusterId")[1])


def _check_aks_api(
    r: Reader, isolated: bool, ranges: tuple[str, ...], deployer: tuple[str, ...]
) -> None:
    if ranges and _peek_bool(r, "aksEnabled", False) and str(r.raw("aksExistingClusterId")[1]):
        r.fail(
            ("aksApiAuthorizedIpRanges", "aksExistingClusterId"),
            ",".join(ranges),
            "the program does not manage an attached cluster's API server",
            "set the ranges on that cluster (az aks update --api-server-authorized-ip-ranges), "
            "and clear mlscore:aksApiAuthorizedIpRanges",
        )
    elif isolated and _aks_created(r) and not ranges and not deployer:
        r.fail(
            ("networkIsolation", "aksApiAuthorizedIpRanges"),
            "",
            "the AKS API server would accept connections from any address",
            "set mlscore:aksApiAuthorizedIpRanges to the public egress IPs of the deploying "
            "machine or runner (or set mlscore:deployerIpRanges, which it defaults to)",
        )


def _check_iot(r: Reader, public: bool, iot_filter: tuple[str, ...]) -> None:
    """IoT Edge devices pull the image from the registry over the internet."""
    if not _peek_bool(r, "iotEnabled", False):
        return
    if not public:
        r.fail(
            ("iotEnabled", "publicNetworkAccess"),
            "false",
            "IoT Edge devices pull the scoring image from the registry over the internet, and "
            "publicNetworkAccess false disables the registry's public endpoint",
            "set mlscore:publicNetworkAccess to true (the registry then admits deployerIpRanges "
            "and iotHubIpFilter only; from a runner in the VNet, leave deployerIpRanges empty), "
            "or mlscore:iotEnabled to false",
        )
    elif not iot_filter:
        r.fail(
            ("networkIsolation", "iotHubIpFilter"),
            "",
            "under network isolation the registry admits listed addresses only, and the IoT "
            "Edge devices' addresses are not listed (they pull the image over the internet)",
            "set mlscore:iotHubIpFilter to the devices' public egress ranges (the hub and the "
            "registry both admit them)",
        )


# --- CIDRs ----------------------------------------------------------------------------------------
def _cidr(r: Reader, key: str) -> IPv4Net | None:
    text = r.str(key).strip()
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        fix = f"set mlscore:{key} to a CIDR such as 10.20.0.0/16"
        try:
            loose = ipaddress.ip_network(text, strict=False)
            fix = f"use {loose} (the network of that address), or fix the prefix"
        except ValueError:
            pass
        r.fail(key, text, f"not a network in CIDR notation ({e})", fix)
        return None
    if not isinstance(net, ipaddress.IPv4Network):
        r.fail(key, text, "an IPv6 range (the VNet here is IPv4)", f"set mlscore:{key} to IPv4")
        return None
    return net


def _subnets(r: Reader, vnet: IPv4Net | None) -> dict[str, IPv4Net]:
    if vnet is not None and not any(vnet.subnet_of(p) for p in PRIVATE_RANGES):
        r.fail(
            "vnetAddressSpace",
            str(vnet),
            "not a private (RFC 1918) range: the VNet would hide those internet addresses",
            "use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, e.g. 10.20.0.0/16",
        )
    wanted = _wanted_subnets(r)
    nets = {role: net for role in wanted if (net := _cidr(r, SUBNETS[role][0])) is not None}
    for role, net in nets.items():
        key = SUBNETS[role][0]
        if vnet is not None and not net.subnet_of(vnet):
            r.fail(
                (key, "vnetAddressSpace"),
                str(net),
                f"outside the VNet's address space {vnet}",
                f"pick mlscore:{key} inside {vnet}, or widen mlscore:vnetAddressSpace",
            )
        if net.prefixlen > SMALLEST_SUBNET:
            r.fail(key, str(net), "Azure's smallest subnet is a /29", f"use a /{SMALLEST_SUBNET}")
        else:
            _check_size(r, role, net, wanted[role])
    roles = sorted(nets)
    for i, a in enumerate(roles):
        for b in roles[i + 1 :]:
            if nets[a].overlaps(nets[b]):
                keys = (SUBNETS[a][0], SUBNETS[b][0])
                r.fail(
                    keys,
                    f"{nets[a]} and {nets[b]}",
                    "the two subnets overlap",
                    f"give mlscore:{keys[0]} and mlscore:{keys[1]} separate ranges",
                )
    if vnet is not None and "aks_nodes" in wanted:
        _check_aks_ranges(r, vnet)
    return nets


def _wanted_subnets(r: Reader) -> dict[str, tuple[int, str]]:
    """role -> (addresses needed, what they are for), for the subnets this stack creates."""
    wanted = {"private_endpoints": _endpoint_budget(r)}
    if _peek_bool(r, "appServiceEnabled", False):
        most = _peek_int(r, "appServiceMaxInstances", 1)
        wanted["app_service"] = (2 * most, f"2 x appServiceMaxInstances ({most}) plan instances")
    if _peek_bool(r, "functionsEnabled", False):
        most = _peek_int(r, "functionsMaxElasticWorkers", 1)
        wanted["functions"] = (2 * most, f"2 x functionsMaxElasticWorkers ({most}) instances")
    if _aks_created(r):
        pools = [_peek_int(r, "aksSystemNodeCount", 1), _peek_int(r, "aksMaxNodeCount", 1)]
        if _peek_bool(r, "acceleratorEnabled", False):
            pools.append(_peek_int(r, "acceleratorNodeCount", 1))
        nodes = sum(n + math.ceil(n * AKS_MAX_SURGE) for n in pools)
        wanted["aks_nodes"] = (nodes, f"{nodes} nodes (every pool at its maximum, plus surge)")
    if _peek_bool(r, "aciEnabled", False):
        wanted["aci"] = (1, "the scoring container group")
    if _peek_bool(r, "containerAppsEnabled", False):
        most = (
            _peek_int(r, "containerAppsMaxReplicas", 1) if str(_peek(r, "containerAppsGpu")) else 1
        )
        wanted["container_apps"] = (most, f"{most} GPU replicas (containerAppsMaxReplicas)")
    return wanted


def _endpoint_budget(r: Reader) -> tuple[int, str]:
    groups = ["vault", "blob", "file", "registry", "amlworkspace"]
    if _peek_bool(r, "redisEnabled", False) and not str(r.raw("redisHost")[1]):
        groups.append("redis")
    need = sum(ENDPOINT_ADDRESSES.get(g, 1) for g in groups)
    return need, f"{len(groups)} private endpoints ({need} addresses)"


def _check_size(r: Reader, role: str, net: IPv4Net, wanted: tuple[int, str]) -> None:
    key = SUBNETS[role][0]
    need, what = wanted
    usable = net.num_addresses - AZURE_RESERVED
    if role in ("app_service", "functions") and net.prefixlen > WEB_SMALLEST:
        r.fail(
            key,
            str(net),
            f"App Service VNet integration needs at least a /{WEB_SMALLEST}",
            f"use a /{WEB_RECOMMENDED} (recommended) or larger",
        )
    elif role == "container_apps" and net.prefixlen > CONTAINER_APPS_SMALLEST:
        r.fail(
            key,
            str(net),
            f"a workload profiles Container Apps environment needs at least a "
            f"/{CONTAINER_APPS_SMALLEST}",
            f"use a /{CONTAINER_APPS_SMALLEST} or larger (the default is a /26)",
        )
    elif usable < need:
        bigger = 32 - math.ceil(math.log2(need + AZURE_RESERVED))
        r.fail(
            key,
            str(net),
            f"{usable} usable addresses (Azure keeps {AZURE_RESERVED}); it must hold {what}",
            f"use a /{bigger} or larger",
        )


def _check_aks_ranges(r: Reader, vnet: IPv4Net) -> None:
    for label, cidr in (("pod CIDR", AKS_POD_CIDR), ("service CIDR", AKS_SERVICE_CIDR)):
        if vnet.overlaps(ipaddress.IPv4Network(cidr)):
            r.fail(
                "vnetAddressSpace",
                str(vnet),
                f"overlaps the AKS cluster's {label} {cidr}, which must stay outside the VNet",
                "pick a VNet range apart from 10.0.0.0/16 and 10.244.0.0/16, e.g. 10.20.0.0/16",
            )


# --- allow-lists ----------------------------------------------------------------------------------
def _ip_list(r: Reader, key: str, *, limit: int = 0) -> tuple[str, ...]:
    """Comma-separated IPv4 addresses or CIDRs, public, no duplicates; normalised to CIDRs."""
    raw = r.str(key)
    found: list[IPv4Net] = []
    for item in (t.strip() for t in raw.split(",")):
        if not item:
            continue
        try:
            net = ipaddress.IPv4Network(item, strict=True)
        except ValueError as e:
            r.fail(key, item, f"not an IPv4 address or CIDR ({e})", _list_fix(key, item))
            continue
        if net.prefixlen == 0:
            r.fail(key, item, "admits every address", "list specific ranges (or leave it empty)")
        elif any(net.subnet_of(p) or p.subnet_of(net) for p in NOT_PUBLIC):
            r.fail(
                key,
                item,
                "not a public range (private, loopback, link-local and reserved addresses never "
                "reach a public endpoint)",
                "list the public egress IPs (what https://ifconfig.me shows from that network)",
            )
        elif net in found:
            r.fail(key, item, "listed twice", "list each range once")
        else:
            found.append(net)
    if limit and len(found) > limit:
        r.fail(key, f"{len(found)} ranges", f"more than {limit}", "merge ranges into wider CIDRs")
    return tuple(str(n) for n in found)


def _list_fix(key: str, item: str) -> str:
    try:
        return f"use {ipaddress.IPv4Network(item, strict=False)} (the network of that address)"
    except ValueError:
        return f"list IPv4 addresses or CIDRs in mlscore:{key}, comma-separated"


# --- keys of other sections, read without reporting (their section reports them) ------------------
def _peek(r: Reader, key: str) -> Any:
    return r.raw(key)[1]


def _peek_bool(r: Reader, key: str, default: bool) -> bool:
    value = _peek(r, key)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "1": True, "yes": True, "on": True}.get(
        text, default if text not in ("false", "0", "no", "off") else False
    )


def _peek_int(r: Reader, key: str, default: int) -> int:
    try:
        return int(str(_peek(r, key)).strip())
    except ValueError:
        return default
