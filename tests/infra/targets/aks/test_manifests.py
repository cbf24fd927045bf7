"""The Kubernetes objects of the AKS target, rendered from the real program under mocks:
every workload property, and the manifests checked by the tools of the field (kubernetes-validate
against the cluster version's schema for the built-in kinds, checkov's Kubernetes checks). The
custom resources (Istio, KEDA, Secrets Store CSI) are asserted in test_ingress_scaling.py.

checkov cannot share the project venv (it pins ``packaging<24``; pulumi needs ``>=26``); it is
found as ``$CHECKOV``, ``checkov`` on the PATH, or ``.local/checkov/bin/checkov``
(``python3 -m venv .local/checkov && .local/checkov/bin/pip install 'checkov>=3.2,<4'``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from components import PROJECT_ROOT
from components import settings as cfg
from components.platform.scoring_keys import rotation
from components.targets.aks import cluster as aks_mod
from components.targets.aks.manifests import keys_secret
from preview import engine, manifests

ROOT = PROJECT_ROOT


def settings_of(stack: str, **overrides: Any) -> cfg.Settings:
    config, _ = engine.stack_config(stack, overrides)
    values = {k.split(":", 1)[1]: v for k, v in config.items()}
    return cfg.load(values.get, project="mlscore", stack=stack)


def rendered(run_stack: Any, stack: str, **overrides: Any) -> list[dict[str, Any]]:
    run = run_stack(stack, **overrides)
    assert run.error is None, run.error
    return manifests.render(run)


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {[d['metadata']['name'] for d in docs]}"
    return found[0]


@pytest.fixture(scope="module")
def docs(dev: engine.Run) -> list[dict[str, Any]]:
    return manifests.render(dev)


@pytest.fixture(scope="module")
def azure_cache(run_stack: Any) -> list[dict[str, Any]]:
    """An explicit Azure Cache for Redis: the only cache AKS pods (no workload identity) reach,
    with its access key."""
    return rendered(
        run_stack,
        "dev",
        redisService="azure-cache",
        redisPort=6380,
        redisSku="Basic",
        redisFamily="C",
        redisCapacity=0,
    )


@pytest.fixture(scope="module")
def gpu(run_stack: Any) -> list[dict[str, Any]]:
    return rendered(run_stack, "dev", acceleratorEnabled=True)


@pytest.fixture(scope="module")
def fpga(run_stack: Any) -> list[dict[str, Any]]:
    return rendered(
        run_stack,
        "dev",
        acceleratorEnabled=True,
        acceleratorKind="fpga",
        acceleratorVmSize="Standard_PB6s",
    )


def container(doc: dict[str, Any]) -> dict[str, Any]:
    (c,) = doc["spec"]["template"]["spec"]["containers"]
    return c


# --- rendering --------------------------------------------------------------------------------
def test_type_tokens_map_to_api_version_and_kind() -> None:
    assert manifests.api_version_and_kind("kubernetes:apps/v1:Deployment") == (
        "apps/v1",
        "Deployment",
    )
    assert manifests.api_version_and_kind("kubernetes:core/v1:Service") == ("v1", "Service")
    assert manifests.api_version_and_kind("kubernetes:networking.k8s.io/v1:NetworkPolicy") == (
        "networking.k8s.io/v1",
        "NetworkPolicy",
    )
    with pytest.raises(ValueError):
        manifests.api_version_and_kind("azure-native:web:WebApp")


def test_the_workload_objects_exist(docs: list[dict[str, Any]]) -> None:
    kinds = sorted((d["apiVersion"], d["kind"]) for d in docs)
    assert kinds == sorted(
        [
            ("v1", "Namespace"),
            ("v1", "ServiceAccount"),
            ("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass"),
            ("apps/v1", "Deployment"),
            ("v1", "Service"),
            ("policy/v1", "PodDisruptionBudget"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
            ("v1", "ConfigMap"),
            ("keda.sh/v1alpha1", "TriggerAuthentication"),
            ("keda.sh/v1alpha1", "ScaledObject"),
            ("networking.istio.io/v1", "Gateway"),
            ("networking.istio.io/v1", "VirtualService"),
        ]
    )
    assert not [d for d in docs if d["kind"] in ("Secret", "HorizontalPodAutoscaler")]
    ns = find(docs, "Namespace", "mlscore-scoring")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert docs[0]["kind"] == "Namespace"  # first, whatever order the engine registered them
    elsewhere = {
        (d["kind"], d["metadata"]["namespace"])
        for d in docs
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != "mlscore-scoring"
    }
    assert elsewhere == {("ConfigMap", "kube-system"), ("Gateway", "aks-istio-ingress")}


def test_no_secret_value_is_written_into_the_cluster(dev: engine.Run, prod: engine.Run) -> None:
    """The keys reach the pods only through the CSI driver from Key Vault: no Kubernetes object
    carries a key from Pulumi state."""
    for run in (dev, prod):
        primary = engine.reveal(run.outputs["endpoints"]["aks"]["auth"]["key"])
        for r in run.resources:
            if r.type.startswith("kubernetes:"):
                assert primary not in str(engine.reveal(r.inputs)), r.type


# --- the Deployment ---------------------------------------------------------------------------
def test_deployment_runs_the_image_by_digest_with_env_and_secrets(
    dev: engine.Run, docs: list[dict[str, Any]]
) -> None:
    c = container(find(docs, "Deployment", "scoring"))
    assert c["image"] == dev.outputs["image"] and "@sha256:" in c["image"]
    env = {e["name"]: e for e in c["env"]}
    assert env["AZUREML_SERVER_PORT"]["value"] == "5001"
    synced = keys_secret(rotation(settings_of("dev")).generation)
    for name in ("SCORING_KEY_PRIMARY", "SCORING_KEY_SECONDARY"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": synced, "key": name}
    # Kubernetes expands $(VAR) of variables defined before: both keys, comma-separated.
    names = [e["name"] for e in c["env"]]
    assert names.index("SCORING_AUTH_KEYS") > names.index("SCORING_KEY_SECONDARY")
    assert env["SCORING_AUTH_KEYS"]["value"] == "$(SCORING_KEY_PRIMARY),$(SCORING_KEY_SECONDARY)"
    assert c["ports"] == [{"name": "http", "containerPort": 5001, "protocol": "TCP"}]


@pytest.mark.parametrize(("stack", "cpu", "memory"), [("dev", 500, 1024), ("prod", 1000, 2048)])
def test_requests_and_limits_come_from_config(
    run_stack: Any, stack: str, cpu: int, memory: int
) -> None:
    c = container(find(rendered(run_stack, stack), "Deployment", "scoring"))
    assert c["resources"] == {
        "requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
        "limits": {"cpu": f"{2 * cpu}m", "memory": f"{memory}Mi"},
    }


def test_probes_security_and_tmp(docs: list[dict[str, Any]]) -> None:
    d = find(docs, "Deployment", "scoring")
    pod, c = d["spec"]["template"]["spec"], container(d)
    assert c["livenessProbe"]["httpGet"]["path"] == "/"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["startupProbe"]["httpGet"]["path"] == "/"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True and sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert pod["automountServiceAccountToken"] is False
    assert c["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "scoring-keys", "mountPath": "/mnt/secrets-store", "readOnly": True},
    ]
    assert pod["volumes"][0]["name"] == "tmp" and "emptyDir" in pod["volumes"][0]
    assert pod["volumes"][1]["csi"] == {
        "driver": "secrets-store.csi.k8s.io",
        "readOnly": True,
        "volumeAttributes": {"secretProviderClass": "scoring-keys"},
    }


def test_spread_across_zones_and_nodes_and_rolling_update(docs: list[dict[str, Any]]) -> None:
    d = find(docs, "Deployment", "scoring")
    zone, host = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone"
    assert host["topologyKey"] == "kubernetes.io/hostname"
    for spread in (zone, host):
        assert spread["maxSkew"] == 1 and spread["whenUnsatisfiable"] == "ScheduleAnyway"
        assert spread["labelSelector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]
    assert d["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert "replicas" not in d["spec"], "with KEDA's HPA the replica count is the HPA's"


def test_without_autoscale_the_deployment_has_fixed_replicas(run_stack: Any) -> None:
    docs = rendered(run_stack, "prod", autoscaleEnabled=False)
    assert find(docs, "Deployment", "scoring")["spec"]["replicas"] == 3
    assert not [d for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]


def test_a_new_image_changes_the_pod_template(run_stack: Any) -> None:
    """The seeds' service.update: a new model version is a new image digest -> a rollout."""
    before = find(rendered(run_stack, "dev"), "Deployment", "scoring")
    after = find(rendered(run_stack, "dev", modelVersion="2"), "Deployment", "scoring")
    assert container(before)["image"] != container(after)["image"]


# --- Service, PDB, NetworkPolicy ---------------------------------------------------------------
def test_service_is_cluster_ip_behind_the_ingress(docs: list[dict[str, Any]]) -> None:
    svc = find(docs, "Service", "scoring")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert "annotations" not in svc["metadata"]
    assert (
        svc["spec"]["selector"]
        == find(docs, "Deployment", "scoring")["spec"]["selector"]["matchLabels"]
    )


def test_pdb_and_network_policy(docs: list[dict[str, Any]]) -> None:
    pdb = find(docs, "PodDisruptionBudget", "scoring")
    assert pdb["spec"]["maxUnavailable"] == 1
    netpol = find(docs, "NetworkPolicy", "scoring")["spec"]
    assert netpol["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = netpol["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5001}]
    sources = {
        f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for f in rule["from"]
    }
    assert sources == {"aks-istio-ingress", "kube-system"}  # the gateway and ama-metrics
    egress_ports = {p["port"] for rule in netpol["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 443, 10000}  # DNS, Entra ID / Azure APIs, the cache (Entra)


# --- the accelerator variant ------------------------------------------------------------------
def test_gpu_variant_is_scheduled_on_the_tainted_pool(
    run_stack: Any, gpu: list[dict[str, Any]]
) -> None:
    d = find(gpu, "Deployment", "scoring-gpu")
    pod = d["spec"]["template"]["spec"]
    assert pod["nodeSelector"][aks_mod.ACCELERATOR_LABEL] == "gpu"
    assert {
        "key": aks_mod.ACCELERATOR_LABEL,
        "operator": "Equal",
        "value": "gpu",
        "effect": "NoSchedule",
    } in pod["tolerations"]
    assert container(d)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert d["spec"]["replicas"] == 1
    assert find(gpu, "DaemonSet", "nvidia-device-plugin")["metadata"]["namespace"] == "kube-system"
    run = run_stack("dev", acceleratorEnabled=True)
    pool = run.one("azure-native:containerservice:AgentPool", "accelerator-pool").inputs
    assert pool["nodeTaints"] == [aks_mod.accelerator_taint("gpu")]
    assert pool["nodeLabels"] == {aks_mod.ACCELERATOR_LABEL: "gpu"}
    assert pool["vmSize"] == "Standard_NC4as_T4_v3" and pool["agentPoolName"] == "gpu"
    ep = run.outputs["endpoints"]["aks_accelerator"]
    assert ep["scoring_uri"] == f"http://{ep['ingress_ip']}/gpu/score"
    assert ep["accelerator"] == "gpu" and ep["auth"]["scheme"] == "bearer-key"


def test_fpga_variant_requests_no_extended_resource(fpga: list[dict[str, Any]]) -> None:
    d = find(fpga, "Deployment", "scoring-fpga")
    assert d["spec"]["template"]["spec"]["nodeSelector"][aks_mod.ACCELERATOR_LABEL] == "fpga"
    assert "nvidia.com/gpu" not in container(d)["resources"]["limits"]
    assert not [x for x in fpga if x["kind"] == "DaemonSet"]


# --- the tools of the field -------------------------------------------------------------------
SCHEMA_DAY = date(2026, 12, 6)
CASES = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "dev-gpu": ("dev", {"acceleratorEnabled": True}),
    "dev-fpga": (
        "dev",
        {
            "acceleratorEnabled": True,
            "acceleratorKind": "fpga",
            "acceleratorVmSize": "Standard_PB6s",
        },
    ),
}


BUILT_IN_GROUPS = ("v1", "apps/v1", "policy/v1", "networking.k8s.io/v1")


def built_in(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["apiVersion"] in BUILT_IN_GROUPS]


@pytest.mark.parametrize("case", sorted(CASES))
def test_manifests_match_the_kubernetes_schema_of_the_cluster(run_stack: Any, case: str) -> None:
    stack, overrides = CASES[case]
    docs = rendered(run_stack, stack, **overrides)
    pinned = settings_of(stack, **overrides).aks.kubernetes_version
    # the oldest minor AKS supports on a fixed day (no test reads today's date)
    version = aks_mod.kubernetes_minor(pinned, SCHEMA_DAY)
    checked = built_in(docs)
    assert len(checked) >= 7
    # The cluster's version, and the newest schema kubernetes-validate knows (deprecations).
    for desired in (version, kubernetes_validate.utils.latest_version()):
        for doc in checked:
            kubernetes_validate.validate(doc, desired, strict=True)


def test_schema_validation_can_fail(docs: list[dict[str, Any]]) -> None:
    deployment = json.loads(json.dumps(find(docs, "Deployment", "scoring")))
    deployment["spec"]["revisionHistoryLimit"] = "five"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            deployment, aks_mod.kubernetes_minor("", SCHEMA_DAY), strict=True
        )


def checkov_binary() -> str:
    for candidate in (
        os.environ.get("CHECKOV"),
        shutil.which("checkov"),
        str(ROOT / ".local" / "checkov" / "bin" / "checkov"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    raise AssertionError(
        "checkov not found: python3 -m venv .local/checkov && "
        ".local/checkov/bin/pip install 'checkov>=3.2,<4' (or set CHECKOV)"
    )


def checkov(path: Path, *outputs: str) -> subprocess.CompletedProcess[str]:
    """One checkov process on one manifest file. Each rendered stack gets a run of its own:
    checkov evaluates its graph checks across every file of a run (CKV2_K8S_6 accepts a pod when
    any file of the run has a NetworkPolicy selecting it), and two stacks never share a cluster."""
    return subprocess.run(
        [
            checkov_binary(),
            "-f",
            str(path),
            "--framework",
            "kubernetes",
            "--compact",
            "--skip-download",
            *outputs,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _json_report(text: str) -> dict[str, Any]:
    report = json.loads(text)
    return report[0] if isinstance(report, list) else report


def checkov_text_and_json(path: Path, report: Path) -> tuple[str, dict[str, Any]]:
    """checkov's text report (what a reviewer reads on the console) and its JSON report, from one
    run: ``-o cli -o json --output-file-path console,<file>`` prints the first and writes the
    second (checkov costs seconds of CPU per start). Not ``--quiet``: it would drop the passed and
    skipped checks from the JSON report too; the text's summary line is the same either way."""
    done = checkov(path, "-o", "cli", "-o", "json", "--output-file-path", f"console,{report}")
    assert done.stdout.strip() and report.exists(), done.stderr[-2000:]
    return done.stdout, _json_report(report.read_text())


def run_checkov(path: Path) -> dict[str, Any]:
    """checkov's JSON report alone (``--quiet`` drops passed and skipped checks from JSON: not
    here)."""
    done = checkov(path, "-o", "json")
    assert done.stdout.strip(), done.stderr[-2000:]
    return _json_report(done.stdout)


@pytest.mark.parametrize("case", ["dev-gpu", "prod"])
def test_checkov_kubernetes_checks_pass(run_stack: Any, case: str, tmp_path: Path) -> None:
    stack, overrides = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(manifests.to_yaml(rendered(run_stack, stack, **overrides)))
    text, report = checkov_text_and_json(path, tmp_path / "results.json")
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    # The command as a reviewer would run it: no failure.
    assert "Failed checks: 0," in text, failed
    assert failed == []
    assert report["summary"]["passed"] > 80
    skipped = report["results"]["skipped_checks"]
    # Every skip is justified in the manifest itself, with a reason.
    assert all(len(c["check_result"].get("suppress_comment", "")) > 20 for c in skipped)
    assert {c["check_id"] for c in skipped if c["resource"].startswith("Deployment.")} == {
        "CKV_K8S_35"
    }


def test_checkov_catches_a_bad_manifest(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    bad = json.loads(json.dumps(find(docs, "Deployment", "scoring")))
    pod = bad["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    path = tmp_path / "bad.yaml"
    path.write_text(manifests.to_yaml([bad]))
    # Alone, not in a good manifest's run: its failures would be in that run's summary line, and
    # its Deployment (the good one's name, one field changed) in that run's graph.
    failed = {c["check_id"] for c in run_checkov(path)["results"]["failed_checks"]}
    assert {"CKV_K8S_20", "CKV_K8S_22"} <= failed
