"""``python -m cost``: one run of the real program (preview mode) priced end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cost.__main__ import main


def test_markdown_json_and_budget_exit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["dev", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["region"] == "westeurope"
    assert data["total"]["max"] == pytest.approx(sum(x["max"] for x in data["lines"]), abs=0.05)
    assert {"priced", "free", "not estimated"} <= {x["status"] for x in data["lines"]}
    base = tmp_path / "base.json"
    data["lines"] = [x for x in data["lines"] if x["resource"] != "acr"]
    data["total"] = {"min": 0.0, "max": 0.0}
    base.write_text(json.dumps(data))
    # --budget-check reads mlscore:monthlyBudgetUsd with the --set overrides (dev costs > $1).
    code = main(
        ["dev", "--markdown", "--base", str(base), "--budget-check", "--set", "monthlyBudgetUsd=1"]
    )
    out, err = capsys.readouterr()
    assert code == 3 and "exceeds mlscore:monthlyBudgetUsd 1" in err
    assert "- added: registry / acr: $0.00 -> $5.08" in out and "| registry / acr | Basic |" in out


def test_an_invalid_stack_config_prices_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--set", "monthlyBudgetUsd=lots"]) == 1
    assert "monthlyBudgetUsd" in capsys.readouterr().err


def test_the_preview_workflow_posts_each_stacks_cost_and_its_change() -> None:
    """Beside the plan: the preview job prices its matrix stack, against the base branch's
    estimate, and comments it on the pull request (the token it needs: pull-requests write)."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    job = yaml.safe_load((root / ".github/workflows/preview.yml").read_text())["jobs"]["preview"]
    base = [s for s in job["steps"] if s.get("with", {}).get("path") == "base"]
    assert base and base[0]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    step = next(s for s in job["steps"] if "python -m cost" in s.get("run", ""))
    assert step["env"]["STACK"] == "${{ matrix.stack }}"
    assert '-m cost "$STACK" --json' in step["run"] and '--markdown "${base[@]}"' in step["run"]
    assert "gh pr comment" in step["run"] and job["permissions"]["pull-requests"] == "write"
    names = [s.get("name", "") for s in job["steps"]]
    assert names.index(step["name"]) < names.index("pulumi preview")
