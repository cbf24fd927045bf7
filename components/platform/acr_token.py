"""Push to the registry without its admin user: exchange an Entra token for an ACR refresh token.

This is what ``az acr login --expose-token`` does: the deploying identity (which holds AcrPush on
the registry) gets an Entra access token with azure-identity, posts it to the registry's
``/oauth2/exchange`` endpoint, and docker logs in with the returned refresh token under the fixed
user name ``00000000-0000-0000-0000-000000000000``. No registry password exists anywhere.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import pulumi
import requests

ACR_TOKEN_USER = "00000000-0000-0000-0000-000000000000"
ARM_SCOPE = "https://management.azure.com/.default"
PREVIEW_PLACEHOLDER = "<acr-refresh-token: exchanged during pulumi up>"


class TokenCredential(Protocol):
    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


class AcrTokenError(RuntimeError):
    pass


def exchange_refresh_token(
    login_server: str,
    tenant_id: str,
    credential: TokenCredential | None = None,
    *,
    base_url: str | None = None,
    timeout: float = 30.0,
    attempts: int = 4,
) -> str:
    """Return an ACR refresh token for ``login_server`` from an Entra token of ``credential``.

    ``base_url`` defaults to ``https://<login_server>``; tests point it at a local server.
    """
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    access_token = credential.get_token(ARM_SCOPE).token
    url = f"{base_url or 'https://' + login_server}/oauth2/exchange"
    data = {
        "grant_type": "access_token",
        "service": login_server,
        "tenant": tenant_id,
        "access_token": access_token,
    }
    for attempt in range(attempts):
        response = requests.post(url, data=data, timeout=timeout)
        if response.status_code in (429, 500, 502, 503, 504) and attempt < attempts - 1:
            time.sleep(min(2**attempt, 8))
            continue
        if response.status_code in (401, 403):
            raise AcrTokenError(
                f"{login_server} refused the Entra token ({response.status_code}): the identity "
                "running pulumi up needs the AcrPush role on the registry (the program assigns "
                "it; role assignments can take a minute to propagate, so run pulumi up again)"
            )
        if response.status_code != 200:
            raise AcrTokenError(
                f"token exchange with {login_server} failed: {response.status_code} "
                f"{response.text[:200]}"
            )
        token = response.json().get("refresh_token")
        if not token:
            raise AcrTokenError(f"{login_server} answered without a refresh_token")
        return str(token)
    raise AcrTokenError(f"token exchange with {login_server} kept failing")  # pragma: no cover


def registry_password(
    login_server: pulumi.Input[str], tenant_id: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The docker password for ``login_server``: an ACR refresh token, as a secret Output.

    During a preview nothing is pushed, so no token is requested and a placeholder stands in.
    """

    def fetch(args: list[str]) -> str:
        server, tenant = args
        if pulumi.runtime.is_dry_run():
            return PREVIEW_PLACEHOLDER
        return exchange_refresh_token(server, tenant)

    return pulumi.Output.secret(pulumi.Output.all(login_server, tenant_id).apply(fetch))
