"""A failed first prod run plus ``pulumi destroy`` leaves the key vault soft-deleted under purge
protection: its name stays taken for the retention (90 days, soft-delete-overview). The recovery
(README, "Deploying to Azure") is a new ``nameSuffix``, so the suffix must reach the vault's
name whole."""

from __future__ import annotations

from tests.infra.settings_helpers import keys_of, load, problems


def test_a_new_name_suffix_gives_prod_a_new_vault_name() -> None:
    held = load("prod").naming.key_vault()
    fresh = load("prod", nameSuffix="r2").naming.key_vault()
    assert fresh != held and fresh.endswith("-r2") and len(fresh) <= 24


def test_a_suffix_the_vault_name_would_cut_is_refused() -> None:
    # "abcdefghij-prod-kv-a1b2c3" is 25 characters: the vault name would end in "a1b2c", the
    # same as with any other suffix starting so
    found = problems("prod", prefix="abcdefghij", nameSuffix="a1b2c3")
    assert keys_of(found) == {"prefix", "nameSuffix"}
    assert any("cuts the suffix" in p.problem for p in found), [str(p) for p in found]
    assert (
        load("prod", prefix="abcdefghij", nameSuffix="a1b2c").naming.key_vault().endswith("a1b2c")
    )
