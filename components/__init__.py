"""Pulumi components of the mlscore program, in layers that the folders show.

- ``contract.py``: the one interface every target shares (``ScoringDeployment`` in,
  ``Endpoint`` out). It sits below both the platform and the targets.
- ``config/``: reads ``Pulumi.yaml``'s schema and the stack values, assembles one validated
  ``Settings`` (every problem at once, before any resource), naming rules, VM sizes.
- ``platform/``: what every target shares: registry, identity, workspace, monitoring, keys,
  the scoring image, the prediction cache.
- ``targets/``: one folder per hosting target, each with its own settings, rules and components.
- ``providers/``: dynamic providers; their module paths are stored in every stack's state.

Imports run downwards only: targets -> platform -> contract -> config.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
