"""Pulumi dynamic providers for what has no ARM resource: the IoT Edge device identity, the
deployment applied to it, and the password of a repository-scoped registry token.

IoT Hub (data plane, REST api-version ``2021-04-12``, the GA service API):

- ``PUT    /devices/{id}``                           create / update the device identity
- ``GET    /devices/{id}``                           read it (etag, keys)
- ``DELETE /devices/{id}``                           remove it (``If-Match: *``)
- ``POST   /devices/{id}/applyConfigurationContent`` apply the whole-device deployment (204)
- ``GET    /twins/{id}/modules/$edgeAgent``          read what the edge agent was told

Authentication: a shared access signature built in code (HMAC-SHA256 over the URL-encoded hub
host name and an expiry, one hour ahead) from the key of a hub-level shared access policy that
only has ``RegistryRead, RegistryWrite, ServiceConnect``. The key is read at deploy time with
``listIotHubResourceKeysForKeyName`` and travels as a secret input. (Entra ID data-plane RBAC
was the alternative; it needs a role assignment on the hub that takes minutes to propagate, so
the very first ``pulumi up`` would fail with 401 in a race; the SAS path is deterministic.)

Container registry (ARM, api-version ``2023-07-01``): ``POST .../generateCredentials`` with the
token's ID returns a generated password; it is the only way to obtain a token's password (ARM
never returns it again, and ``listRegistryCredentials`` is the admin user's, which stays off).
It authenticates with azure-identity (``DefaultAzureCredential``), as the rest of the program.

Every provider takes an optional ``endpoint`` input (the base URL); it defaults to
``https://<hub host name>`` / ``https://management.azure.com``. Tests point it at a loopback
server; nothing else differs from production.

Behaviour shared by all calls: 429 and 5xx are retried with exponential backoff (honouring
``Retry-After``), 401/403/404 fail at once with a message that says what to check, 409 on create
adopts the existing device (idempotent), 412 on update re-reads the etag and retries once.
"""

from __future__ import annotations

import time
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

from components.providers.iot_hub_api import (
    ARM_API_VERSION,
    ARM_ENDPOINT,
    IotHubError,
    RestClient,
    arm_token,
    content_sha256,
    hub_client,
    quote_id,
    resolve_secrets,
)


def _device_client(props: dict[str, Any]) -> RestClient:
    return hub_client(props, f"IoT Hub {props['host_name']}, device {props['device_id']}")


def _deployment_client(props: dict[str, Any]) -> RestClient:
    return hub_client(props, f"IoT Hub {props['host_name']}, deployment to {props['device_id']}")


# ---------------------------------------------------------------------------------------------
# The edge device identity
# ---------------------------------------------------------------------------------------------
class EdgeDeviceProvider(dynamic.ResourceProvider):
    """An IoT Edge device identity (``capabilities.iotEdge``) with hub-generated SAS keys.

    Inputs: host_name, device_id, policy_name, policy_key (secret), status, endpoint (optional).
    Outputs add: etag, primary_key, connection_string (both secret).
    """

    REPLACE_ON = ("host_name", "device_id")

    def _body(self, props: dict[str, Any], etag: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "deviceId": props["device_id"],
            "status": props.get("status") or "enabled",
            "capabilities": {"iotEdge": True},
            # null keys: the hub generates both keys (what `az iot hub device-identity create`
            # does for SAS authentication).
            "authentication": {
                "type": "sas",
                "symmetricKey": {"primaryKey": None, "secondaryKey": None},
            },
        }
        if etag:
            body["etag"] = etag
        return body

    def _outs(self, props: dict[str, Any], device: dict[str, Any]) -> dict[str, Any]:
        keys = (device.get("authentication") or {}).get("symmetricKey") or {}
        primary = keys.get("primaryKey") or ""
        return {
            **props,
            "etag": device.get("etag", ""),
            "primary_key": primary,
            "connection_string": (
                f"HostName={props['host_name']};DeviceId={props['device_id']};"
                f"SharedAccessKey={primary}"
            ),
        }

    def _put(self, http: RestClient, props: dict[str, Any], etag: str | None) -> dict[str, Any]:
        path = f"/devices/{quote_id(props['device_id'])}"
        keys = None
        if etag:  # an update keeps the keys the device already uses
            current = http.call("GET", path).json()
            keys = (current.get("authentication") or {}).get("symmetricKey")
            etag = current.get("etag", etag)
        body = self._body(props, etag)
        if keys:
            body["authentication"]["symmetricKey"] = keys
        headers = {"If-Match": f'"{etag}"'} if etag else None
        response = http.call("PUT", path, body=body, headers=headers, passthrough=(409, 412))
        if response.status_code == 412:  # changed since we read it: read again, try once more
            current = http.call("GET", path).json()
            body["etag"] = current.get("etag")
            response = http.call(
                "PUT", path, body=body, headers={"If-Match": f'"{current.get("etag")}"'}
            )
        if response.status_code == 409:  # exists already: adopt it, make it an edge device
            current = http.call("GET", path).json()
            if (current.get("capabilities") or {}).get("iotEdge") and current.get("status") == body[
                "status"
            ]:
                return current
            return self._put(http, props, current.get("etag") or "*")
        return response.json()

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        http = _device_client(props)
        device = self._put(http, props, None)
        return dynamic.CreateResult(
            id_=f"{props['host_name']}/devices/{props['device_id']}",
            outs=self._outs(props, device),
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        watched = ("host_name", "device_id", "status", "policy_name", "policy_key", "endpoint")
        changed = [k for k in watched if olds.get(k) != news.get(k)]
        replaces = [k for k in changed if k in self.REPLACE_ON]
        return dynamic.DiffResult(
            changes=bool(changed),
            replaces=replaces,
            stables=["host_name", "device_id"],
            delete_before_replace=True,  # the same device ID cannot exist twice in one hub
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        http = _device_client(news)
        device = self._put(http, news, olds.get("etag") or "*")
        return dynamic.UpdateResult(outs=self._outs(news, device))

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        http = _device_client(props)
        response = http.call("GET", f"/devices/{quote_id(props['device_id'])}", passthrough=(404,))
        if response.status_code == 404:
            return dynamic.ReadResult(None, {})  # gone: Pulumi drops it from the state
        device = response.json()
        outs = self._outs(props, device)
        outs["status"] = device.get("status", props.get("status"))
        return dynamic.ReadResult(id_, outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        http = _device_client(props)
        http.call(
            "DELETE",
            f"/devices/{quote_id(props['device_id'])}",
            headers={"If-Match": "*"},
            ok=(200, 204),
            passthrough=(404,),  # already gone: nothing to do
        )


# ---------------------------------------------------------------------------------------------
# The whole-device deployment
# ---------------------------------------------------------------------------------------------
class EdgeDeploymentProvider(dynamic.ResourceProvider):
    """``modules_content`` applied to one edge device with ``applyConfigurationContent``.

    Inputs: host_name, device_id, policy_name, policy_key (secret), modules_content (with
    :func:`secret_ref` placeholders), secrets (secret: name -> value), removal_content (what
    delete applies: the runtime modules only), endpoint (optional).
    Outputs add: content_sha256 (changes with every new image digest or setting).
    """

    def _apply(self, props: dict[str, Any], content: dict[str, Any]) -> None:
        http = _deployment_client(props)
        http.call(
            "POST",
            f"/devices/{quote_id(props['device_id'])}/applyConfigurationContent",
            body={"modulesContent": resolve_secrets(content, props.get("secrets") or {})},
            ok=(200, 204),
        )

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        self._apply(props, props["modules_content"])
        return dynamic.CreateResult(
            id_=f"{props['host_name']}/devices/{props['device_id']}/deployment",
            outs={**props, "content_sha256": content_sha256(props["modules_content"])},
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [
            k
            for k in (
                "modules_content",
                "secrets",
                "policy_name",
                "policy_key",
                "endpoint",
                "removal_content",
            )
            if olds.get(k) != news.get(k)
        ]
        replaces = [k for k in ("host_name", "device_id") if olds.get(k) != news.get(k)]
        # A new image digest changes modules_content: an update re-applies the manifest and
        # the edge agent pulls the new image and restarts the module.
        return dynamic.DiffResult(
            changes=bool(changed or replaces), replaces=replaces, stables=["host_name"]
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        self._apply(news, news["modules_content"])
        return dynamic.UpdateResult(
            outs={**news, "content_sha256": content_sha256(news["modules_content"])}
        )

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        http = _deployment_client(props)
        response = http.call(
            "GET", f"/twins/{quote_id(props['device_id'])}/modules/$edgeAgent", passthrough=(404,)
        )
        if response.status_code == 404:
            return dynamic.ReadResult(None, {})
        desired = (response.json().get("properties") or {}).get("desired") or {}
        wanted = props["modules_content"]["$edgeAgent"]["properties.desired"]
        images = {
            name: (m.get("settings") or {}).get("image")
            for name, m in (desired.get("modules") or {}).items()
        }
        expected = {n: m["settings"]["image"] for n, m in wanted.get("modules", {}).items()}
        outs = dict(props)
        if images != expected:  # drifted: make the next `pulumi up` re-apply
            outs["content_sha256"] = "drifted:" + content_sha256(images)
            outs["modules_content"] = {"drifted": images}
        return dynamic.ReadResult(id_, outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        http = _deployment_client(props)
        http.call(
            "POST",
            f"/devices/{quote_id(props['device_id'])}/applyConfigurationContent",
            body={"modulesContent": props["removal_content"]},
            ok=(200, 204),
            passthrough=(404,),  # the device is gone, and its deployment with it
        )


# ---------------------------------------------------------------------------------------------
# The password of a repository-scoped registry token
# ---------------------------------------------------------------------------------------------
class RegistryTokenPasswordProvider(dynamic.ResourceProvider):
    """``generateCredentials`` for one password (password1 or password2) of an ACR token.

    Inputs: registry_id, token_id, password_name, expiry (optional ISO-8601), endpoint (optional).
    Outputs add: username, password (secret). Replacing the resource rotates the password.
    """

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        http = RestClient(
            props.get("endpoint") or ARM_ENDPOINT,
            f"container registry token {props['token_id'].rsplit('/', 1)[-1]}",
            arm_token,
            ARM_API_VERSION,
        )
        body: dict[str, Any] = {"tokenId": props["token_id"], "name": props["password_name"]}
        if props.get("expiry"):
            body["expiry"] = props["expiry"]
        response = http.call(
            "POST", f"{props['registry_id']}/generateCredentials", body=body, ok=(200, 202)
        )
        # A long-running operation: 202 + Location, polled until it answers 200 with the result.
        while response.status_code == 202:
            time.sleep(float(response.headers.get("Retry-After", "1") or 1))
            response = http.call("GET", "", url=response.headers["Location"], ok=(200, 202))
        result = response.json()
        wanted = [p for p in result.get("passwords", []) if p.get("name") == props["password_name"]]
        if not wanted or not wanted[0].get("value"):
            raise IotHubError(
                f"generateCredentials answered without {props['password_name']}: "
                f"{sorted(p.get('name') for p in result.get('passwords', []))}"
            )
        return dynamic.CreateResult(
            id_=f"{props['token_id']}/{props['password_name']}",
            outs={**props, "username": result.get("username", ""), "password": wanted[0]["value"]},
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        replaces = [
            k
            for k in ("registry_id", "token_id", "password_name", "expiry")
            if olds.get(k) != news.get(k)
        ]
        return dynamic.DiffResult(changes=bool(replaces), replaces=replaces)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # The password lives in the token: deleting the token (its own resource) revokes it;
        # a replacement regenerates the same password name, which invalidates the old value.
        return None


# ---------------------------------------------------------------------------------------------
# The resources
# ---------------------------------------------------------------------------------------------
class EdgeDevice(dynamic.Resource, module="iotedge", name="Device"):
    """``pulumi-python:dynamic/iotedge:Device``"""

    etag: pulumi.Output[str]
    primary_key: pulumi.Output[str]
    connection_string: pulumi.Output[str]
    device_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        host_name: pulumi.Input[str],
        device_id: pulumi.Input[str],
        policy_name: pulumi.Input[str],
        policy_key: pulumi.Input[str],
        status: str = "enabled",
        endpoint: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        secret = pulumi.ResourceOptions(
            additional_secret_outputs=["primary_key", "connection_string"]
        )
        super().__init__(
            EdgeDeviceProvider(),
            name,
            {
                "host_name": host_name,
                "device_id": device_id,
                "policy_name": policy_name,
                "policy_key": pulumi.Output.secret(policy_key),
                "status": status,
                "endpoint": endpoint,
                "etag": None,
                "primary_key": None,
                "connection_string": None,
            },
            pulumi.ResourceOptions.merge(opts, secret),
        )


class EdgeDeployment(dynamic.Resource, module="iotedge", name="Deployment"):
    """``pulumi-python:dynamic/iotedge:Deployment``"""

    content_sha256: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        host_name: pulumi.Input[str],
        device_id: pulumi.Input[str],
        policy_name: pulumi.Input[str],
        policy_key: pulumi.Input[str],
        modules_content: pulumi.Input[dict[str, Any]],
        secrets: pulumi.Input[dict[str, pulumi.Input[str]]],
        removal_content: dict[str, Any],
        endpoint: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            EdgeDeploymentProvider(),
            name,
            {
                "host_name": host_name,
                "device_id": device_id,
                "policy_name": policy_name,
                "content_sha256": None,
                "endpoint": endpoint,
                "removal_content": removal_content,
                "policy_key": pulumi.Output.secret(policy_key),
                "secrets": pulumi.Output.secret(secrets),
                "modules_content": modules_content,
            },
            opts,
        )


class RegistryTokenPassword(dynamic.Resource, module="acr", name="TokenPassword"):
    """``pulumi-python:dynamic/acr:TokenPassword``"""

    username: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        registry_id: pulumi.Input[str],
        token_id: pulumi.Input[str],
        password_name: str = "password1",
        expiry: str | None = None,
        endpoint: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            RegistryTokenPasswordProvider(),
            name,
            {
                "registry_id": registry_id,
                "token_id": token_id,
                "password_name": password_name,
                "expiry": expiry,
                "endpoint": endpoint,
                "username": None,
                "password": None,
            },
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["password"])
            ),
        )
