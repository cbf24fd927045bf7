"""Issue 31 on the AKS graph: the pods' telemetry from Key Vault through the CSI driver's synced
Secret, key rotation reaching the pods (the pod template changes with the key generation: an
injected clock across a period boundary), and the gateway routing only the client paths.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
import yaml

from components.platform import scoring_keys
from components.platform.scoring_keys import Rotation
from preview import engine, manifests

SECRET = "azure-native:keyvault:Secret"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
INSIGHTS = "APPLICATIONINSIGHTS_CONNECTION_STRING"
GENERATION = "mlscore/scoring-key-generation"


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _template(run: engine.Run, name: str = "deployment") -> dict[str, Any]:
    return engine.reveal(run.one(DEPLOYMENT, name).inputs["spec"]["template"])


def _synced(run: engine.Run) -> dict[str, tuple[str, str]]:
    """What the scoring pods' env reads from Secrets: env var -> (Secret, key)."""
    env = _template(run)["spec"]["containers"][0]["env"]
    refs = [(e["name"], e["valueFrom"]["secretKeyRef"]) for e in env if "valueFrom" in e]
    return {name: (ref["name"], ref["key"]) for name, ref in refs}


def _vault_value(run: engine.Run, secret: str, key: str) -> str:
    """The Key Vault secret the CSI driver syncs into ``secret``/``key``: its stored value."""
    (spc,) = [
        engine.reveal(r.inputs)
        for r in run.resources
        if r.type.endswith("SecretProviderClass") and r.name == "scoring-keys"
    ]
    (obj,) = [o for o in spc["spec"]["secretObjects"] if o["secretName"] == secret]
    (item,) = [d for d in obj["data"] if d["key"] == key]
    objects = yaml.safe_load(spc["spec"]["parameters"]["objects"])["array"]
    assert {"objectName": item["objectName"], "objectType": "secret"} in [
        yaml.safe_load(o) for o in objects
    ]
    (stored,) = [s for s in run.of_type(SECRET) if s.azure_name == item["objectName"]]
    return str(engine.reveal(stored.inputs["properties"])["value"])


def _connection_string(run: engine.Run) -> str:
    (ai,) = run.of_type("azure-native:applicationinsights:Component")
    return str(engine.reveal(ai.outputs["connectionString"]))


# --- item 2: telemetry -------------------------------------------------------------------------
def test_the_pods_get_the_connection_string_from_key_vault(each_stack: engine.Run) -> None:
    refs = _synced(each_stack)
    secret, key = refs[INSIGHTS]
    assert key == INSIGHTS and refs["SCORING_KEY_PRIMARY"][0] == secret
    conn = _connection_string(each_stack)
    assert "InstrumentationKey=" in conn
    assert _vault_value(each_stack, secret, key) == conn
    # with it the host ingests as the pull identity (Entra ID), as the other targets do
    env = {e["name"]: e.get("value") for e in _template(each_stack)["spec"]["containers"][0]["env"]}
    assert env["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].endswith(";Authorization=AAD")
    assert env["OTEL_SERVICE_NAME"] == "aks"
    # the Key Vault secret expires with the keys' schedule and says what it holds
    (stored,) = [s for s in each_stack.of_type(SECRET) if s.name == "aks-appinsights-secret"]
    props = engine.reveal(stored.inputs["properties"])
    assert props["contentType"] == scoring_keys.CONTENT_CONNECTION
    assert props["attributes"]["expires"] > datetime.now(UTC).timestamp()


def test_no_kubernetes_object_carries_the_connection_string(each_stack: engine.Run) -> None:
    conn = _connection_string(each_stack)
    for r in each_stack.resources:
        if r.type.startswith("kubernetes:"):
            assert conn not in str(engine.reveal(r.inputs)), r.type


# --- item 3: rotation reaches the pods ---------------------------------------------------------
def _boundary(days: int) -> datetime:
    """The start of the period that contains today (the schedule's, not a fixed date)."""
    today = Rotation.at(days, datetime.now(UTC))
    return datetime.fromtimestamp(today.starts(today.generation), UTC)


def _run_at(when: datetime, **overrides: Any) -> engine.Run:
    with patch.object(scoring_keys, "utc_now", lambda: when):
        run = engine.run("dev", overrides, preview=False)
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="module")
def around_a_boundary() -> tuple[engine.Run, engine.Run, engine.Run, int]:
    """Runs early and late in one period, and just after it: (early, late, next, n)."""
    days = 7
    start = _boundary(days)
    early = _run_at(
        start - timedelta(days=days) + timedelta(seconds=1), scoringKeyRotationDays=days
    )
    late = _run_at(start - timedelta(seconds=1), scoringKeyRotationDays=days)
    after = _run_at(start + timedelta(seconds=1), scoringKeyRotationDays=days)
    return early, late, after, Rotation.at(days, start).generation


def test_the_pod_template_changes_with_the_key_generation_only(
    around_a_boundary: tuple[engine.Run, engine.Run, engine.Run, int],
) -> None:
    early, late, after, n = around_a_boundary
    assert _template(early) == _template(late)  # within a period: no rollout
    before, new = _template(late), _template(after)
    assert before != new  # across the boundary: pulumi up rolls the pods
    assert before["metadata"]["annotations"][GENERATION] == str(n - 1)
    assert new["metadata"]["annotations"][GENERATION] == str(n)
    # the new pods read a Secret of the new generation's name: the driver creates it from what
    # the first new pod fetched from Key Vault (an existing Secret it would leave as it was)
    assert _synced(late)["SCORING_KEY_PRIMARY"][0] != _synced(after)["SCORING_KEY_PRIMARY"][0]


def test_the_new_pods_read_the_new_primary_the_stack_hands_out(
    around_a_boundary: tuple[engine.Run, engine.Run, engine.Run, int],
) -> None:
    _, late, after, _ = around_a_boundary
    for run in (late, after):
        primary = engine.reveal(run.outputs["endpoints"]["aks"]["auth"]["key"])
        secret, key = _synced(run)["SCORING_KEY_PRIMARY"]
        assert _vault_value(run, secret, key) == primary
    old_primary = engine.reveal(late.outputs["endpoints"]["aks"]["auth"]["key"])
    secret, key = _synced(after)["SCORING_KEY_SECONDARY"]
    assert _vault_value(after, secret, key) == old_primary  # old pods' clients keep working


def test_the_rollout_waits_for_key_vault_to_hold_the_new_keys(dev: engine.Run) -> None:
    """The Deployment waits for the SecretProviderClass, which names the Key Vault secrets
    (their URIs): so the new pods mount after the keys' update, never before."""
    deployment = dev.one(DEPLOYMENT, "deployment")
    (spc,) = [r for r in dev.resources if r.type.endswith("SecretProviderClass")]
    assert spc.urn in deployment.dependencies
    secrets = {s.azure_name: s.urn for s in dev.of_type(SECRET)}
    for name in ("scoring-key-primary", "scoring-key-secondary", "aks-appinsights-connection"):
        assert secrets[name] in spc.dependencies, name


# --- item 4: the gateway routes only what clients use -------------------------------------------
def _routed(vs: dict[str, Any], path: str) -> str | None:
    """The destination host Istio sends ``path`` to (first matching route), None: 404."""
    for route in vs["spec"]["http"]:
        matches = route.get("match") or [{}]
        for m in matches:
            uri = m.get("uri", {})
            if (
                not uri
                or uri.get("exact") == path
                or ("prefix" in uri and path.startswith(uri["prefix"]))
                or ("regex" in uri and re.fullmatch(uri["regex"], path))
            ):
                return str(route["route"][0]["destination"]["host"])
    return None


@pytest.mark.parametrize("accelerator", [False, True])
def test_the_gateway_routes_the_client_paths_and_not_status_or_metrics(
    run_stack: Any, accelerator: bool
) -> None:
    stacks = ["dev", "prod"] if not accelerator else ["dev"]
    for stack in stacks:
        run = run_stack(stack, **({"acceleratorEnabled": True} if accelerator else {}))
        assert run.error is None, run.error
        vs = _find(manifests.render(run), "VirtualService", "scoring")
        ns = vs["metadata"]["namespace"]
        for path in ("/score", "/swagger.json", "/ready", "/"):
            assert _routed(vs, path) == f"scoring.{ns}.svc.cluster.local", path
        for path in ("/status", "/metrics", "/metrics/", "/status?x=1", "/anything"):
            assert _routed(vs, path) is None, path
        if accelerator:
            for path in ("/gpu/score", "/gpu/ready"):
                assert _routed(vs, path) == f"scoring-gpu.{ns}.svc.cluster.local", path
            for path in ("/gpu/status", "/gpu/metrics"):
                assert _routed(vs, path) is None, path
            rewrites = {
                r["match"][0]["uri"]["exact"]: r["rewrite"]["uri"]
                for r in vs["spec"]["http"]
                if "rewrite" in r
            }
            assert rewrites["/gpu/score"] == "/score" and rewrites["/gpu/"] == "/"
        # the scraper reaches /metrics on the pods themselves, not through the gateway
        pod = _find(manifests.render(run), "Deployment", "scoring")["spec"]["template"]
        assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
