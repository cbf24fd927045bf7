"""Azure Managed Prometheus for the scoring pods' in-flight gauge, and the identity KEDA reads
it with.

Azure side, as Microsoft's ARM onboarding of managed Prometheus declares it
(https://learn.microsoft.com/azure/azure-monitor/containers/kubernetes-monitoring-enable, "ARM";
the same four resources as the AKS Bicep samples): an **Azure Monitor workspace**, a **data
collection endpoint** and a **data collection rule** named ``MSProm-<region>-<cluster>`` (at most
44 characters) whose ``prometheusForwarder`` source sends ``Microsoft-PrometheusMetrics`` to the
workspace, and the rule's **association** with the cluster. The cluster's
``azureMonitorProfile.metrics`` runs the agent (profiles.py).

KEDA: a user-assigned identity of its own (it reads metrics, nothing else), **Monitoring Data
Reader** on the workspace (the role that may query it,
https://learn.microsoft.com/azure/azure-monitor/metrics/prometheus-api-promql), and a federated
credential for the KEDA add-on's operator service account ``kube-system/keda-operator``
(https://learn.microsoft.com/azure/azure-monitor/containers/integrate-keda); the
TriggerAuthentication names this identity (``podIdentity.identityId``, scaling.py).

**A fresh cluster: one step this program does not take.** Microsoft's guide for the KEDA add-on
with workload identity (https://learn.microsoft.com/azure/aks/keda-workload-identity) creates the
identity and the federated credential for ``kube-system/keda-operator``, then restarts the
operator (``kubectl rollout restart deploy keda-operator -n kube-system``) and checks that its
pods carry ``AZURE_FEDERATED_TOKEN_FILE``, ``AZURE_CLIENT_ID`` and ``AZURE_TENANT_ID``: the
workload identity webhook injects them only when a pod is created, and on a new cluster the
add-on's operator pods may be created before the webhook serves. Without them KEDA cannot get a
token and the ScaledObject reports an authentication error: the HPA holds the replica count,
nothing scales. The operator's Deployment belongs to the add-on (in ``kube-system``, reconciled
by AKS), so the program neither patches it nor restarts it: a rollout-restart annotation would be
a change to a managed object that AKS may revert, and a Pulumi resource fighting the add-on. After
the first ``pulumi up`` of a new cluster, if ``kubectl describe scaledobject scoring -n
<prefix>-scoring`` shows a credential error, run the restart above once. An operator pod created
later (node drains, upgrades, AKS' own rollouts) gets the variables from the webhook by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.managedidentity as managedidentity
import pulumi_azure_native.monitor as monitor

from components.contract import role_definition_id
from components.settings import Settings

ROLE_MONITORING_DATA_READER = "b0d8363b-8ddd-447d-831f-62ca05bff136"
STREAM = "Microsoft-PrometheusMetrics"
DESTINATION = "MonitoringAccount1"
MAX_NAME = 44  # DCE/DCR names of the onboarding template: take('MSProm-<region>-<cluster>', 44)
KEDA_SUBJECT = "system:serviceaccount:kube-system:keda-operator"
# The audience Entra ID expects in a Kubernetes service account token it exchanges.
TOKEN_AUDIENCE = "api://AzureADTokenExchange"


def msprom_name(location: str, cluster_name: str) -> str:
    return f"MSProm-{location}-{cluster_name}"[:MAX_NAME]


@dataclass(frozen=True)
class ManagedPrometheus:
    workspace: monitor.AzureMonitorWorkspace
    query_endpoint: pulumi.Output[str]
    rule: monitor.DataCollectionRule
    association: monitor.DataCollectionRuleAssociation
    keda_identity: managedidentity.UserAssignedIdentity
    keda_reader: authorization.RoleAssignment
    keda_credential: managedidentity.FederatedIdentityCredential


def managed_prometheus(
    s: Settings,
    resource_group_name: pulumi.Input[str],
    subscription_id: pulumi.Input[str],
    cluster_id: pulumi.Input[str],
    cluster_name: str,
    oidc_issuer_url: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> ManagedPrometheus:
    name = msprom_name(s.location, cluster_name)
    workspace = monitor.AzureMonitorWorkspace(
        "prometheus-workspace",
        azure_monitor_workspace_name=s.naming.dashed("amw"),
        resource_group_name=resource_group_name,
        location=s.location,
        tags=dict(s.tags),
        opts=opts,
    )
    endpoint = monitor.DataCollectionEndpoint(
        "prometheus-dce",
        data_collection_endpoint_name=name,
        resource_group_name=resource_group_name,
        location=s.location,
        kind="Linux",
        tags=dict(s.tags),
        opts=opts,
    )
    rule = monitor.DataCollectionRule(
        "prometheus-dcr",
        data_collection_rule_name=name,
        resource_group_name=resource_group_name,
        location=s.location,
        kind="Linux",
        data_collection_endpoint_id=endpoint.id,
        data_sources=monitor.DataCollectionRuleDataSourcesArgs(
            prometheus_forwarder=[
                monitor.PrometheusForwarderDataSourceArgs(
                    name="PrometheusDataSource", streams=[STREAM], label_include_filter={}
                )
            ]
        ),
        destinations=monitor.DataCollectionRuleDestinationsArgs(
            monitoring_accounts=[
                monitor.MonitoringAccountDestinationArgs(
                    account_resource_id=workspace.id, name=DESTINATION
                )
            ]
        ),
        data_flows=[monitor.DataFlowArgs(streams=[STREAM], destinations=[DESTINATION])],
        description="Azure Managed Prometheus of the AKS cluster (scoring in-flight gauge)",
        tags=dict(s.tags),
        opts=opts,
    )
    association = monitor.DataCollectionRuleAssociation(
        "prometheus-dcra",
        association_name=name,
        resource_uri=cluster_id,
        data_collection_rule_id=rule.id,
        description="Managed Prometheus of this cluster: deleting it stops metric collection.",
        opts=opts,
    )
    keda = managedidentity.UserAssignedIdentity(
        "keda-identity",
        resource_name_=s.naming.dashed("keda"),
        resource_group_name=resource_group_name,
        location=s.location,
        tags=dict(s.tags),
        opts=opts,
    )
    reader = authorization.RoleAssignment(
        "keda-monitoring-reader",
        principal_id=keda.principal_id,
        principal_type="ServicePrincipal",
        role_definition_id=role_definition_id(subscription_id, ROLE_MONITORING_DATA_READER),
        scope=workspace.id,
        opts=opts,
    )
    credential = managedidentity.FederatedIdentityCredential(
        "keda-operator-credential",
        federated_identity_credential_resource_name="keda-operator",
        resource_group_name=resource_group_name,
        resource_name_=keda.name,
        issuer=oidc_issuer_url,
        subject=KEDA_SUBJECT,
        audiences=[TOKEN_AUDIENCE],
        opts=opts,
    )
    query = workspace.metrics.apply(lambda m: (m.prometheus_query_endpoint if m else "") or "")
    return ManagedPrometheus(workspace, query, rule, association, keda, reader, credential)
