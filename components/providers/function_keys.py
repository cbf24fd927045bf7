"""Read a function app's host keys once its host answers (a bounded wait), not right after create.

The host keys live in the Functions host: ARM's ``POST {site}/host/default/listkeys`` asks the
running host for them. Right after the app is created its image is still pulling and its storage
role assignments are seconds old, so the host does not run yet and the call fails with 400
"Encountered an error (ServiceUnavailable|InternalServerError) from host runtime"
(Azure/azure-cli#20892, Azure/azure-functions-host#5722; the ARM template ``listkeys()``
races the same way). A plain ``listWebAppHostKeys`` invoke at that moment aborts ``pulumi up``.

:class:`FunctionHostKeys` makes the same call (api-version of the SDK's ``listWebAppHostKeys``)
with exponential backoff until the host answers, for at most ``timeout_s``, and then fails with
an error that names the app, the limit and the last answer. Only the ``default`` function key is
kept (a secret output); the master key never enters the state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import requests
from pulumi import dynamic

from components.providers.waiting import Backoff, wait_until

ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
API_VERSION = "2025-05-01"  # pulumi_azure_native.web.list_web_app_host_keys
DEFAULT_TIMEOUT_S = 900.0  # image pull, host start and storage role propagation
# 400 "... from host runtime", 404 while the site's host is not provisioned, throttling, outages
RETRY_STATUSES = (400, 404, 409, 429, 500, 502, 503, 504)


class FunctionKeysError(RuntimeError):
    """An answer waiting cannot change (the caller may not list keys)."""


def arm_token() -> str:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential().get_token(ARM_SCOPE).token


def keys_check(
    props: Mapping[str, Any], token: Callable[[], str], found: dict[str, str]
) -> Callable[[], tuple[bool, str]]:
    base = str(props.get("endpoint") or ARM).rstrip("/")
    url = f"{base}{props['site_id']}/host/default/listkeys"

    def check() -> tuple[bool, str]:
        try:
            answer = requests.post(
                url,
                params={"api-version": API_VERSION},
                headers={"Authorization": f"Bearer {token()}"},
                timeout=60,
            )
        except requests.RequestException as exc:
            return False, f"cannot reach {base}: {type(exc).__name__}"
        if answer.status_code in (401, 403):
            raise FunctionKeysError(
                f"listing the host keys of {props['site_id']} was refused "
                f"({answer.status_code}): {answer.text[:300]}; the deployer needs "
                "Microsoft.Web/sites/host/listkeys/action (Contributor on the app)"
            )
        if answer.status_code in RETRY_STATUSES:
            return False, f"{answer.status_code} {answer.text[:200].strip()}"
        if answer.status_code != 200:
            raise FunctionKeysError(f"{url} answered {answer.status_code}: {answer.text[:300]}")
        key = ((answer.json() or {}).get("functionKeys") or {}).get("default")
        if not key:
            return False, "200 without a default function key yet"
        found["default_key"] = key
        return True, "200"

    return check


def read_host_keys(
    props: Mapping[str, Any],
    *,
    token: Callable[[], str] | None = None,
    backoff: Backoff | None = None,
) -> str:
    """The app's ``default`` function key, once its host answers."""
    found: dict[str, str] = {}
    wait_until(
        f"the Functions host of {props['site_id']} to answer listkeys",
        keys_check(props, token or arm_token, found),
        timeout_s=float(props.get("timeout_s") or DEFAULT_TIMEOUT_S),
        backoff=backoff or Backoff(first=5.0),
        hint=(
            "The host starts once its image is pulled and it can reach its storage: check the "
            "app's log stream and the runtime identity's storage roles, then run `pulumi up` again"
        ),
    )
    return found["default_key"]


class FunctionHostKeysProvider(dynamic.ResourceProvider):
    """Inputs: site_id, timeout_s, after (IDs whose change means a new host), endpoint (tests).
    Outputs add: default_key (secret)."""

    WATCHED = ("site_id", "after", "endpoint")

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        key = read_host_keys(props)
        return dynamic.CreateResult(
            id_=f"{props['site_id']}/host/default", outs={**props, "default_key": key}
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [k for k in self.WATCHED if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs={**news, "default_key": read_host_keys(news)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None  # the keys go with the app


class FunctionHostKeys(dynamic.Resource, module="functions", name="HostKeys"):
    """``default_key``: the app's default function key, read once the host answers."""

    default_key: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        site_id: pulumi.Input[str],
        after: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        endpoint: str = "",
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            FunctionHostKeysProvider(),
            name,
            {
                "site_id": site_id,
                "after": after or [],
                "timeout_s": timeout_s,
                "endpoint": endpoint,
                "default_key": None,
            },
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["default_key"])
            ),
        )
