"""The offline preview of a migrated stack: the program deploys what the v1 configs described."""

from __future__ import annotations

from preview import engine
from tests.migrate.v1_docs import ACI_JSON, AKS_JSON, INFERENCE_JSON, project


def test_the_migrated_aks_and_aci_deployment_previews_as_the_v1_configs_said(migrate, tmp_path):
    v1 = project(
        tmp_path / "v1",
        {"inferenceconfig.json": INFERENCE_JSON, "aks.json": AKS_JSON, "aci.json": ACI_JSON},
    )
    done = migrate(v1 / "inferenceconfig.json", v1 / "aks.json", v1 / "aci.json")
    assert done.code == 1  # the TLS host and certificate: the two keys v1 cannot give
    with done.stack_file.open("a") as f:
        f.write("  mlscore:aksTlsHost: scoring.contoso.com\n")
        f.write("  mlscore:aksTlsCertificateName: scoring-tls\n")

    run = engine.run("v1", stack_file=done.stack_file)
    assert run.error is None, run.error
    assert sorted(engine.to_json(run.outputs)["endpoints"]) == ["aci", "aks"]
    group = engine.to_json(
        run.one("azure-native:containerinstance:ContainerGroup").inputs, show_secrets=True
    )
    assert group["containers"][0]["resources"]["requests"] == {"cpu": 0.5, "memoryInGB": 1.0}

    scaled = engine.to_json(run.one("kubernetes:keda.sh/v1alpha1:ScaledObject").inputs)["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (1, 3)
    assert scaled["triggers"][0]["metadata"]["threshold"] == "0.7"  # 1 request x 70%
    (scoring,) = [r for r in run.of_type("kubernetes:apps/v1:Deployment") if r.name == "deployment"]
    container = engine.to_json(scoring.inputs)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1024Mi"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DATA_COLLECTION_ENABLED"] == "true"
    for switched_off in ("azure-native:web:WebApp", "azure-native:devices:IotHub"):
        assert not run.of_type(switched_off)
