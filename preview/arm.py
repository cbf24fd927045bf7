"""The program's Azure resources as an ARM template, for scanners that read ARM (checkov).

``template(resources)`` turns what the mock engine recorded (``preview.engine``) into a
``deploymentTemplate`` document: every ``azure-native:<module>:<Type>`` resource becomes an ARM
resource of its ARM type (``Microsoft.X/y``), with the API version the installed SDK uses (its
resource module says "Uses Azure REST API version ..."), the ARM name (``parent/child`` for
child resources), the top-level ARM keys (``location``, ``sku``, ``kind``, ``identity``,
``zones``, ...) and the rest in ``properties``, which is where azure-native flattens it from.
Where azure-native renamed an ARM property (``enableHttpsTrafficOnly`` is ARM's
``supportsHttpsTrafficOnly``; a secret's ``expires`` is ARM's ``exp``) the ARM name is restored,
so a scanner sees what ARM would receive.

Resources that are not ARM resources (Kubernetes objects, Docker images, random values, dynamic
providers, the data-plane ``storage:Blob``) are left out: ``skipped()`` lists them. An
azure-native type missing from ``ARM_TYPES`` is an error, so a new resource cannot silently
escape the scan::

    python -m preview.arm prod -o prod.json [--set KEY=VALUE]   # deploy-mode values
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from preview import engine

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"

# token -> (ARM type, the inputs (or "=literal" segments) that make up its ARM name, in order)
ARM_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "app:ContainerApp": ("Microsoft.App/containerApps", ("containerAppName",)),
    "app:ManagedEnvironment": ("Microsoft.App/managedEnvironments", ("environmentName",)),
    "applicationinsights:Component": ("Microsoft.Insights/components", ("resourceName",)),
    "authorization:RoleAssignment": (
        "Microsoft.Authorization/roleAssignments",
        ("roleAssignmentName",),
    ),
    "containerinstance:ContainerGroup": (
        "Microsoft.ContainerInstance/containerGroups",
        ("containerGroupName",),
    ),
    "containerregistry:Registry": ("Microsoft.ContainerRegistry/registries", ("registryName",)),
    "containerregistry:ScopeMap": (
        "Microsoft.ContainerRegistry/registries/scopeMaps",
        ("registryName", "scopeMapName"),
    ),
    "containerregistry:Token": (
        "Microsoft.ContainerRegistry/registries/tokens",
        ("registryName", "tokenName"),
    ),
    "containerservice:ManagedCluster": (
        "Microsoft.ContainerService/managedClusters",
        ("resourceName",),
    ),
    "containerservice:AgentPool": (
        "Microsoft.ContainerService/managedClusters/agentPools",
        ("resourceName", "agentPoolName"),
    ),
    "iothub:IotHubResource": ("Microsoft.Devices/IotHubs", ("resourceName",)),
    "keyvault:Vault": ("Microsoft.KeyVault/vaults", ("vaultName",)),
    "keyvault:Secret": ("Microsoft.KeyVault/vaults/secrets", ("vaultName", "secretName")),
    "managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        ("resourceName",),
    ),
    "managedidentity:FederatedIdentityCredential": (
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
        ("resourceName", "federatedIdentityCredentialResourceName"),
    ),
    "monitor:ActionGroup": ("Microsoft.Insights/actionGroups", ("actionGroupName",)),
    "monitor:AzureMonitorWorkspace": ("Microsoft.Monitor/accounts", ("azureMonitorWorkspaceName",)),
    "monitor:DataCollectionEndpoint": (
        "Microsoft.Insights/dataCollectionEndpoints",
        ("dataCollectionEndpointName",),
    ),
    "alertsmanagement:PrometheusRuleGroup": (
        "Microsoft.AlertsManagement/prometheusRuleGroups",
        ("ruleGroupName",),
    ),
    "dashboard:Grafana": ("Microsoft.Dashboard/grafana", ("workspaceName",)),
    "network:NetworkSecurityGroup": (
        "Microsoft.Network/networkSecurityGroups",
        ("networkSecurityGroupName",),
    ),
    "network:VirtualNetwork": ("Microsoft.Network/virtualNetworks", ("virtualNetworkName",)),
    "network:Subnet": (
        "Microsoft.Network/virtualNetworks/subnets",
        ("virtualNetworkName", "subnetName"),
    ),
    "network:PrivateEndpoint": ("Microsoft.Network/privateEndpoints", ("privateEndpointName",)),
    "network:PrivateDnsZoneGroup": (
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
        ("privateEndpointName", "privateDnsZoneGroupName"),
    ),
    "network:PublicIPAddress": ("Microsoft.Network/publicIPAddresses", ("publicIpAddressName",)),
    "privatedns:PrivateZone": ("Microsoft.Network/privateDnsZones", ("privateZoneName",)),
    "privatedns:VirtualNetworkLink": (
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        ("privateZoneName", "virtualNetworkLinkName"),
    ),
    "monitor:AutoscaleSetting": (
        "Microsoft.Insights/autoscalesettings",
        ("autoscaleSettingName",),
    ),
    "monitor:DataCollectionRule": (
        "Microsoft.Insights/dataCollectionRules",
        ("dataCollectionRuleName",),
    ),
    "monitor:DataCollectionRuleAssociation": (
        "Microsoft.Insights/dataCollectionRuleAssociations",
        ("associationName",),
    ),
    "monitor:DiagnosticSetting": ("Microsoft.Insights/diagnosticSettings", ("name",)),
    "monitor:MetricAlert": ("Microsoft.Insights/metricAlerts", ("ruleName",)),
    "monitor:ScheduledQueryRule": ("Microsoft.Insights/scheduledQueryRules", ("ruleName",)),
    "operationalinsights:Workspace": (
        "Microsoft.OperationalInsights/workspaces",
        ("workspaceName",),
    ),
    "redis:Redis": ("Microsoft.Cache/redis", ("name",)),
    "redisenterprise:RedisEnterprise": ("Microsoft.Cache/redisEnterprise", ("clusterName",)),
    "redisenterprise:Database": (
        "Microsoft.Cache/redisEnterprise/databases",
        ("clusterName", "databaseName"),
    ),
    "redisenterprise:AccessPolicyAssignment": (
        "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments",
        ("clusterName", "databaseName", "accessPolicyAssignmentName"),
    ),
    "resources:ResourceGroup": ("Microsoft.Resources/resourceGroups", ("resourceGroupName",)),
    "servicebus:Namespace": ("Microsoft.ServiceBus/namespaces", ("namespaceName",)),
    "servicebus:Queue": (
        "Microsoft.ServiceBus/namespaces/queues",
        ("namespaceName", "queueName"),
    ),
    "storage:StorageAccount": ("Microsoft.Storage/storageAccounts", ("accountName",)),
    "storage:BlobContainer": (
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        ("accountName", "=default", "containerName"),
    ),
    "web:AppServicePlan": ("Microsoft.Web/serverfarms", ("name",)),
    "web:WebApp": ("Microsoft.Web/sites", ("name",)),
    "web:WebAppFtpAllowed": (
        "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
        ("name", "=ftp"),
    ),
    "web:WebAppScmAllowed": (
        "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
        ("name", "=scm"),
    ),
}
_ML = "Microsoft.MachineLearningServices/workspaces"
ARM_TYPES.update(
    {
        f"machinelearningservices:{token}": (f"{_ML}{child}", ("workspaceName", *names))
        for token, child, names in (
            ("Workspace", "", ()),
            ("BatchEndpoint", "/batchEndpoints", ("endpointName",)),
            ("BatchDeployment", "/batchEndpoints/deployments", ("endpointName", "deploymentName")),
            ("OnlineEndpoint", "/onlineEndpoints", ("endpointName",)),
            (
                "OnlineDeployment",
                "/onlineEndpoints/deployments",
                ("endpointName", "deploymentName"),
            ),
            ("CodeContainer", "/codes", ("name",)),
            ("CodeVersion", "/codes/versions", ("name", "version")),
            ("Compute", "/computes", ("computeName",)),
            ("Datastore", "/datastores", ("name",)),
            ("ManagedNetworkSettingsRule", "/outboundRules", ("ruleName",)),
            ("EnvironmentContainer", "/environments", ("name",)),
            ("EnvironmentVersion", "/environments/versions", ("name", "version")),
            ("ModelContainer", "/models", ("name",)),
            ("ModelVersion", "/models/versions", ("name", "version")),
        )
    }
)
# azure-native types that are no ARM resource (data-plane objects).
NOT_ARM = {"storage:Blob"}
# ARM's keys beside ``properties``.
TOP_LEVEL = ("location", "tags", "sku", "kind", "identity", "zones", "extendedLocation", "plan")
# Where azure-native renamed an ARM property: ARM type -> {path in properties: ARM key}.
RENAMED: dict[str, dict[tuple[str, ...], str]] = {
    "Microsoft.Storage/storageAccounts": {
        ("enableHttpsTrafficOnly",): "supportsHttpsTrafficOnly",
        ("networkRuleSet",): "networkAcls",
    },
    "Microsoft.KeyVault/vaults/secrets": {
        ("attributes", "expires"): "exp",
        ("attributes", "notBefore"): "nbf",
    },
}
_API_VERSION = re.compile(r"Uses Azure REST API version ([0-9]{4}-[0-9]{2}-[0-9]{2}[a-z-]*)")


class UnknownType(Exception):
    """An azure-native resource type this converter has no ARM type for."""


@dataclass(frozen=True)
class Resource:
    """What the converter needs of a recorded resource (``engine.Registered`` has it)."""

    type: str
    name: str
    inputs: Mapping[str, Any]


def _sdk_class(token: str) -> type:
    module, cls = token.split(":")
    return getattr(importlib.import_module(f"pulumi_azure_native.{module}"), cls)


@cache
def api_version(token: str) -> str:
    """The REST API version the installed SDK's resource uses (from its module's docs)."""
    cls = _sdk_class(token)
    text = Path(inspect.getfile(cls)).read_text()
    found = _API_VERSION.search(text)
    if not found:
        raise UnknownType(f"{token}: no 'Uses Azure REST API version' in {inspect.getfile(cls)}")
    return found.group(1)


@cache
def _takes_properties(token: str) -> bool:
    """Whether the SDK resource has a ``properties`` input (else it flattens them)."""
    return "properties" in inspect.signature(_sdk_class(token)._internal_init).parameters


def _plain(value: Any) -> Any:
    value = engine.reveal(value)
    if isinstance(value, engine.Computed):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return engine.to_json(value)


def _rename(arm_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    for path, arm_key in RENAMED.get(arm_type, {}).items():
        node: Any = properties
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            node[arm_key] = node.pop(path[-1])
    return properties


def arm_resource(r: Resource) -> dict[str, Any]:
    """One azure-native resource as an ARM resource."""
    token = r.type.removeprefix("azure-native:")
    if token not in ARM_TYPES:
        raise UnknownType(
            f"{r.type} ({r.name}) has no ARM type in preview/arm.py's ARM_TYPES: add it "
            "(learn.microsoft.com/azure/templates lists each type)"
        )
    arm_type, name_keys = ARM_TYPES[token]
    inputs = _plain(dict(r.inputs))
    inputs.pop("__provider", None)
    segments = [k[1:] if k.startswith("=") else str(inputs.get(k) or r.name) for k in name_keys]
    out: dict[str, Any] = {
        "type": arm_type,
        "apiVersion": api_version(token),
        "name": "/".join(segments),
        "metadata": {"pulumi": {"type": r.type, "name": r.name}},
    }
    path_keys = {k for k in name_keys if not k.startswith("=")} | {"resourceGroupName", "name"}
    for key in TOP_LEVEL:
        if inputs.get(key) is not None:
            out[key] = inputs.pop(key)
    for key in ("scope", "resourceUri"):  # extension resources (role assignments, diagnostics)
        if key in inputs:
            out["scope"] = inputs.pop(key)
    rest = {k: v for k, v in inputs.items() if k not in path_keys and v is not None}
    if _takes_properties(token) and isinstance(rest.get("properties"), dict):
        properties = {**rest.pop("properties"), **rest}
    else:
        properties = rest
    out["properties"] = _rename(arm_type, properties)
    return out


def is_arm(r: Resource) -> bool:
    return r.type.startswith("azure-native:") and r.type.removeprefix("azure-native:") not in (
        NOT_ARM
    )


def skipped(resources: Iterable[Resource]) -> list[str]:
    """The recorded custom resources the template leaves out (not ARM resources)."""
    return [f"{r.type} {r.name}" for r in resources if not is_arm(r)]


def template(resources: Iterable[Resource]) -> dict[str, Any]:
    """The ARM deployment template of every ARM resource among ``resources``."""
    converted = [arm_resource(r) for r in resources if is_arm(r)]
    return {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": _unique(converted)}


def _unique(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Extension resources of the same name on different scopes (a diagnostic setting per
    resource) share type and name; scanners key resources by them, so the scope's name is added
    to each repeated one (``name@scope``), then a count if that is not enough."""
    counts: dict[tuple[str, str], int] = {}
    for r in resources:
        counts[(r["type"], r["name"])] = counts.get((r["type"], r["name"]), 0) + 1
    seen: set[tuple[str, str]] = set()
    for r in resources:
        if counts[(r["type"], r["name"])] > 1 and isinstance(r.get("scope"), str):
            r["name"] = f"{r['name']}@{r['scope'].rstrip('/').rsplit('/', 1)[-1]}"
        base, n = r["name"], 1
        while (r["type"], r["name"]) in seen:
            n += 1
            r["name"] = f"{base}#{n}"
        seen.add((r["type"], r["name"]))
    return resources


def from_run(run: engine.Run) -> dict[str, Any]:
    """The template of a mock-engine run's custom resources."""
    return template(Resource(r.type, r.name, r.inputs) for r in run.resources if r.custom)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preview.arm", description=__doc__)
    parser.add_argument("stack", nargs="?", default="prod")
    parser.add_argument("-o", "--output", help="write the template here (default: stdout)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    from preview.__main__ import parse_set

    run = engine.run(args.stack, parse_set(args.set), preview=False)
    if run.error is not None:
        print(f"error: the {args.stack} program failed: {run.error}", file=sys.stderr)
        return 1
    text = json.dumps(from_run(run), indent=2, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
