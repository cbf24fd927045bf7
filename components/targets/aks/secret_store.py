"""SecretProviderClasses of the Azure Key Vault provider for the Secrets Store CSI driver: the
scoring keys (scoring namespace) and the TLS certificate (the ingress gateway's namespace).

The driver reads Key Vault as a **workload identity** (``clientID`` of the identity, whose
federated credential trusts the pod's service account:
https://learn.microsoft.com/azure/aks/csi-secrets-store-identity-access, "workload identity"),
mounts the objects into the pods that use the class and, with ``secretObjects``, syncs them into a
Kubernetes Secret, which exists while a pod mounts the volume
(https://learn.microsoft.com/azure/aks/csi-secrets-store-configuration-options, "Sync mounted
content with a Kubernetes secret"). With rotation on (profiles.py) the driver re-reads Key Vault
every ``aksSecretsRotationInterval`` and updates the mount and the Secret: a new version of a
versionless object is picked up without a redeploy.

The scoring class syncs the two scoring keys and Application Insights' connection string (its
own Key Vault secret, written by workload.py: Pulumi writes no Kubernetes Secret) into one
Secret per key generation (manifests.keys_secret explains why a new name each generation).

The TLS certificate: what each ``objectType`` of a Key Vault certificate returns
(https://azure.github.io/secrets-store-csi-driver-provider-azure/docs/configurations/getting-certs-and-keys/):
``cert`` "only returns the Server certificate and not the entire chain"; ``secret`` returns "the
private key and certificate" in PEM (``objectFormat`` defaults to ``pem``; a PFX only with
``objectFormat: pfx``) and, for a chain, "the entire certificate chain along with the private
key"; ``key`` the public key. So ``tls.crt`` stays the ``secret`` object, as the provider's own
ingress TLS guide and Microsoft's Istio one map it
(https://azure.github.io/secrets-store-csi-driver-provider-azure/docs/configurations/ingress-tls/,
https://learn.microsoft.com/azure/aks/istio-secure-gateway): ``cert`` would drop the
intermediates and clients that do not fetch them (most non-browser clients) would refuse a
certificate from any public CA. The gateway reads the certificate blocks of ``tls.crt`` and the
key from ``tls.key``; the Secret holds the key either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import yaml

PROVIDER_API = "secrets-store.csi.x-k8s.io/v1"
TLS_SECRET = "scoring-tls"


def _objects(objects: Sequence[tuple[str, str]]) -> str:
    """The provider's ``objects`` parameter: a YAML document with an array of YAML strings."""
    items = [
        yaml.safe_dump({"objectName": name, "objectType": kind}, sort_keys=False)
        for name, kind in objects
    ]
    return yaml.safe_dump({"array": items}, sort_keys=False, default_style=None)


def provider_parameters(
    client_id: pulumi.Input[str],
    tenant_id: pulumi.Input[str],
    vault_name: pulumi.Input[str],
    objects: pulumi.Input[str],
) -> dict[str, Any]:
    return {
        "usePodIdentity": "false",
        "clientID": client_id,
        "keyvaultName": vault_name,
        "tenantId": tenant_id,
        "cloudName": "",
        "objects": objects,
    }


def keys_spec(
    secret_name: str,
    synced: Sequence[tuple[pulumi.Input[str], str]],
    client_id: pulumi.Input[str],
    tenant_id: pulumi.Input[str],
    vault_name: pulumi.Input[str],
) -> dict[str, Any]:
    """Key Vault secrets synced as keys of the Opaque Secret ``secret_name``: ``synced`` pairs
    each secret's name with its key in the Secret (the env var the pods read)."""
    names = pulumi.Output.all(*(name for name, _ in synced))
    return {
        "provider": "azure",
        "secretObjects": [
            {
                "secretName": secret_name,
                "type": "Opaque",
                "data": [{"objectName": name, "key": key} for name, key in synced],
            }
        ],
        "parameters": provider_parameters(
            client_id,
            tenant_id,
            vault_name,
            names.apply(lambda ns: _objects([(str(n), "secret") for n in ns])),
        ),
    }


def tls_spec(
    certificate_name: str,
    client_id: pulumi.Input[str],
    tenant_id: pulumi.Input[str],
    vault_name: pulumi.Input[str],
) -> dict[str, Any]:
    """The Key Vault certificate, synced as the ``kubernetes.io/tls`` Secret the gateway uses."""
    return {
        "provider": "azure",
        "secretObjects": [
            {
                "secretName": TLS_SECRET,
                "type": "kubernetes.io/tls",
                "data": [
                    {"objectName": certificate_name, "key": "tls.key"},
                    {"objectName": certificate_name, "key": "tls.crt"},
                ],
            }
        ],
        "parameters": provider_parameters(
            client_id, tenant_id, vault_name, _objects([(certificate_name, "secret")])
        ),
    }


def secret_name_of(uri: pulumi.Input[str]) -> pulumi.Output[str]:
    """``https://<vault>.vault.azure.net/secrets/<name>[/<version>]`` -> ``<name>``."""

    def name(u: str) -> str:
        parts = u.rstrip("/").split("/secrets/", 1)
        if len(parts) != 2 or not parts[1]:
            raise ValueError(f"not a Key Vault secret URI: {u!r}")
        return parts[1].split("/")[0]

    return pulumi.Output.from_input(uri).apply(name)
