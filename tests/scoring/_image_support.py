"""Starting the scoring host from an image layout rebuilt without Docker
(components/platform/image_layout.py), with a target's environment on top of the image's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _scoring_support import Host, free_port

from components.platform.image_layout import ImageLayout


def clean_env() -> dict[str, str]:
    """This process's environment without what would leak into the host's settings."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "SCORING_", "AZUREML_", "MODEL_", "PYTHONPATH"))
    }


def serve(layout: ImageLayout, env: dict[str, str], tmp: Path) -> Host:
    """``python -m scoring`` in the layout's WORKDIR with the image's ENV and ``env`` on top."""
    port = free_port()
    run_env = clean_env() | layout.with_env(env)
    run_env |= {"AZUREML_SERVER_PORT": str(port), "SCORING_HOST": "127.0.0.1"}
    log = tmp / "host.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scoring"],
            cwd=layout.workdir,
            env=run_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Host(proc, port, log)
