"""Stop before a resource that needs a subscription feature the subscription has not registered.

AKS node pools with ``enableEncryptionAtHost`` need ``Microsoft.Compute/EncryptionAtHost``
registered (https://learn.microsoft.com/azure/aks/enable-host-encryption); without it Azure
refuses the pools deep into a 10-minute cluster create. Reading the registration with the
``features:getSubscriptionFeatureRegistration`` invoke does not work for a feature the
subscription never registered: there is no registration to read, the invoke fails (404), and
a failed invoke fails the whole Pulumi program with the provider's raw error (the Python SDK's
RPC manager records it even when the call is caught).

:class:`FeatureRegistration` reads the feature itself instead, through Azure Resource Manager's
Features API (``GET /subscriptions/{id}/providers/Microsoft.Features/providers/{namespace}/
features/{name}``, api-version 2021-07-01, which answers every feature with its
``properties.state``: NotRegistered, Registering, Registered...:
https://learn.microsoft.com/rest/api/resources/features/get), as the deployer (an ARM token
from ``DefaultAzureCredential``), when ``pulumi up`` creates it. Anything but ``Registered`` (or
a 404) fails it with the fix; the resources that need the feature depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import requests
from pulumi import dynamic

ARM = "https://management.azure.com"
API_VERSION = "2021-07-01"


class FeatureNotRegistered(RuntimeError):
    """The subscription feature is not Registered; the message says how to register it."""


def feature_url(base: str, subscription_id: str, namespace: str, feature: str) -> str:
    return (
        f"{base.rstrip('/')}/subscriptions/{subscription_id}/providers/Microsoft.Features/"
        f"providers/{namespace}/features/{feature}?api-version={API_VERSION}"
    )


def arm_token() -> str:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential().get_token(f"{ARM}/.default").token


def feature_state(props: Mapping[str, Any], token: Callable[[], str] | None = None) -> str:
    """The feature's registration state; raises :class:`FeatureNotRegistered` with the fix."""
    namespace, feature = str(props["namespace"]), str(props["feature"])
    url = feature_url(
        str(props.get("arm") or ARM), str(props["subscription_id"]), namespace, feature
    )
    response = requests.get(
        url, headers={"Authorization": f"Bearer {(token or arm_token)()}"}, timeout=30
    )
    what = f"the subscription's {namespace}/{feature} feature"
    if response.status_code == 404:
        state = "unknown to this subscription (never registered)"
    elif response.status_code == 200:
        state = str(((response.json() or {}).get("properties") or {}).get("state") or "")
    else:
        raise FeatureNotRegistered(
            f"{props.get('needed_by', '')}: cannot read {what} ({response.status_code} "
            f"{response.text[:200].strip()}); {props.get('fix', '')}"
        )
    if state != "Registered":
        raise FeatureNotRegistered(
            f"{props.get('needed_by', '')}: {what} is {state or 'not registered'}: "
            f"{props.get('fix', '')}"
        )
    return state


WATCHED = ("subscription_id", "namespace", "feature")


class FeatureRegistrationProvider(dynamic.ResourceProvider):
    """Inputs: subscription_id, namespace, feature, needed_by, fix (arm: tests only)."""

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        state = feature_state(props)
        key = f"{props['subscription_id']}/{props['namespace']}/{props['feature']}"
        return dynamic.CreateResult(id_=key, outs={**props, "state": state})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [k for k in WATCHED if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs={**news, "state": feature_state(news)})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        return dynamic.ReadResult(id_, props)  # a check, not a thing to drift

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None  # never unregisters the feature


class FeatureRegistration(dynamic.Resource, module="azure", name="FeatureRegistration"):
    """Created only if the subscription feature ``namespace/feature`` is Registered."""

    state: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        subscription_id: pulumi.Input[str],
        namespace: str,
        feature: str,
        needed_by: str,
        fix: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            FeatureRegistrationProvider(),
            name,
            {
                "subscription_id": subscription_id,
                "namespace": namespace,
                "feature": feature,
                "needed_by": needed_by,
                "fix": fix,
                "state": None,
            },
            opts,
        )
