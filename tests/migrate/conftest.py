"""Running ``python -m migrate`` in-process: exit code, printed report, the stack file's values."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from migrate.__main__ import main
from migrate.stack import read_values
from tests.migrate.v1_docs import MODEL


@dataclass
class Result:
    code: int
    out: str
    err: str
    stack_file: Path

    @property
    def values(self) -> dict[str, Any]:
        return read_values(self.stack_file)


@pytest.fixture
def migrate(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    def run(
        inference: Path,
        *deployments: Path,
        stack: str = "v1",
        out: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> Result:
        out = out or tmp_path / f"Pulumi.{stack}.yaml"
        argv = ["--inference-config", str(inference)]
        for d in deployments:
            argv += ["--deployment-config", str(d)]
        argv += ["--model", str(MODEL), "--model-name", "diabetes-ridge", "--model-version", "1"]
        argv += ["--stack", stack, "--out", str(out), *extra]
        code = main(argv)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err, out)

    return run
