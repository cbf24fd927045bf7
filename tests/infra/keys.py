"""The scoring keys as the program stores them, read by role (primary, secondary).

Which random-password slot backs the primary alternates with the rotation generation
(components/platform/scoring_keys.py); a test that reads a slot by its name passes in one
period and fails in the next. Read the Key Vault secret named for the role instead.
"""

from __future__ import annotations

from preview import engine

SECRET = "azure-native:keyvault:Secret"


def vault_key(run: engine.Run, secret_name: str) -> str:
    """The value of the Key Vault secret ``secret_name`` (e.g. ``scoring-key-primary``)."""
    (found,) = [s for s in run.of_type(SECRET) if s.azure_name == secret_name]
    return str(engine.reveal(found.inputs["properties"])["value"])
