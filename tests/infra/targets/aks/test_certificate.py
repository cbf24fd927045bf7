"""The AKS endpoint's certificate on a first run (issue 30, blocker 2): the program stores the PFX
of ``aksTlsPfxPath`` in the workspace's key vault before the ``tls-sync`` pods mount it, and checks
the file before any resource (opens, has a key, names ``aksTlsHost``, valid at the clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from components import settings as cfg
from components.config.reader import Reader
from components.targets.aks import settings as aks_settings
from preview import engine
from tests.infra.settings_helpers import keys_of, problems
from tests.infra.targets.aks.pfx import NOT_BEFORE, write_pfx, yesterday

HOST = "scoring.contoso.com"


def read_ingress(stack: str, when: datetime, **overrides: Any) -> tuple[Any, Reader]:
    config, _ = engine.stack_config(stack, overrides)
    values = {k.split(":", 1)[1]: v for k, v in config.items()}
    r = Reader(values.get)
    cluster, _ = aks_settings.read(r, "westeurope", clock=lambda: when)
    return cluster.ingress, r


@pytest.fixture(scope="module")
def pfx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pfx")
    return write_pfx(folder / "scoring.pfx", HOST, password="s3cret", days=365)


def test_a_real_run_with_tls_and_no_certificate_file_is_refused_naming_the_key() -> None:
    config, _ = engine.stack_config("prod", {"aksTlsPfxPath": ""})
    values = {k.split(":", 1)[1]: v for k, v in config.items()}
    with pytest.raises(cfg.SettingsError) as raised:
        cfg.load(values.get, project="mlscore", stack="prod", real_run=True)
    found = [p for p in raised.value.problems if "aksTlsPfxPath" in p.keys]
    assert [p.keys for p in found] == [("aksTlsEnabled", "aksTlsPfxPath")]
    assert "created by this same run" in found[0].problem
    assert problems("prod", aksTlsPfxPath="", aksTlsHost="") != []  # offline: other keys only
    assert "aksTlsPfxPath" not in keys_of(problems("prod", aksTlsPfxPath="", aksTlsHost=""))


def test_the_certificate_is_checked_at_the_injected_clock(pfx: Path) -> None:
    keys = {"aksTlsHost": HOST, "aksTlsPfxPath": str(pfx), "aksTlsPfxPassword": "s3cret"}
    valid, r = read_ingress("prod", datetime(2026, 6, 1, tzinfo=UTC), **keys)
    assert not r.problems and valid.certificate is not None
    _, r = read_ingress("prod", datetime(2027, 6, 1, tzinfo=UTC), **keys)  # a year on: expired
    assert [p.problem for p in r.problems] == ["the certificate expired on 2027-01-01"]
    assert keys_of(r.problems) == {"aksTlsPfxPath", "aksTlsHost"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"aksTlsHost": "api.contoso.com"}, "the certificate is for scoring.contoso.com"),
        ({"aksTlsPfxPassword": "wrong"}, "not a usable PFX"),
    ],
)
def test_a_certificate_that_cannot_serve_the_host_is_refused(
    pfx: Path, overrides: dict[str, str], expected: str
) -> None:
    keys = {"aksTlsHost": HOST, "aksTlsPfxPath": str(pfx), "aksTlsPfxPassword": "s3cret"}
    _, r = read_ingress("prod", NOT_BEFORE, **{**keys, **overrides})
    assert any(expected in p.problem for p in r.problems), r.problems


def test_wildcards_cover_one_label(tmp_path: Path) -> None:
    path = write_pfx(tmp_path / "w.pfx", "*.contoso.com")
    from components.targets.aks.settings import pfx

    cert = pfx.load(path, "")
    assert cert.covers("scoring.contoso.com")
    assert not cert.covers("a.scoring.contoso.com") and not cert.covers("contoso.com")


def test_prod_stores_the_certificate_in_the_vault_before_tls_sync(prod: engine.Run) -> None:
    secret = prod.one("azure-native:keyvault:Secret", "tls-certificate-secret")
    vault = prod.one("azure-native:keyvault:Vault")
    assert secret.inputs["secretName"] == "scoring-tls"  # aksTlsCertificateName
    assert secret.inputs["vaultName"] == vault.azure_name
    assert isinstance(secret.inputs["properties"], engine.Secret)
    tls_sync = prod.one("kubernetes:apps/v1:Deployment", "tls-sync")
    assert secret.urn in tls_sync.dependencies
    kind = "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass"
    provider = prod.one(kind, "tls-certificate")
    assert "scoring-tls" in str(engine.reveal(provider.inputs)["spec"]["parameters"]["objects"])


def test_the_stored_secret_is_the_pfx_as_pem_and_expires_with_it(
    run_stack: Any, tmp_path: Path
) -> None:
    start = yesterday()  # the run checks the certificate at its clock: valid then
    pfx = write_pfx(tmp_path / "now.pfx", HOST, password="s3cret", not_before=start, days=365)
    run = run_stack("prod", aksTlsHost=HOST, aksTlsPfxPath=str(pfx), aksTlsPfxPassword="s3cret")
    assert run.error is None, run.error
    props = engine.reveal(run.one("azure-native:keyvault:Secret", "tls-certificate-secret").inputs)
    props = props["properties"]
    assert props["value"].startswith("-----BEGIN PRIVATE KEY-----")
    assert props["value"].count("-----BEGIN CERTIFICATE-----") == 1
    assert props["contentType"] == "application/x-pem-file"
    assert props["attributes"]["expires"] == int((start + timedelta(days=365)).timestamp())
