"""Container Insights that collects: the data collection rule and its association to the cluster.

The ``omsagent`` add-on with managed identity auth (``useAADAuth``) only runs the agent: what it
collects and where it sends it is a data collection rule (DCR) associated with the cluster. ``az
aks enable-addons`` creates both (the DCR ``MSCI-<region>-<cluster>`` and the association
``ContainerInsightsExtension``); an ARM deployment of the cluster does not, so the agent collects
nothing. Microsoft's ARM template for onboarding with managed identity declares the same pair
(https://learn.microsoft.com/azure/azure-monitor/containers/kubernetes-monitoring-enable, "ARM";
template ``existingClusterOnboarding.json`` of microsoft/Docker-Provider,
``scripts/onboarding/aks/onboarding-using-msi-auth``): a ``Linux`` DCR with the
``ContainerInsights`` extension data source and its streams flowing to the workspace, and the
association named ``ContainerInsightsExtension`` on the cluster. The DCR is named as the CLI
names it (https://learn.microsoft.com/azure/azure-monitor/containers/container-insights-data-collection-configure).

The DCR needs only the workspace, so it is created alongside the cluster; only the association
waits for both.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native.containerservice as cs
import pulumi_azure_native.monitor as monitor

from components.settings import Settings

ASSOCIATION_NAME = "ContainerInsightsExtension"  # the name the CLI and the template use
DESTINATION = "ciworkspace"
# The template's default streams (ContainerLogV2 rather than the legacy ContainerLog; without the
# network flow logs, which need high-log-scale mode and a data collection endpoint).
STREAMS = (
    "Microsoft-ContainerLogV2",
    "Microsoft-KubeEvents",
    "Microsoft-KubePodInventory",
    "Microsoft-KubeNodeInventory",
    "Microsoft-KubePVInventory",
    "Microsoft-KubeServices",
    "Microsoft-KubeMonAgentEvents",
    "Microsoft-InsightsMetrics",
    "Microsoft-ContainerInventory",
    "Microsoft-ContainerNodeInventory",
    "Microsoft-Perf",
)
MAX_DCR_NAME = 64


def dcr_name(location: str, cluster_name: str) -> str:
    return f"MSCI-{location}-{cluster_name}"[:MAX_DCR_NAME]


class ContainerInsights:
    """The DCR and its association (plain holder: both are children of the cluster component)."""

    def __init__(
        self,
        rule: monitor.DataCollectionRule,
        association: monitor.DataCollectionRuleAssociation,
    ):
        self.rule = rule
        self.association = association


def container_insights(
    s: Settings,
    resource_group_name: pulumi.Input[str],
    cluster: cs.ManagedCluster,
    log_analytics_workspace_id: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> ContainerInsights:
    rule = monitor.DataCollectionRule(
        "container-insights-dcr",
        # the cluster's name is known before the cluster: the rule does not wait for it
        data_collection_rule_name=dcr_name(s.location, s.naming.dashed("aks")),
        resource_group_name=resource_group_name,
        location=s.location,
        kind="Linux",
        data_sources=monitor.DataCollectionRuleDataSourcesArgs(
            extensions=[
                monitor.ExtensionDataSourceArgs(
                    name=ASSOCIATION_NAME,
                    extension_name="ContainerInsights",
                    streams=list(STREAMS),
                    extension_settings={
                        "dataCollectionSettings": {
                            "interval": "1m",
                            "namespaceFilteringMode": "Off",
                            "enableContainerLogV2": True,
                        }
                    },
                )
            ]
        ),
        destinations=monitor.DataCollectionRuleDestinationsArgs(
            log_analytics=[
                monitor.LogAnalyticsDestinationArgs(
                    name=DESTINATION, workspace_resource_id=log_analytics_workspace_id
                )
            ]
        ),
        data_flows=[monitor.DataFlowArgs(streams=list(STREAMS), destinations=[DESTINATION])],
        description="Container Insights of the scoring cluster (what az aks enable-addons creates)",
        tags=dict(s.tags),
        opts=opts,
    )
    association = monitor.DataCollectionRuleAssociation(
        "container-insights-dcra",
        association_name=ASSOCIATION_NAME,
        resource_uri=cluster.id,
        data_collection_rule_id=rule.id,
        description="Deleting this association stops Container Insights collecting for the cluster",
        opts=opts,
    )
    return ContainerInsights(rule, association)
