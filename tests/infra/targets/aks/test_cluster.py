"""AKS target under mocks with the real stack files: cluster, pools, identity, vCPU rule, replica
planning, outputs, attach-by-ID and the kubeconfig."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from components.targets.aks import cluster as aks_mod
from preview import engine, fakes
from tests.infra.settings_helpers import load, problems

CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
ROLE = "azure-native:authorization:RoleAssignment"
SCALED = "kubernetes:keda.sh/v1alpha1:ScaledObject"


def arm_id(run: engine.Run, type_: str) -> str:
    r = run.one(type_)
    return fakes.arm_id(type_, r.azure_name)


def ok(run: engine.Run) -> engine.Run:
    assert run.error is None, run.error
    return run


# --- the cluster ------------------------------------------------------------------------------
def test_cluster_has_entra_id_azure_rbac_and_no_local_accounts(each_stack: engine.Run) -> None:
    c = each_stack.one(CLUSTER).inputs
    assert c["enableRBAC"] is True and c["disableLocalAccounts"] is True
    assert c["aadProfile"]["managed"] is True and c["aadProfile"]["enableAzureRBAC"] is True
    assert c["aadProfile"]["tenantID"] == fakes.TENANT
    # Under network isolation (prod) the control plane is user-assigned, granted on the node
    # subnet before the cluster (components/targets/aks/network.py, test_compute_network.py).
    expected = "UserAssigned" if each_stack.stack == "prod" else "SystemAssigned"
    assert c["identity"]["type"] == expected


def test_network_is_azure_cni_overlay_with_cilium_policy(each_stack: engine.Run) -> None:
    net = each_stack.one(CLUSTER).inputs["networkProfile"]
    assert (net["networkPlugin"], net["networkPluginMode"]) == ("azure", "overlay")
    assert (net["networkDataplane"], net["networkPolicy"]) == ("cilium", "cilium")


def test_container_insights_goes_to_the_log_analytics_workspace(dev: engine.Run) -> None:
    addon = dev.one(CLUSTER).inputs["addonProfiles"]["omsagent"]
    workspace = arm_id(dev, "azure-native:operationalinsights:Workspace")
    assert addon["enabled"] is True
    assert addon["config"]["logAnalyticsWorkspaceResourceID"] == workspace
    assert addon["config"]["useAADAuth"] == "true"


def test_system_pool_is_inline_and_tainted_user_pool_is_separate(each_stack: engine.Run) -> None:
    s = load(each_stack.stack)
    (system,) = each_stack.one(CLUSTER).inputs["agentPoolProfiles"]
    assert system["mode"] == "System" and system["osSKU"] == "AzureLinux3"
    assert system["nodeTaints"] == [aks_mod.SYSTEM_TAINT]
    assert (system["vmSize"], system["count"]) == (s.aks.system_vm_size, s.aks.system_node_count)
    user = each_stack.one(POOL, "user-pool").inputs
    assert user["mode"] == "User" and user["osSKU"] == "AzureLinux3"
    assert user["resourceName"] == each_stack.one(CLUSTER).inputs["resourceName"]
    assert user["enableAutoScaling"] is True
    assert (user["minCount"], user["maxCount"]) == (s.aks.node_count, s.aks.max_node_count)
    assert user["vmSize"] == s.aks.vm_size
    assert not each_stack.of_type(POOL)[1:], "no accelerator pool unless asked for"


def test_prod_is_sized_for_production(dev: engine.Run, prod: engine.Run) -> None:
    d, p = dev.one(CLUSTER).inputs, prod.one(CLUSTER).inputs
    assert (d["sku"]["tier"], p["sku"]["tier"]) == ("Free", "Standard")
    assert p["agentPoolProfiles"][0]["count"] >= 3
    user = prod.one(POOL, "user-pool").inputs
    assert user["minCount"] * 8 >= 24 and user["maxCount"] > user["minCount"]


def test_kubelet_identity_gets_acrpull_and_deployer_gets_cluster_admin(dev: engine.Run) -> None:
    cluster = dev.one(CLUSTER)
    pull = dev.one(ROLE, "kubelet-acrpull").inputs
    assert pull["principalId"] == cluster.outputs["identityProfile"]["kubeletidentity"]["objectId"]
    assert pull["scope"] == arm_id(dev, "azure-native:containerregistry:Registry")
    assert pull["roleDefinitionId"].endswith("7f951dda-4ed3-4680-a7ca-43fe172d538d")
    admin = dev.one(ROLE, "deployer-cluster-admin").inputs
    assert admin["principalId"] == fakes.DEPLOYER and admin["scope"] == arm_id(dev, CLUSTER)
    assert admin["roleDefinitionId"].endswith(aks_mod.ROLE_AKS_RBAC_CLUSTER_ADMIN)


def test_kubeconfig_comes_from_user_credentials_and_is_secret(dev: engine.Run) -> None:
    (call,) = [a for t, a in dev.calls if t.endswith("listManagedClusterUserCredentials")]
    assert call["resourceName"] == "mlscore-dev-aks"
    out = dev.outputs["aks"]
    assert out["cluster_name"] == "mlscore-dev-aks"
    assert isinstance(out["kubeconfig"], engine.Secret)
    config = yaml.safe_load(engine.reveal(out["kubeconfig"]))
    exec_ = config["users"][0]["user"]["exec"]
    assert exec_["command"] == "kubelogin"
    assert exec_["args"][-2:] == ["--login", "azurecli"] and "devicecode" not in exec_["args"]
    assert "--client-id" not in exec_["args"] and "--server-id" in exec_["args"]
    provider = dev.one("pulumi:providers:kubernetes")
    assert engine.reveal(provider.inputs["kubeconfig"]) == engine.reveal(out["kubeconfig"])


@pytest.mark.parametrize(
    ("login", "client_id_kept"), [("workloadidentity", False), ("spn", True), ("azurecli", False)]
)
def test_kubelogin_mode_rewrites_the_exec_plugin(login: str, client_id_kept: bool) -> None:
    converted = yaml.safe_load(aks_mod.use_kubelogin(fakes.fake_aks_kubeconfig("c1"), login))
    args = converted["users"][0]["user"]["exec"]["args"]
    assert args.count("--login") == 1 and args[args.index("--login") + 1] == login
    assert ("--client-id" in args) is client_id_kept
    assert converted["clusters"][0]["cluster"]["server"].startswith("https://c1-")


def test_aks_endpoint_is_in_the_shared_contract(dev: engine.Run, prod: engine.Run) -> None:
    # dev: no domain, plain HTTP on the Istio gateway's IP (aksAllowHttp, dev only). The IP is
    # awaited on the add-on's gateway Service (providers/gateway_address.py); the fake Azure
    # answers with an address.
    ep = dev.outputs["endpoints"]["aks"]
    ip = ep["ingress_ip"]
    assert ep["tls"] is False
    for key, path in (("scoring_uri", "/score"), ("swagger_uri", "/swagger.json")):
        assert ep[key].startswith("http:") and ep[key].endswith(f"{ip}{path}")
    assert ep["health_uri"].endswith(f"{ip}/ready")
    assert ep["auth"]["scheme"] == "bearer-key" and isinstance(ep["auth"]["key"], engine.Secret)
    assert ep["cluster"] == "mlscore-dev-aks"
    assert "aks_accelerator" not in dev.outputs["endpoints"]
    # prod: HTTPS on the configured host
    ep = prod.outputs["endpoints"]["aks"]
    host = load("prod").aks.ingress.host
    assert ep["scoring_uri"] == f"https://{host}/score" and ep["tls"] is True


def test_aks_off_leaves_nothing(run_stack: Any) -> None:
    run = ok(run_stack("dev", aksEnabled=False))
    assert not [r for r in run.resources if "aks" in r.type.lower() or r.type.startswith("kube")]
    assert not run.of_type(CLUSTER) and not run.of_type(POOL)
    assert "aks" not in run.outputs and "aks" not in run.outputs["endpoints"]


# --- attach an existing cluster ---------------------------------------------------------------
EXISTING = (
    "/subscriptions/0000/resourceGroups/rg-shared/providers/"
    "Microsoft.ContainerService/managedClusters/aks-shared"
)


def test_attached_cluster_is_looked_up_not_created(run_stack: Any) -> None:
    run = ok(run_stack("dev", aksExistingClusterId=EXISTING))
    assert not run.of_type(CLUSTER) and not run.of_type(POOL)
    lookups = [a for t, a in run.calls if t.endswith("getManagedCluster")]
    assert lookups == [{"resourceGroupName": "rg-shared", "resourceName": "aks-shared"}]
    pull = run.one(ROLE, "kubelet-acrpull").inputs
    assert pull["principalId"] == fakes.fake_uuid("kubelet-object:aks-shared")
    assert not [r for r in run.of_type(ROLE) if r.name == "deployer-cluster-admin"]
    assert run.outputs["aks"]["cluster_name"] == "aks-shared"
    assert run.outputs["endpoints"]["aks"]["cluster"] == "aks-shared"


def test_attached_cluster_gets_the_accelerator_pool(run_stack: Any) -> None:
    run = ok(run_stack("dev", aksExistingClusterId=EXISTING, acceleratorEnabled=True))
    pool = run.one(POOL, "accelerator-pool").inputs
    assert (pool["resourceGroupName"], pool["resourceName"]) == ("rg-shared", "aks-shared")


def test_cluster_vcpus_of_an_attached_cluster() -> None:
    class Pool:
        def __init__(self, **kw: Any):
            self.__dict__.update({"min_count": None, "node_taints": None, **kw})

    pools = [
        Pool(mode="System", vm_size="Standard_D2s_v5", count=1, node_taints=["x=y:NoSchedule"]),
        Pool(mode="User", vm_size="Standard_D4s_v5", count=5, min_count=2),
    ]
    assert aks_mod.cluster_vcpus(pools) == (8, [])
    assert aks_mod.cluster_vcpus([Pool(mode="User", vm_size="Standard_X", count=3)]) == (
        0,
        ["Standard_X"],
    )
    assert aks_mod.parse_cluster_id(EXISTING) == ("rg-shared", "aks-shared")
    with pytest.raises(ValueError):
        aks_mod.parse_cluster_id("aks-shared")


# --- the 12 vCPU rule -------------------------------------------------------------------------
def test_two_four_vcpu_nodes_are_refused_naming_12_vcpus(run_stack: Any) -> None:
    run = run_stack("dev", aksNodeCount=2, aksVmSize="Standard_D4s_v5")
    (found,) = run.problems
    text = str(found)
    assert "12 vCPUs" in text and "2 x Standard_D4s_v5 = 8 vCPUs" in text
    assert found.keys == ("aksNodeCount", "aksVmSize")
    assert not run.of_type(CLUSTER), "refused before any resource is declared"


def test_accelerator_pool_counts_and_is_named_when_still_too_small() -> None:
    # 1 x 4 + 1 x 4 (T4 GPU) = 8 < 12: both pools are named, with the total.
    (found,) = problems(
        aksNodeCount=1,
        aksMaxNodeCount=3,
        acceleratorEnabled=True,
        acceleratorVmSize="Standard_NC4as_T4_v3",
    )
    assert found.keys == ("aksNodeCount", "aksVmSize", "acceleratorNodeCount", "acceleratorVmSize")
    assert "1 x Standard_NC4as_T4_v3 = 4 accelerator vCPUs, 8 in all" in found.value
    assert "raise mlscore:aksNodeCount to 2" in found.fix
    # 2 x 4 + 1 x 4 = 12: accepted.
    load(aksNodeCount=2, acceleratorEnabled=True, acceleratorVmSize="Standard_NC4as_T4_v3")
    # FPGA: 1 x 4 + 2 x 6 (PB6s) = 16: accepted in a Brainwave region.
    s = load(
        aksNodeCount=1,
        acceleratorEnabled=True,
        acceleratorKind="fpga",
        acceleratorVmSize="Standard_PB6s",
        acceleratorNodeCount=2,
    )
    assert s.accelerator.kind == "fpga"


def test_the_system_pool_does_not_count() -> None:
    # A huge system pool does not rescue a small user pool: it runs no scoring pods.
    (found,) = problems(aksNodeCount=2, aksSystemVmSize="Standard_D16s_v5", aksSystemNodeCount=3)
    assert "system pool runs no scoring pods" in found.problem


# --- replica planning -------------------------------------------------------------------------
def test_seed_numbers_plan_286_replicas_and_raise_the_hpa_max(run_stack: Any) -> None:
    s = load(autoscaleTargetRps=20, autoscaleRequestMs=10_000, autoscaleTargetUtilization=70)
    assert s.aks.autoscale.planned_replicas == 286
    assert s.aks.autoscale.effective_max_replicas == 286
    run = ok(run_stack("dev", autoscaleTargetRps=20, autoscaleRequestMs=10_000))
    assert run.one(SCALED).inputs["spec"]["maxReplicaCount"] == 286


def test_configured_max_wins_when_above_the_plan(run_stack: Any) -> None:
    s = load(autoscaleTargetRps=1, autoscaleRequestMs=100, autoscaleMaxReplicas=4)
    assert s.aks.autoscale.planned_replicas == 1
    assert s.aks.autoscale.effective_max_replicas == 4
    assert load().aks.autoscale.planned_replicas is None
    assert load().aks.autoscale.effective_max_replicas == 4


def test_concurrency_divides_the_plan() -> None:
    s = load(autoscaleTargetRps=20, autoscaleRequestMs=10_000, maxConcurrentRequestsPerContainer=2)
    assert s.aks.autoscale.effective_max_replicas == 143


def test_a_plan_beyond_1000_replicas_is_refused() -> None:
    (found,) = problems(autoscaleTargetRps=1000, autoscaleRequestMs=10_000)
    assert set(found.keys) == {
        "autoscaleTargetRps",
        "autoscaleRequestMs",
        "maxConcurrentRequestsPerContainer",
    }
    assert "14286 replicas" in found.value


# --- own settings -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        ({"aksCpuMillicores": 50}, {"aksCpuMillicores"}),
        ({"aksMemoryMib": 64}, {"aksMemoryMib"}),
        ({"aksKubeloginMode": "password"}, {"aksKubeloginMode"}),
        ({"aksSkuTier": "Gold"}, {"aksSkuTier"}),
    ],
)
def test_bad_aks_settings_are_refused(overrides: dict[str, Any], keys: set[str]) -> None:
    assert keys <= {k for p in problems(**overrides) for k in p.keys}


def test_good_aks_settings_are_read() -> None:
    s = load(aksCpuMillicores=750, aksMemoryMib=1536, aksKubeloginMode="workloadidentity")
    assert (s.aks.cpu_millicores, s.aks.memory_mib) == (750, 1536)
    assert s.aks.kubelogin_mode == "workloadidentity"


def test_fake_kubeconfig_is_valid_yaml_in_base64() -> None:
    result = fakes.CALLS["azure-native:containerservice:listManagedClusterUserCredentials"](
        {"resourceName": "c1"}
    )
    doc = yaml.safe_load(base64.b64decode(result["kubeconfigs"][0]["value"]))
    assert doc["kind"] == "Config" and doc["current-context"] == "c1"
