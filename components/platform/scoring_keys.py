"""The scoring keys: two random keys (primary, secondary) kept in the key vault, rotated.

The scoring host checks ``Authorization: Bearer <key>`` against them in every container target
(App Service, ACI, AKS, IoT Edge), as Azure ML's AKS web services did. Targets receive the keys as
Key Vault references, secure environment values or Kubernetes secrets; clients read them from the
``endpoints`` stack output, which marks them secret.

Rotation (``scoringKeyRotationDays``, P days): time is cut into periods of P days from the Unix
epoch; period ``n`` is the *generation*. Two key slots alternate: the slot ``n % 2`` is
regenerated when generation ``n`` begins (its ``keepers`` change, so the first ``pulumi up`` of
the period replaces it) and becomes the primary; the other slot still holds the previous
primary, now the secondary. Every target accepts both, so clients move to the new primary during
the period without downtime; the key they used is dropped one period later. A key thus lives two
periods, and every Key Vault secret the program writes in generation ``n`` expires when
generation ``n + 2`` begins (``exp``), so a key vault listing shows which secrets a stack has
stopped renewing (deploy at least once per period). ``exp`` is informational, not enforced on
reads: "A secret's get operation will work for not-yet-valid and expired secrets" and the
attribute "is for informational purposes only" (azure-security-docs, about-secrets.md,
https://learn.microsoft.com/azure/key-vault/secrets/about-secrets#date-time-controlled-operations);
the key a client may still use is decided by the host's two slots, not by the vault.

The clock is :func:`utc_now`, looked up at each call, so tests replace it (``unittest.mock.patch``
of ``components.platform.scoring_keys.utc_now``) or pass ``clock=`` to :class:`ScoringKeysArgs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pulumi
import pulumi_azure_native.keyvault as keyvault
import pulumi_random as random

from components.contract import SecretRef
from components.platform.settings import DEFAULT_KEY_ROTATION_DAYS
from components.settings import Settings

if TYPE_CHECKING:
    from components.contract import ScoringDeployment

Clock = Callable[[], datetime]
DAY_SECONDS = 86400
# Key Vault secret content types (CKV_AZURE_114: a secret says what it holds).
CONTENT_KEY = "text/plain; scoring bearer key"
CONTENT_KEYS = "text/plain; comma-separated scoring bearer keys"
CONTENT_CONNECTION = "text/plain; connection string"
# The two slots' logical names: those of the keys before rotation existed, so their state carries
# over. Which slot holds the primary alternates with the generation (Rotation.primary_slot).
SLOTS = ("scoring-key-primary", "scoring-key-secondary")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Rotation:
    """Where ``now`` falls in the rotation schedule of ``period_days``."""

    period_days: int
    generation: int  # whole periods since 1970-01-01T00:00Z

    @classmethod
    def at(cls, period_days: int, now: datetime) -> Rotation:
        return cls(period_days, int(now.timestamp()) // (period_days * DAY_SECONDS))

    def starts(self, generation: int) -> int:
        """Unix time at which ``generation`` begins."""
        return generation * self.period_days * DAY_SECONDS

    @property
    def primary_slot(self) -> int:
        return self.generation % 2

    def slot_generation(self, slot: int) -> int:
        """The generation in which ``slot`` (0 or 1) was last regenerated."""
        return self.generation if slot == self.primary_slot else self.generation - 1

    @property
    def expires(self) -> int:
        """Unix time at which the secrets written now expire: the end of the secondary's life."""
        return self.starts(self.generation + 2)

    @property
    def next_rotation(self) -> str:
        return datetime.fromtimestamp(self.starts(self.generation + 1), UTC).isoformat()


def rotation(settings: Settings | None = None, clock: Clock | None = None) -> Rotation:
    """The schedule of ``settings`` (the default period without) at the clock's time."""
    days = settings.resilience.key_rotation_days if settings else DEFAULT_KEY_ROTATION_DAYS
    return Rotation.at(days, (clock or utc_now)())


@dataclass(frozen=True)
class ScoringKeysArgs:
    settings: Settings
    resource_group_name: pulumi.Input[str]
    vault_name: pulumi.Input[str]
    clock: Clock | None = None  # None: utc_now


def store_secret(
    logical_name: str,
    secret_name: str,
    value: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    vault_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    *,
    expires: int | None = None,
    content_type: str = "text/plain",
) -> keyvault.Secret:
    """A Key Vault secret of ``value`` (marked secret) with ``content_type``; it expires at
    ``expires`` (Unix time; default: two periods of the default rotation from now, see
    :class:`Rotation`), renewed by each deploy."""
    return keyvault.Secret(
        logical_name,
        secret_name=secret_name,
        resource_group_name=resource_group_name,
        vault_name=vault_name,
        properties=keyvault.SecretPropertiesArgs(
            value=pulumi.Output.secret(value),
            content_type=content_type,
            attributes=keyvault.SecretAttributesArgs(
                enabled=True, expires=expires if expires is not None else rotation().expires
            ),
        ),
        opts=opts,
    )


def vault_secret(
    logical_name: str,
    secret_name: str,
    value: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    vault_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    *,
    expires: int | None = None,
    content_type: str = "text/plain",
) -> SecretRef:
    """Store ``value`` in the key vault; return its value (secret) and versionless URI."""
    secret = store_secret(
        logical_name,
        secret_name,
        value,
        resource_group_name,
        vault_name,
        opts,
        expires=expires,
        content_type=content_type,
    )
    return SecretRef(
        value=pulumi.Output.secret(value),
        uri=secret.properties.apply(lambda p: p.secret_uri or ""),
    )


class ScoringKeys(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ScoringKeysArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlscore:platform:ScoringKeys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rotation = rotation(args.settings, args.clock)
        slots = [
            random.RandomPassword(
                slot,
                length=40,
                special=False,
                # A new generation for this slot replaces the key (keepers force a new value).
                keepers={"generation": str(self.rotation.slot_generation(i))},
                opts=child,
            )
            for i, slot in enumerate(SLOTS)
        ]
        primary = slots[self.rotation.primary_slot]
        secondary = slots[1 - self.rotation.primary_slot]
        self.primary, self.secondary = (
            vault_secret(
                f"scoring-key-{which}-secret",
                f"scoring-key-{which}",
                key.result,
                args.resource_group_name,
                args.vault_name,
                child,
                expires=self.rotation.expires,
                content_type=CONTENT_KEY,
            )
            for which, key in (("primary", primary), ("secondary", secondary))
        )
        self.register_outputs(
            {
                "primary_uri": self.primary.uri,
                "secondary_uri": self.secondary.uri,
                "generation": self.rotation.generation,
                "next_rotation": self.rotation.next_rotation,
            }
        )


def host_secrets(
    prefix: str,
    keys: tuple[SecretRef, SecretRef],
    app_insights_connection_string: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    vault_name: pulumi.Input[str],
    expires: int,
    opts: pulumi.ResourceOptions,
) -> dict[str, SecretRef]:
    """The host's secrets as one target reads them through Key Vault references, by setting
    name: both scoring keys in one secret (``SCORING_AUTH_KEYS``, as the host reads them) and
    the Application Insights connection string. ``prefix`` names the target's own copies
    (``<prefix>-scoring-auth-keys``, ``<prefix>-appinsights-connection``)."""
    primary, secondary = keys

    def store(what: str, name: str, value: pulumi.Input[str], content_type: str) -> SecretRef:
        return vault_secret(
            f"{prefix}-{what}-secret",
            f"{prefix}-{name}",
            value,
            resource_group_name,
            vault_name,
            opts,
            expires=expires,
            content_type=content_type,
        )

    return {
        "SCORING_AUTH_KEYS": store(
            "auth-keys",
            "scoring-auth-keys",
            pulumi.Output.concat(primary.value, ",", secondary.value),
            CONTENT_KEYS,
        ),
        "APPLICATIONINSIGHTS_CONNECTION_STRING": store(
            "appinsights",
            "appinsights-connection",
            app_insights_connection_string,
            CONTENT_CONNECTION,
        ),
    }


def deployment_secrets(
    prefix: str,
    d: ScoringDeployment,
    cache_key: SecretRef | None,
    opts: pulumi.ResourceOptions,
) -> dict[str, SecretRef]:
    """What a web or container app reads through Key Vault references, by setting name: the
    host's secrets (:func:`host_secrets`, renewed with the keys) and the Redis key as the
    platform stores it."""
    secrets = host_secrets(
        prefix,
        d.scoring_keys,
        d.app_insights_connection_string,
        d.resource_group_name,
        d.key_vault.name,
        rotation(d.settings).expires,
        opts,
    )
    if cache_key is not None:
        secrets["REDIS_PASSWORD"] = cache_key
    return secrets
