"""Platform components under mocks, with the real stack files: properties and wiring."""

from __future__ import annotations

import json

from components.contract import ROLE_ACR_PULL, ROLE_ACR_PUSH, ROLE_KEY_VAULT_SECRETS_USER
from preview import engine, fakes

ACR = "azure-native:containerregistry:Registry"
ROLE = "azure-native:authorization:RoleAssignment"


def arm_id(run: engine.Run, type_: str, name: str | None = None) -> str:
    return fakes.arm_id(type_, run.one(type_, name).azure_name)


def test_workspace_links_its_storage_key_vault_app_insights_and_registry(each_stack) -> None:
    ws = each_stack.one("azure-native:machinelearningservices:Workspace").inputs
    assert ws["storageAccount"] == arm_id(
        each_stack, "azure-native:storage:StorageAccount", "storage"
    )
    assert ws["keyVault"] == arm_id(each_stack, "azure-native:keyvault:Vault")
    assert ws["applicationInsights"] == arm_id(
        each_stack, "azure-native:applicationinsights:Component"
    )
    assert ws["containerRegistry"] == arm_id(each_stack, ACR)
    assert ws["identity"] == {"type": "SystemAssigned"}
    assert ws["v1LegacyMode"] is False


def test_key_vault_is_rbac_with_purge_protection(each_stack) -> None:
    props = each_stack.one("azure-native:keyvault:Vault").inputs["properties"]
    assert props["enablePurgeProtection"] is True
    assert props["enableSoftDelete"] is True and props["softDeleteRetentionInDays"] == 90
    assert props["enableRbacAuthorization"] is True
    assert props["tenantId"] == fakes.TENANT


def test_storage_is_https_tls12_and_private(each_stack) -> None:
    for account in each_stack.of_type("azure-native:storage:StorageAccount"):
        i = account.inputs
        assert i["enableHttpsTrafficOnly"] is True, account.name
        assert i["minimumTlsVersion"] == "TLS1_2", account.name
        assert i["allowBlobPublicAccess"] is False, account.name


def test_app_insights_is_workspace_based(each_stack) -> None:
    ai = each_stack.one("azure-native:applicationinsights:Component").inputs
    assert ai["workspaceResourceId"] == arm_id(
        each_stack, "azure-native:operationalinsights:Workspace"
    )
    assert ai["ingestionMode"] == "LogAnalytics"


def test_registry_has_no_admin_user_and_no_anonymous_pull(each_stack) -> None:
    acr = each_stack.one(ACR).inputs
    assert acr["adminUserEnabled"] is False
    assert acr["anonymousPullEnabled"] is False


def test_registry_sku_per_stack(dev, prod) -> None:
    assert dev.one(ACR).inputs["sku"] == {"name": "Basic"}
    assert prod.one(ACR).inputs["sku"] == {"name": "Premium"}
    assert prod.one(ACR).inputs["zoneRedundancy"] == "Enabled"


def _role(run: engine.Run, role: str) -> list[engine.Registered]:
    return [r for r in run.of_type(ROLE) if r.inputs["roleDefinitionId"].endswith(role)]


def test_pull_identity_has_acrpull_on_the_registry(each_stack) -> None:
    identity = each_stack.one("azure-native:managedidentity:UserAssignedIdentity", "pull-identity")
    # Other principals (e.g. the AKS kubelet identity) may hold AcrPull too: this one's grant.
    (pull,) = [
        r
        for r in _role(each_stack, ROLE_ACR_PULL)
        if r.inputs["principalId"] == identity.outputs["principalId"]
    ]
    assert pull.inputs["principalType"] == "ServicePrincipal"
    assert pull.inputs["scope"] == arm_id(each_stack, ACR)
    assert pull.inputs["roleDefinitionId"] == (
        f"/subscriptions/{fakes.SUBSCRIPTION}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{ROLE_ACR_PULL}"
    )


def test_pull_identity_reads_key_vault_secrets(each_stack) -> None:
    identity = each_stack.one("azure-native:managedidentity:UserAssignedIdentity", "pull-identity")
    (reader,) = _role(each_stack, ROLE_KEY_VAULT_SECRETS_USER)
    assert reader.inputs["principalId"] == identity.outputs["principalId"]
    assert reader.inputs["scope"] == arm_id(each_stack, "azure-native:keyvault:Vault")


def test_deployer_pushes_with_acrpush_and_the_image_waits_for_it(each_stack) -> None:
    (push,) = _role(each_stack, ROLE_ACR_PUSH)
    assert push.inputs["principalId"] == fakes.DEPLOYER
    assert push.inputs["scope"] == arm_id(each_stack, ACR)
    image = each_stack.one("docker:index/image:Image", "scoring-image")
    assert push.urn in image.dependencies


def test_deployer_principal_type_is_configurable(run_stack) -> None:
    run = run_stack("dev", deployerPrincipalType="ServicePrincipal")
    (push,) = _role(run, ROLE_ACR_PUSH)
    assert push.inputs["principalType"] == "ServicePrincipal"


def test_image_is_built_from_scoring_and_pushed_with_an_entra_token(each_stack) -> None:
    image = each_stack.one("docker:index/image:Image", "scoring-image")
    login = each_stack.one(ACR).outputs["loginServer"]
    # the build context the program assembled (tests/infra/platform/test_image.py), by digest
    digest = image.inputs["build"]["args"]["CONTEXT_DIGEST"]
    assert image.inputs["imageName"] == f"{login}/scoring:diabetes-ridge-1-{digest[:12]}"
    assert image.inputs["build"]["context"].endswith(f"/.local/build/scoring-{digest[:16]}")
    assert image.inputs["build"]["platform"] == "linux/amd64"
    registry = image.inputs["registry"]
    assert isinstance(registry, engine.Secret)  # the refresh token makes the block secret
    creds = engine.reveal(registry)
    assert creds["server"] == login
    assert creds["username"] == "00000000-0000-0000-0000-000000000000"
    assert ("acr:oauth2/exchange", {"service": login, "tenant": fakes.TENANT}) in each_stack.calls


def test_image_output_is_the_digest_reference(dev) -> None:
    ref = engine.reveal(dev.outputs["image"])
    assert "@sha256:" in ref and ref.startswith(dev.one(ACR).outputs["loginServer"])


def test_scoring_keys_live_in_key_vault_as_secrets(each_stack) -> None:
    secrets = {s.azure_name: s for s in each_stack.of_type("azure-native:keyvault:Secret")}
    assert {"scoring-key-primary", "scoring-key-secondary"} <= set(secrets)
    for name in ("scoring-key-primary", "scoring-key-secondary"):
        assert isinstance(secrets[name].inputs["properties"], engine.Secret)


def test_no_registry_password_anywhere(each_stack) -> None:
    assert not any("listRegistryCredentials" in token for token, _ in each_stack.calls)
    for r in each_stack.resources:
        if r.type == ACR:
            assert r.inputs["adminUserEnabled"] is False
    shown = json.dumps(engine.to_json(each_stack.outputs))
    assert "password" not in shown.lower()


def test_platform_outputs(each_stack) -> None:
    out = engine.to_json(each_stack.outputs, show_secrets=True)
    assert out["registry"]["login_server"].endswith(".azurecr.io")
    assert out["workspace"]["key_vault_uri"].startswith("https://")
    assert out["resource_group"] == f"rg-mlscore-{each_stack.stack}-scoring"
    identity = each_stack.one("azure-native:managedidentity:UserAssignedIdentity", "pull-identity")
    assert out["identity"] == {
        "client_id": identity.outputs["clientId"],
        "principal_id": identity.outputs["principalId"],  # what an existing Redis's owner grants
        "id": fakes.arm_id(identity.type, identity.azure_name),
    }


def test_preview_mode_leaves_what_azure_computes_unknown(run_stack) -> None:
    run = run_stack("dev", preview=True)
    assert run.error is None
    out = engine.to_json(run.outputs)
    assert out["registry"]["login_server"] == "(known after apply)"
    assert out["image"] == "(known after apply)"
    assert not any(token == "acr:oauth2/exchange" for token, _ in run.calls)


def test_the_mock_engine_refuses_a_duplicate_urn_as_pulumi_does(monkeypatch) -> None:
    import pulumi
    import pulumi_azure_native as azure_native

    def program(*_: object, **__: object) -> None:
        azure_native.resources.ResourceGroup("rg", location="westeurope")
        azure_native.resources.ResourceGroup("rg", location="westeurope")
        pulumi.export("ok", True)

    monkeypatch.setattr(engine.runpy, "run_path", program)
    run = engine.run("dev", preview=False)
    assert run.error is not None
    assert "Duplicate resource URN" in str(run.error)
    assert "::rg'" in str(run.error)


def test_a_failed_run_does_not_fail_the_next_one(monkeypatch) -> None:
    """A registration that fails (e.g. a broken fake) stays in that run's error only."""
    import pulumi_azure_native as azure_native

    new_resource = engine._Mocks.new_resource

    def failing(self, args):  # type: ignore[no-untyped-def]
        if args.name == "boom":
            raise RuntimeError("registration failed")
        return new_resource(self, args)

    def program(*_: object, **__: object) -> None:
        azure_native.resources.ResourceGroup("ok", location="westeurope")
        azure_native.resources.ResourceGroup("boom", location="westeurope")

    with monkeypatch.context() as m:
        m.setattr(engine._Mocks, "new_resource", failing)
        m.setattr(engine.runpy, "run_path", program)
        assert "registration failed" in str(engine.run("dev", preview=False).error)
    after = engine.run("dev", preview=False)
    assert after.error is None, after.error
    assert after.outputs["resource_group"] == "rg-mlscore-dev-scoring"
