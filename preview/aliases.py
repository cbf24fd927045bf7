"""Skip the alias URNs that no one reads when the engine takes alias specs.

Every ``pulumi.Resource.__init__`` turns each of its ``aliases`` into a URN Output
(``collapse_alias_to_urn``: an ``Output.all`` and a few tasks per alias) and keeps them in
``Resource._aliases``. pulumi-azure-native gives every resource one alias per older API version
of its type (dozens on some), so a run of this program computes about 3,500 of them. The only
reader of ``_aliases`` is ``pulumi.runtime.resource.all_aliases``, on the path for engines
*without* the alias-specs feature (``prepare_aliases``, pulumi/runtime/resource.py); an engine
with it (Pulumi's mock monitor, whose ``GetDeploymentInfo`` lists
``RESOURCE_MONITOR_FEATURE_ALIAS_SPECS``; the skip is made only after checking that feature)
receives the aliases as specs, straight from the resource options, which this leaves untouched.
Only the offline engine uses this; a real ``pulumi up`` runs the program unchanged. Skipping the
dead URNs makes a run under mocks 2.5-4 times faster (prod 4.5 s -> 1.5 s) and registers exactly
the same graph (tests/infra/test_idempotency.py).

If a Pulumi release ever reads ``_aliases`` on the spec path, ``all_aliases`` raises here
instead of computing with the placeholders, so a run can never be silently wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import pulumi.resource
import pulumi.runtime.resource
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import monitor_supports_feature


class AliasUrnsSkipped(RuntimeError):
    pass


def _not_computed(*_: Any, **__: Any) -> None:
    return None


def _refuse(*_: Any, **__: Any) -> Any:
    raise AliasUrnsSkipped(
        "pulumi read Resource._aliases, which preview/aliases.py skips when the engine takes "
        "alias specs: run without that shortcut (this Pulumi release needs the URNs)"
    )


@contextmanager
def alias_urns_skipped() -> Iterator[bool]:
    """Within: new resources keep no alias URNs, if the engine supports alias specs (yields
    whether it did). Call after ``pulumi.runtime.set_mocks``."""
    if not monitor_supports_feature(resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS):
        yield False
        return
    with (
        patch.object(pulumi.resource, "collapse_alias_to_urn", _not_computed),
        patch.object(pulumi.runtime.resource, "all_aliases", _refuse),
    ):
        yield True
