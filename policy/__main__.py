"""Entry point the Pulumi CLI runs for ``--policy-pack policy``: it only builds the pack.

The policies live in ``policies.py`` so that tests import them without starting this server.
Enforcement per stack: ``--policy-pack-config policy/config.<stack>.json``.
"""

from policies import DEFAULT_ENFORCEMENT, policies
from pulumi_policy import PolicyPack

PolicyPack(
    name="mlscore-security",
    policies=policies(),
    enforcement_level=DEFAULT_ENFORCEMENT,
    description="Secure defaults of the mlscore deployment (DESIGN.md, 'Secure by default').",
)
