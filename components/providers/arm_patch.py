"""Set properties of an existing Azure resource after its children exist (a dynamic resource).

An Azure ML endpoint names its deployments in its own properties (an online endpoint's
``traffic`` / ``mirrorTraffic``, a batch endpoint's ``defaults.deploymentName``), but the
deployments are children of the endpoint and can only be created after it: Azure refuses traffic
for a deployment that does not exist yet. ARM has no separate "traffic" resource and azure-native
refuses a second declaration of the same endpoint, so :class:`ArmPropertiesPatch` does what
``az ml online-endpoint update --traffic`` does: GET the endpoint, set the given keys under
``properties``, PUT it back and wait for the long-running operation. It runs after the
deployments (it takes their IDs as inputs) and, on delete, writes ``on_delete`` (zero traffic) so
that the deployments can be deleted after it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import dynamic

ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"


class ArmPatchError(RuntimeError):
    pass


def merge_properties(body: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` (an ARM GET answer) with ``values`` set under ``properties``, read-only parts
    removed, ready to PUT back."""
    properties = {
        k: v
        for k, v in (body.get("properties") or {}).items()
        if k not in ("provisioningState", "scoringUri", "swaggerUri")
    }
    properties.update(values)
    out = {k: v for k, v in body.items() if k in ("location", "tags", "identity", "kind", "sku")}
    out["properties"] = properties
    return out


def apply_patch(
    resource_id: str,
    api_version: str,
    values: Mapping[str, Any],
    *,
    session: Any = None,
    token: str | None = None,
    timeout_s: float = 1800.0,
) -> None:
    """GET ``resource_id``, set ``values`` under ``properties``, PUT it back, wait until done."""
    import requests

    if token is None:
        from azure.identity import DefaultAzureCredential

        token = DefaultAzureCredential().get_token(ARM_SCOPE).token
    http = session or requests.Session()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = f"{ARM}{resource_id}?api-version={api_version}"
    got = http.get(url, headers=headers, timeout=60)
    if got.status_code != 200:
        raise ArmPatchError(f"GET {resource_id}: {got.status_code} {got.text[:300]}")
    put = http.put(url, json=merge_properties(got.json(), values), headers=headers, timeout=60)
    if put.status_code not in (200, 201, 202):
        raise ArmPatchError(f"PUT {resource_id}: {put.status_code} {put.text[:300]}")
    poll = put.headers.get("Azure-AsyncOperation") or put.headers.get("Location")
    deadline = time.monotonic() + timeout_s
    while poll and time.monotonic() < deadline:
        status = http.get(poll, headers=headers, timeout=60)
        state = (status.json() or {}).get("status", "") if status.content else ""
        if status.status_code == 200 and state in ("Succeeded", ""):
            return
        if state in ("Failed", "Canceled"):
            raise ArmPatchError(f"updating {resource_id} {state}: {status.text[:300]}")
        time.sleep(int(status.headers.get("Retry-After", "10")))
    if poll:
        raise ArmPatchError(f"updating {resource_id} did not finish in {timeout_s:.0f} s")


class _Provider(dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        apply_patch(props["resource_id"], props["api_version"], props["values"])
        return dynamic.CreateResult(id_=f"{props['resource_id']}#patch", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        keys = ("resource_id", "api_version", "values", "after")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(
            changes=bool(changed),
            replaces=["resource_id"] if "resource_id" in changed else [],
            delete_before_replace=True,
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        apply_patch(news["resource_id"], news["api_version"], news["values"])
        return dynamic.UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props.get("on_delete"):
            try:
                apply_patch(props["resource_id"], props["api_version"], props["on_delete"])
            except ArmPatchError as exc:
                if " 404 " not in str(exc):  # the endpoint is already gone: nothing to undo
                    raise


class ArmPropertiesPatch(dynamic.Resource):
    """Sets ``values`` under ``properties`` of the resource ``resource_id`` (GET + PUT).

    ``after`` lists IDs (e.g. the deployments) the patch needs: a change of any of them, or of the
    endpoint's own declared configuration (pass a digest), applies the patch again.
    """

    def __init__(
        self,
        name: str,
        *,
        resource_id: pulumi.Input[str],
        api_version: str,
        values: pulumi.Input[Mapping[str, Any]],
        on_delete: Mapping[str, Any] | None = None,
        after: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            _Provider(),
            name,
            {
                "resource_id": resource_id,
                "api_version": api_version,
                "values": values,
                "on_delete": dict(on_delete or {}),
                "after": after or [],
            },
            opts,
        )
