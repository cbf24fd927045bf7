"""Diagnostic settings: every resource's logs and metrics to the Log Analytics workspace.

What the Azure Verified Modules do by default for each resource (a ``diagnosticSettings`` entry
with ``logCategoriesAndGroups: [{categoryGroup: 'allLogs'}]`` and ``metricCategories:
[{category: 'AllMetrics'}]``, e.g. Azure/bicep-registry-modules
``avm/res/storage/storage-account/blob-service/main.bicep``), as
``Microsoft.Insights/diagnosticSettings`` (``monitor.DiagnosticSetting``, API 2021-05-01-preview in
pulumi-azure-native 3.x) scoped to the resource:
https://learn.microsoft.com/azure/azure-monitor/essentials/diagnostic-settings (``allLogs``: every
resource log category, including ones added later).

Where a resource type splits them:

- a **storage account** has metrics only; its logs belong to each service
  (``<account>/blobServices/default``), so the account gets ``AllMetrics`` and its blob service
  logs and metrics (the AVM storage modules do the same). The blob service's metrics are named
  (``Capacity``, ``Transaction``), not ``AllMetrics``: Azure expands ``AllMetrics`` into those
  categories when a storage *service* scope's setting is read back, and a drift check
  (``pulumi refresh``/``preview --refresh``) would report the difference forever; the account
  scope returns ``AllMetrics`` unchanged (Azure/terraform-azurerm-avm-res-storage-storageaccount
  #380, "fix: prevent diagnostic settings drift");
- **Azure Managed Redis**: the cluster (``Microsoft.Cache/redisEnterprise``) has the metrics, the
  database (``.../databases/default``) the logs (``ConnectionEvents``:
  https://learn.microsoft.com/azure/azure-monitor/reference/supported-logs/microsoft-cache-redisenterprise-databases-logs;
  AVM's database module takes logs only);
- **AKS**: every control plane category except ``kube-audit``, whose get/list events make it the
  costliest table; ``kube-audit-admin`` keeps the writes
  (https://learn.microsoft.com/azure/aks/monitor-aks#aks-control-planeresource-logs).

Each setting depends on its resource through the resource ID (an output of the component that
declares it), so none is created before its resource exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.monitor as monitor

from components.contract import DiagnosticSource

SETTING_NAME = "to-log-analytics"
ALL_LOGS = "allLogs"
ALL_METRICS = "AllMetrics"
AKS_LOG_CATEGORIES = (
    "kube-apiserver",
    "kube-audit-admin",
    "kube-controller-manager",
    "kube-scheduler",
    "cluster-autoscaler",
    "cloud-controller-manager",
    "guard",
    "csi-azuredisk-controller",
    "csi-azurefile-controller",
    "csi-snapshot-controller",
)


Source = DiagnosticSource  # the contract's type (components/contract.py)

# What Azure reads back for AllMetrics at a storage service scope (blob, queue, table).
STORAGE_SERVICE_METRICS = ("Capacity", "Transaction")


@dataclass(frozen=True)
class StorageServiceSource(DiagnosticSource):
    """A storage service scope (``<account>/blobServices/default``): named metric categories."""

    metric_categories: tuple[str, ...] = STORAGE_SERVICE_METRICS


def resource(name: str, resource_id: pulumi.Input[str]) -> list[Source]:
    """A resource with both (key vault, registry, apps, ML workspace and endpoint, IoT Hub, ...)."""
    return [Source(name, resource_id)]


def storage_account(name: str, account_id: pulumi.Input[str]) -> list[Source]:
    blob = pulumi.Output.concat(account_id, "/blobServices/default")
    return [Source(name, account_id, logs=False), StorageServiceSource(f"{name}-blob", blob)]


def managed_redis(
    name: str, cluster_id: pulumi.Input[str], database_id: pulumi.Input[str]
) -> list[Source]:
    return [
        Source(name, cluster_id, logs=False),
        Source(f"{name}-database", database_id, metrics=False),
    ]


def aks_cluster(name: str, cluster_id: pulumi.Input[str]) -> list[Source]:
    return [Source(name, cluster_id, categories=AKS_LOG_CATEGORIES)]


@dataclass(frozen=True)
class DiagnosticsArgs:
    log_analytics_workspace_id: pulumi.Input[str]
    sources: Sequence[Source]


def _logs(source: Source) -> list[monitor.DiagnosticsLogSettingsArgs] | None:
    if not source.logs:
        return None
    if source.categories:
        return [
            monitor.DiagnosticsLogSettingsArgs(category=c, enabled=True) for c in source.categories
        ]
    return [monitor.DiagnosticsLogSettingsArgs(category_group=ALL_LOGS, enabled=True)]


def _metrics(source: Source) -> list[monitor.DiagnosticsMetricSettingsArgs] | None:
    if not source.metrics:
        return None
    if isinstance(source, StorageServiceSource):
        return [
            monitor.DiagnosticsMetricSettingsArgs(category=c, enabled=True)
            for c in source.metric_categories
        ]
    return [monitor.DiagnosticsMetricSettingsArgs(category=ALL_METRICS, enabled=True)]


class Diagnostics(pulumi.ComponentResource):
    """One diagnostic setting per :class:`Source` (``settings``: by source name)."""

    def __init__(
        self, name: str, args: DiagnosticsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:Diagnostics", name, None, opts)
        names = [src.name for src in args.sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:  # a programming error: two settings would share a URN
            raise ValueError(f"diagnostic sources named twice: {', '.join(duplicates)}")
        child = pulumi.ResourceOptions(parent=self)
        self.settings: dict[str, monitor.DiagnosticSetting] = {
            src.name: monitor.DiagnosticSetting(
                src.name,
                name=SETTING_NAME,
                resource_uri=src.resource_id,
                workspace_id=args.log_analytics_workspace_id,
                logs=_logs(src),
                metrics=_metrics(src),
                opts=child,
            )
            for src in args.sources
        }
        self.register_outputs({"sources": sorted(self.settings)})
