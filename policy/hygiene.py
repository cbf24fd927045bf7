"""Rules of the policy pack for zones and secret hygiene (``policies.py`` wraps them).

Plain functions over a resource's inputs as the engine hands them to an analyzer (camelCase
azure-native v3 names, secrets unwrapped), like the other rules.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policy.azure_checks import reason as check_reason

STORAGE = "azure-native:storage:StorageAccount"
KEY_VAULT_SECRET = "azure-native:keyvault:Secret"
APP_SERVICE_PLAN = "azure-native:web:AppServicePlan"


def _get(props: Mapping[str, Any] | None, *path: str) -> Any:
    value: Any = props
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


# --- key vault secrets: a content type and an expiry (CKV_AZURE_114, CKV_AZURE_41) -----------
def check_secret_hygiene(type_: str, props: Mapping[str, Any]) -> list[str]:
    if type_ != KEY_VAULT_SECRET:
        return []
    found: list[str] = []
    if not _get(props, "properties", "contentType"):
        found.append("properties.contentType is not set: say what the secret holds (content_type)")
    expires = _get(props, "properties", "attributes", "expires")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        found.append(
            "properties.attributes.expires is not set: secrets valid forever give an attacker "
            "more time; set an expiry (Unix time) renewed by each deploy"
        )
    elif expires <= time.time():
        found.append(f"properties.attributes.expires ({int(expires)}) is past: Key Vault refuses "
                     "to read an expired secret (SecretExpired)")  # fmt: skip
    return found


# --- zones (stack config "required": prod) ------------------------------------------------------
ZONE_MIN_INSTANCES = 2
ZONE_REDUNDANT_STORAGE = {"Standard_ZRS", "Standard_GZRS", "Standard_RAGZRS", "Premium_ZRS"}


def check_zone_redundancy(type_: str, props: Mapping[str, Any], required: bool) -> list[str]:
    """Plans spread over zones with >= 2 instances; storage replicated across zones."""
    if not required:
        return []
    found: list[str] = []
    if type_ == APP_SERVICE_PLAN:
        if props.get("zoneRedundant") is not True:
            zonal = props.get("zoneRedundant")
            found.append(f"zoneRedundant is {zonal!r}: set zone_redundant=True")
        capacity = _get(props, "sku", "capacity")
        if not isinstance(capacity, int | float) or capacity < ZONE_MIN_INSTANCES:
            found.append(f"sku.capacity is {capacity!r}: a zone-redundant plan keeps >= "
                         f"{ZONE_MIN_INSTANCES} instances")  # fmt: skip
    elif type_ == STORAGE and _get(props, "sku", "name") not in ZONE_REDUNDANT_STORAGE:
        found.append(f"sku.name is {_get(props, 'sku', 'name')!r}: use zone-redundant storage "
                     "(Standard_ZRS, Standard_GZRS or Standard_RAGZRS)")  # fmt: skip
    return found


ZONES_NAME = "zone-redundancy"
ZONES_REMEDIATION = (
    "zoneRedundant=true with a Premium plan and >= 2 instances, storageRedundancy ZRS/GZRS. "
    "This is the failover minimum the web apps rely on (CKV_AZURE_212, docs/security.md): "
    + check_reason("CKV_AZURE_212")
)


def _validate_zones(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    required = bool((args.get_config() or {}).get("required", False))
    for message in check_zone_redundancy(args.resource_type, args.props, required):
        report_violation(message, None)


def zone_policy() -> ResourceValidationPolicy:
    """The zone rule, on where the stack's policy config says ``"required": true``."""
    return ResourceValidationPolicy(
        name=ZONES_NAME,
        description=(
            "Where the stack's policy config says required (prod): App Service plans zone "
            f"redundant with >= {ZONE_MIN_INSTANCES} instances, storage zone-redundant."
        ),
        validate=_validate_zones,
        remediation_steps=ZONES_REMEDIATION,
        config_schema=PolicyConfigSchema(properties={"required": {"type": "boolean"}}),
    )
