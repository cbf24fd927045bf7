"""AKS readiness and monitoring on the graph of dev and prod: the first Kubernetes call waits for
the deployer's RBAC role to work (not only to exist), and Container Insights has the data
collection rule and association that make its agent collect."""

from __future__ import annotations

from typing import Any

import yaml

from components.targets.aks import insights
from components.targets.aks.cluster import FIRST_CALLS, api_target
from preview import engine, fakes

CLUSTER = "azure-native:containerservice:ManagedCluster"
ROLE = "azure-native:authorization:RoleAssignment"
DYNAMIC = "pulumi-python:dynamic:Resource"
DCR = "azure-native:monitor:DataCollectionRule"
DCRA = "azure-native:monitor:DataCollectionRuleAssociation"
K8S_PROVIDER = "pulumi:providers:kubernetes"


def access(run: engine.Run) -> engine.Registered:
    return run.one(DYNAMIC, "deployer-api-access")


def arm_id(run: engine.Run, type_: str, name: str | None = None) -> str:
    return fakes.arm_id(type_, run.one(type_, name).azure_name)


# --- readiness: the deployer's role works before the first Kubernetes call ---------------------
def test_kubernetes_provider_waits_for_the_access_review_not_only_the_grant(
    each_stack: engine.Run,
) -> None:
    provider = each_stack.one(K8S_PROVIDER)
    # every Kubernetes resource goes through this provider, so none starts before the wait
    assert access(each_stack).urn in provider.dependencies


def test_the_wait_follows_the_deployer_grant_and_asks_the_clusters_api(
    each_stack: engine.Run,
) -> None:
    wait = engine.reveal(access(each_stack).inputs)
    grant = each_stack.one(ROLE, "deployer-cluster-admin")
    assert wait["role_assignment_id"] == fakes.arm_id(ROLE, grant.azure_name)
    kubeconfig = engine.reveal(each_stack.outputs["aks"]["kubeconfig"])
    target = api_target(kubeconfig)
    assert wait["server"] == target["server"] and wait["server"].startswith("https://")
    assert wait["ca_data"] == target["ca_data"] != ""
    assert wait["server_id"] == target["server_id"] != ""
    assert wait["reviews"] == [dict(r) for r in FIRST_CALLS]
    assert 600 <= wait["timeout_s"] <= 1800  # longer than the documented propagation, bounded


def test_api_target_reads_the_server_id_of_the_kubelogin_plugin() -> None:
    config = yaml.safe_load(fakes.fake_aks_kubeconfig("c1"))
    args = config["users"][0]["user"]["exec"]["args"]
    target = api_target(fakes.fake_aks_kubeconfig("c1"))
    assert target["server_id"] == args[args.index("--server-id") + 1]
    assert target["server"] == config["clusters"][0]["cluster"]["server"]


def test_an_attached_cluster_is_checked_too(run_stack: Any) -> None:
    run = run_stack(
        "dev",
        aksExistingClusterId="/subscriptions/0000/resourceGroups/rg-shared/providers/"
        "Microsoft.ContainerService/managedClusters/aks-shared",
    )
    assert run.error is None, run.error
    wait = engine.reveal(access(run).inputs)
    assert wait["role_assignment_id"] == "" and "aks-shared" in wait["server"]
    assert access(run).urn in run.one(K8S_PROVIDER).dependencies
    # Container Insights of an attached cluster is its owner's; managed Prometheus is ours.
    assert [r.name for r in run.of_type(DCR)] == ["prometheus-dcr"]


# --- Container Insights: the rule and the association ------------------------------------------
def test_container_insights_has_its_data_collection_rule(each_stack: engine.Run) -> None:
    rule = each_stack.one(DCR, "container-insights-dcr").inputs
    workspace = arm_id(each_stack, "azure-native:operationalinsights:Workspace")
    cluster_name = each_stack.one(CLUSTER).inputs["resourceName"]
    assert rule["dataCollectionRuleName"] == f"MSCI-westeurope-{cluster_name}"
    assert rule["kind"] == "Linux"
    (extension,) = rule["dataSources"]["extensions"]
    assert extension["extensionName"] == "ContainerInsights"
    assert "Microsoft-ContainerLogV2" in extension["streams"]
    assert extension["extensionSettings"]["dataCollectionSettings"]["enableContainerLogV2"]
    (destination,) = rule["destinations"]["logAnalytics"]
    assert destination["workspaceResourceId"] == workspace
    (flow,) = rule["dataFlows"]
    assert flow["streams"] == extension["streams"]
    assert flow["destinations"] == [destination["name"]]


def test_the_rule_is_associated_with_the_cluster(each_stack: engine.Run) -> None:
    association = each_stack.one(DCRA, "container-insights-dcra")
    assert association.inputs["associationName"] == "ContainerInsightsExtension"
    assert association.inputs["resourceUri"] == arm_id(each_stack, CLUSTER)
    assert association.inputs["dataCollectionRuleId"] == arm_id(
        each_stack, DCR, "container-insights-dcr"
    )
    # the add-on stays on: the rule tells its agent what to collect
    addon = each_stack.one(CLUSTER).inputs["addonProfiles"]["omsagent"]
    assert addon["enabled"] is True and addon["config"]["useAADAuth"] == "true"


def test_the_rule_does_not_wait_for_the_cluster(each_stack: engine.Run) -> None:
    rule = each_stack.one(DCR, "container-insights-dcr")
    assert each_stack.one(CLUSTER).urn not in rule.dependencies
    assert insights.dcr_name("westeurope", "x" * 80) == ("MSCI-westeurope-" + "x" * 80)[:64]


def test_the_deployments_wait_for_the_user_pool_and_nothing_else_does(
    each_stack: engine.Run,
) -> None:
    # the scoring and tls-sync pods run only on the user pool (the system pool is tainted
    # CriticalAddonsOnly): their Deployments wait for its nodes, or the rollout await times out
    # on a first run; the namespace, secrets and services need only the API, so they do not
    # wait for the pool (bench/critical_path.py counts that ordering as Azure's)
    pools = each_stack.of_type("azure-native:containerservice:AgentPool")
    (user,) = [p for p in pools if p.name == "user-pool"]
    deployments = each_stack.of_type("kubernetes:apps/v1:Deployment")
    on_user_pool = [d for d in deployments if not d.name.startswith("accelerator")]
    assert {d.name for d in on_user_pool} >= {"deployment"}
    for d in on_user_pool:
        assert user.urn in d.dependencies, d.name
    provider = each_stack.one(K8S_PROVIDER, "aks")
    assert user.urn not in provider.dependencies
    namespace = each_stack.one("kubernetes:core/v1:Namespace")
    assert user.urn not in namespace.dependencies
