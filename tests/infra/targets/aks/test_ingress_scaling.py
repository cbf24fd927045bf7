"""AKS production service under mocks: TLS through the Istio add-on's ingress gateway, workload
identity, Key Vault secrets through the CSI driver, KEDA on managed Prometheus, node hardening,
the bad inputs refused before any resource, and the HPA rule KEDA's HPA applies, replayed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components.targets.aks import scaling
from components.targets.aks.identity import parse_identity_id
from components.targets.aks.settings import AutoscaleSettings
from preview import engine, fakes, manifests
from tests.infra.settings_helpers import load, problems

CLUSTER = "azure-native:containerservice:ManagedCluster"
FEATURE = "pulumi-python:dynamic/azure:FeatureRegistration"
POOL = "azure-native:containerservice:AgentPool"
FIC = "azure-native:managedidentity:FederatedIdentityCredential"
ROLE = "azure-native:authorization:RoleAssignment"


def docs_of(run: engine.Run) -> list[dict[str, Any]]:
    assert run.error is None, run.error
    return manifests.render(run)


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.fixture(scope="module")
def prod_docs(prod: engine.Run) -> list[dict[str, Any]]:
    return docs_of(prod)


@pytest.fixture(scope="module")
def dev_docs(dev: engine.Run) -> list[dict[str, Any]]:
    return docs_of(dev)


# --- TLS through the Istio ingress gateway ------------------------------------------------------
def test_prod_gateway_is_https_only_tls12_with_the_key_vault_certificate(prod_docs) -> None:
    gw = find(prod_docs, "Gateway", "scoring")
    assert gw["metadata"]["namespace"] == "aks-istio-ingress"
    assert gw["spec"]["selector"] == {"istio": "aks-istio-ingressgateway-external"}
    (server,) = gw["spec"]["servers"]  # no port 80 server: plain HTTP finds no listener
    assert server["port"] == {"number": 443, "name": "https", "protocol": "HTTPS"}
    assert server["hosts"] == ["scoring.mlscore.example.com"]
    assert server["tls"] == {
        "mode": "SIMPLE",
        "credentialName": "scoring-tls",
        "minProtocolVersion": "TLSV1_2",
    }
    spc = find(prod_docs, "SecretProviderClass", "scoring-tls")
    assert spc["metadata"]["namespace"] == "aks-istio-ingress"
    (obj,) = spc["spec"]["secretObjects"]
    assert obj["secretName"] == "scoring-tls" and obj["type"] == "kubernetes.io/tls"
    assert {d["key"]: d["objectName"] for d in obj["data"]} == {
        "tls.key": "scoring-tls",
        "tls.crt": "scoring-tls",
    }
    objects = yaml.safe_load(spc["spec"]["parameters"]["objects"])["array"]
    assert [yaml.safe_load(o) for o in objects] == [
        {"objectName": "scoring-tls", "objectType": "secret"}
    ]


def test_the_certificate_stays_synced_by_mounted_pods(prod: engine.Run, prod_docs) -> None:
    sync = find(prod_docs, "Deployment", "scoring-tls-sync")
    assert sync["metadata"]["namespace"] == "aks-istio-ingress"
    assert sync["spec"]["replicas"] == 2
    pod = sync["spec"]["template"]["spec"]
    assert pod["volumes"][0]["csi"]["volumeAttributes"] == {"secretProviderClass": "scoring-tls"}
    assert pod["serviceAccountName"] == "scoring-tls-sync"
    assert sync["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert find(prod_docs, "PodDisruptionBudget", "scoring-tls-sync")["spec"]["minAvailable"] == 1
    # rotation on in the add-on: a new certificate version is served without a redeploy
    addon = prod.one(CLUSTER).inputs["addonProfiles"]["azureKeyvaultSecretsProvider"]
    assert addon == {
        "enabled": True,
        "config": {"enableSecretRotation": "true", "rotationPollInterval": "2m"},
    }


def test_prod_endpoint_says_https_and_tls(prod: engine.Run) -> None:
    ep = prod.outputs["endpoints"]["aks"]
    assert ep["scoring_uri"] == "https://scoring.mlscore.example.com/score"
    assert ep["tls"] is True and "ingress_ip" in ep  # the DNS record's target


def test_dev_serves_plain_http_only_by_explicit_choice(dev_docs) -> None:
    (server,) = find(dev_docs, "Gateway", "scoring")["spec"]["servers"]
    assert server["port"]["protocol"] == "HTTP" and server["hosts"] == ["*"]
    assert not [d for d in dev_docs if d["metadata"]["name"] == "scoring-tls-sync"]


def test_dev_with_tls_and_http_serves_both(run_stack) -> None:
    docs = docs_of(
        run_stack(
            "dev",
            aksTlsEnabled=True,
            aksTlsHost="scoring.dev.contoso.com",
            aksTlsCertificateName="dev-tls",
            aksTlsPfxPath="certs/scoring.dev.example.pfx",  # a stand-in: offline only
        )
    )
    ports = [s["port"]["number"] for s in find(docs, "Gateway", "scoring")["spec"]["servers"]]
    assert ports == [443, 80]


def test_virtual_service_routes_the_host_to_the_cluster_ip_service(prod_docs) -> None:
    vs = find(prod_docs, "VirtualService", "scoring")
    assert vs["spec"]["hosts"] == ["scoring.mlscore.example.com"]
    assert vs["spec"]["gateways"] == ["aks-istio-ingress/scoring"]
    (route,) = vs["spec"]["http"]
    assert route["route"][0]["destination"] == {
        "host": "scoring.mlscore-scoring.svc.cluster.local",
        "port": {"number": 80},
    }
    assert find(prod_docs, "Service", "scoring")["spec"]["type"] == "ClusterIP"


def test_the_cluster_runs_istio_with_an_external_gateway(each_stack: engine.Run) -> None:
    mesh = each_stack.one(CLUSTER).inputs["serviceMeshProfile"]
    # no pinned revision: the add-on installs its default one (settings/versions.py)
    assert mesh["mode"] == "Istio" and "revisions" not in mesh["istio"]
    assert mesh["istio"]["components"]["ingressGateways"] == [{"enabled": True, "mode": "External"}]
    assert "webAppRouting" not in str(each_stack.one(CLUSTER).inputs.get("ingressProfile"))


# --- workload identity and secrets --------------------------------------------------------------
def test_federated_credentials_trust_the_cluster_issuer_one_at_a_time(prod: engine.Run) -> None:
    cluster = prod.one(CLUSTER)
    issuer = cluster.outputs["oidcIssuerProfile"]["issuerURL"]
    assert cluster.inputs["oidcIssuerProfile"] == {"enabled": True}
    assert cluster.inputs["securityProfile"]["workloadIdentity"] == {"enabled": True}
    scoring = prod.one(FIC, "scoring-federated-credential")
    tls = prod.one(FIC, "tls-sync-federated-credential")
    pull = prod.one("azure-native:managedidentity:UserAssignedIdentity", "pull-identity")
    for fic in (scoring, tls):
        assert fic.inputs["issuer"] == issuer
        assert fic.inputs["audiences"] == ["api://AzureADTokenExchange"]
        assert fic.inputs["resourceName"] == pull.azure_name
    assert scoring.inputs["subject"] == "system:serviceaccount:mlscore-scoring:scoring"
    assert tls.inputs["subject"] == "system:serviceaccount:aks-istio-ingress:scoring-tls-sync"
    assert scoring.urn in tls.dependencies  # Entra ID refuses concurrent FIC writes


def test_pods_run_as_the_pull_identity(prod: engine.Run, prod_docs) -> None:
    pull = prod.one("azure-native:managedidentity:UserAssignedIdentity", "pull-identity")
    client_id = fakes.fake_uuid(f"client:{pull.azure_name}")
    sa = find(prod_docs, "ServiceAccount", "scoring")
    assert sa["metadata"]["annotations"] == {"azure.workload.identity/client-id": client_id}
    d = find(prod_docs, "Deployment", "scoring")
    assert d["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    pod = d["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "scoring" and pod["automountServiceAccountToken"] is False
    deployment = prod.one("kubernetes:apps/v1:Deployment", "deployment")
    assert prod.one(FIC, "scoring-federated-credential").urn in deployment.dependencies


def test_scoring_keys_come_from_key_vault_through_the_csi_driver(prod: engine.Run) -> None:
    spc = docs_of(prod)
    keys = find(spc, "SecretProviderClass", "scoring-keys")["spec"]
    vault = prod.one("azure-native:keyvault:Vault").azure_name
    params = keys["parameters"]
    assert params["keyvaultName"] == vault and params["usePodIdentity"] == "false"
    assert params["tenantId"] == fakes.TENANT
    stored = {r.azure_name for r in prod.of_type("azure-native:keyvault:Secret")}
    objects = [yaml.safe_load(o)["objectName"] for o in yaml.safe_load(params["objects"])["array"]]
    assert set(objects) <= stored and len(objects) == 3
    (synced,) = keys["secretObjects"]
    assert synced["secretName"].startswith("scoring-keys-g") and synced["type"] == "Opaque"
    assert [d["key"] for d in synced["data"]] == [
        "SCORING_KEY_PRIMARY",
        "SCORING_KEY_SECONDARY",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    ]


def test_identity_id_parsing() -> None:
    real = (
        "/subscriptions/s/resourceGroups/rg-x/providers/Microsoft.ManagedIdentity/"
        "userAssignedIdentities/id-x"
    )
    assert parse_identity_id(real) == ("rg-x", "id-x")
    with pytest.raises(ValueError):
        parse_identity_id("id-x")


# --- KEDA on managed Prometheus -----------------------------------------------------------------
def test_scaled_object_scales_on_in_flight_requests(prod: engine.Run, prod_docs) -> None:
    so = find(prod_docs, "ScaledObject", "scoring")["spec"]
    assert so["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "scoring",
    }
    assert (so["minReplicaCount"], so["maxReplicaCount"]) == (3, 12)
    (trigger,) = so["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    meta = trigger["metadata"]
    # prod: 1 concurrent request per container x 70 % -> 0.7 in flight per replica
    assert meta["threshold"] == "0.7"
    # the query's labels are checked against Azure's scrape job on a real Prometheus in
    # test_prometheus_query.py; here: it names this stack's namespace and Deployment
    assert 'kubernetes_namespace="mlscore-scoring"' in meta["query"]
    assert 'kubernetes_pod_name=~"scoring-' in meta["query"]
    assert meta["ignoreNullValues"] == "false"  # an empty result is an error, not a silent 0
    amw = prod.one("azure-native:monitor:AzureMonitorWorkspace")
    assert meta["serverAddress"] == amw.outputs["metrics"]["prometheusQueryEndpoint"]
    assert trigger["authenticationRef"] == {"name": "scoring-prometheus"}
    behavior = so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 60
    auth = find(prod_docs, "TriggerAuthentication", "scoring-prometheus")["spec"]
    keda = prod.one("azure-native:managedidentity:UserAssignedIdentity", "keda-identity")
    assert auth == {
        "podIdentity": {
            "provider": "azure-workload",
            "identityId": fakes.fake_uuid(f"client:{keda.azure_name}"),
        }
    }


def test_threshold_follows_concurrency_and_utilisation(run_stack) -> None:
    docs = docs_of(
        run_stack("dev", maxConcurrentRequestsPerContainer=4, autoscaleTargetUtilization=50)
    )
    so = find(docs, "ScaledObject", "scoring")["spec"]
    assert so["triggers"][0]["metadata"]["threshold"] == "2"


def test_keda_reads_the_workspace_with_its_own_identity(prod: engine.Run) -> None:
    keda = prod.one("azure-native:managedidentity:UserAssignedIdentity", "keda-identity")
    role = prod.one(ROLE, "keda-monitoring-reader").inputs
    amw = prod.one("azure-native:monitor:AzureMonitorWorkspace")
    assert role["scope"] == fakes.arm_id(amw.type, amw.azure_name)
    assert role["roleDefinitionId"].endswith("b0d8363b-8ddd-447d-831f-62ca05bff136")
    assert role["principalId"] == fakes.fake_uuid(f"principal:{keda.azure_name}")
    fic = prod.one(FIC, "keda-operator-credential").inputs
    assert fic["subject"] == "system:serviceaccount:kube-system:keda-operator"
    assert fic["resourceName"] == keda.azure_name


def test_managed_prometheus_collects_from_the_cluster(prod: engine.Run, prod_docs) -> None:
    cluster = prod.one(CLUSTER)
    assert cluster.inputs["azureMonitorProfile"] == {"metrics": {"enabled": True}}
    assert cluster.inputs["workloadAutoScalerProfile"] == {"keda": {"enabled": True}}
    rule = prod.one("azure-native:monitor:DataCollectionRule", "prometheus-dcr").inputs
    amw = prod.one("azure-native:monitor:AzureMonitorWorkspace")
    assert rule["dataSources"]["prometheusForwarder"][0]["streams"] == [
        "Microsoft-PrometheusMetrics"
    ]
    assert rule["destinations"]["monitoringAccounts"] == [
        {"accountResourceId": fakes.arm_id(amw.type, amw.azure_name), "name": "MonitoringAccount1"}
    ]
    dce = prod.one("azure-native:monitor:DataCollectionEndpoint")
    assert rule["dataCollectionEndpointId"] == fakes.arm_id(dce.type, dce.azure_name)
    dcra = prod.one("azure-native:monitor:DataCollectionRuleAssociation", "prometheus-dcra")
    assert dcra.inputs["resourceUri"] == fakes.arm_id(CLUSTER, cluster.azure_name)
    assert len(dcra.inputs["associationName"]) <= 44
    settings = find(prod_docs, "ConfigMap", "ama-metrics-settings-configmap")
    assert settings["metadata"]["namespace"] == "kube-system"
    assert 'podannotationnamespaceregex = "mlscore-scoring"' in str(settings["data"])
    pod = find(prod_docs, "Deployment", "scoring")["spec"]["template"]["metadata"]
    assert pod["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["annotations"]["prometheus.io/port"] == "5001"
    assert pod["annotations"]["prometheus.io/path"] == "/metrics"


# --- nodes --------------------------------------------------------------------------------------
def test_prod_pools_span_zones_with_ephemeral_disks_and_host_encryption(prod: engine.Run) -> None:
    (system,) = prod.one(CLUSTER).inputs["agentPoolProfiles"]
    user = prod.one(POOL, "user-pool").inputs
    for pool, gb in ((system, 128), (user, 128)):
        assert pool["availabilityZones"] == ["1", "2", "3"]
        assert (pool["osDiskType"], pool["osDiskSizeGB"]) == ("Ephemeral", gb)
        assert pool["maxPods"] >= 50 and pool["enableEncryptionAtHost"] is True
    (check,) = prod.of_type(FEATURE)  # the pools wait for the feature check
    assert (check.inputs["namespace"], check.inputs["feature"]) == (
        "Microsoft.Compute",
        "EncryptionAtHost",
    )
    assert check.urn in prod.one(POOL, "user-pool").dependencies
    assert check.urn in prod.one(CLUSTER).dependencies


def test_dev_pools_stay_single_zone_and_managed(dev: engine.Run) -> None:
    user = dev.one(POOL, "user-pool").inputs
    assert "availabilityZones" not in user and user["osDiskType"] == "Managed"
    assert user["enableEncryptionAtHost"] is False and user["maxPods"] == 110
    assert not dev.of_type(FEATURE)


# --- bad input, refused before any resource -----------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        ({"aksTlsHost": "https://scoring.contoso.com/"}, {"aksTlsHost"}),
        ({"aksTlsHost": "scoring_contoso"}, {"aksTlsHost"}),
        ({"aksTlsCertificateName": ""}, {"aksTlsEnabled", "aksTlsCertificateName"}),
        ({"aksTlsHost": ""}, {"aksTlsEnabled", "aksTlsHost"}),
        ({"aksTlsEnabled": False}, {"aksTlsEnabled", "aksAllowHttp"}),
        ({"autoscaleTargetUtilization": 0}, {"autoscaleTargetUtilization"}),
        ({"autoscaleTargetUtilization": 101}, {"autoscaleTargetUtilization"}),
        ({"location": "westus", "aciEnabled": False}, {"aksZones", "location"}),
        ({"aksZones": "1,4"}, {"aksZones"}),
        ({"aksVmSize": "Standard_D8s_v5"}, {"aksOsDiskType", "aksVmSize"}),
        ({"aksOsDiskSizeGb": 200, "aksSystemVmSize": "Standard_D4ds_v5"}, {"aksOsDiskSizeGb"}),
        ({"aksMaxPods": 30}, {"aksMaxPods"}),
        ({"aksIstioRevision": "1.30"}, {"aksIstioRevision"}),
    ],
)
def test_bad_prod_input_is_refused_naming_the_key(
    run_stack, overrides: dict[str, Any], keys: set[str]
) -> None:
    found = problems("prod", **overrides)
    assert any(keys <= set(p.keys) for p in found), [str(p) for p in found]
    run = run_stack("prod", **overrides)
    assert run.problems and not run.of_type(CLUSTER), "refused before any resource"


def test_ephemeral_refusal_names_the_d_variant() -> None:
    (found,) = [p for p in problems("prod", aksVmSize="Standard_D8s_v5") if "aksVmSize" in p.keys]
    assert "Standard_D8ds_v5" in found.fix


def test_good_ingress_settings_are_read() -> None:
    s = load("prod")
    assert (s.aks.ingress.host, s.aks.ingress.certificate_name) == (
        "scoring.mlscore.example.com",
        "scoring-tls",
    )
    assert s.aks.nodes.zones == ("1", "2", "3")
    assert load("dev").aks.ingress.allow_http is True


# --- the HPA rule, replayed ---------------------------------------------------------------------
SEEDS = AutoscaleSettings(
    enabled=True,
    min_replicas=1,
    max_replicas=4,
    target_utilization=70,
    target_rps=0,
    request_ms=0,
    max_concurrent_per_container=1,
)
TRACE = [(0, 0.5), (30, 2.0), (60, 2.7), (120, 2.5), (180, 0.6), (300, 0.6)]


def test_the_hpa_follows_the_seeds_formula(capsys) -> None:
    steps = scaling.simulate(TRACE, SEEDS)
    print("\n" + scaling.table(steps))  # the table (pytest -s, or bench/aks_scaling.py)
    by_second = {s.second: s for s in steps}
    # up at once: the first sync after the load rises takes the seeds' count
    assert (by_second[30].seeds, by_second[30].replicas) == (3, 3)
    assert (by_second[60].seeds, by_second[60].replicas) == (4, 4)
    # down only once the highest recommendation of the last 60 s is lower: load falls at 180 s,
    # the last recommendation of 4 was at 165 s
    assert (by_second[180].seeds, by_second[180].replicas) == (1, 4)
    assert by_second[210].replicas == 4 and by_second[225].replicas == 1
    # steady state: what the seeds' formula says
    for s in steps:
        if s.second not in range(180, 225):
            assert s.replicas == s.seeds, s


def test_a_burst_is_capped_by_the_scale_up_policy() -> None:
    a = AutoscaleSettings(True, 1, 20, 70, 0, 0, 1)
    steps = scaling.simulate([(0, 0.0), (15, 12.0), (60, 12.0)], a)
    # 12 / 0.7 -> 18 wanted; per 15 s at most +100 % or +4 pods: 1 -> 5 -> 10 -> 18
    assert [s.replicas for s in steps] == [1, 5, 10, 18, 18]
    assert all(s.seeds == 18 for s in steps[1:])


def test_the_tolerance_keeps_the_count_within_ten_percent() -> None:
    # 3 replicas at 0.7 target: 2.2 in flight is ratio 1.048 (inside 10 %): no change
    assert scaling.recommend(3, 2.2, 0.7) == 3
    assert scaling.recommend(3, 2.4, 0.7) == 4  # ratio 1.14: scale up
    assert scaling.recommend(4, 1.0, 0.7) == 2


def test_the_seeds_formula_is_littles_law_of_the_planning_formula() -> None:
    # 20 rps x 10 s = 200 in flight; at 70 % of 1: ceil(200 / 0.7) = 286, the planned maximum
    a = AutoscaleSettings(True, 1, 1000, 70, 20, 10_000, 1)
    assert scaling.seeds_replicas(20 * 10.0, a) == a.planned_replicas == 286
