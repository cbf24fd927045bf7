"""python -m migrate as a v1 user runs it: from the v1 project's folder, paths next to the
inference config, and a non-zero exit for any part of v1 that cannot be carried over."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from components import PROJECT_ROOT
from migrate.paths import stack_path
from tests.migrate.v1_docs import ACI_JSON, INFERENCE_JSON, MODEL, project

INLINE_ENVIRONMENT = """{
    "entryScript": "score.py",
    "environment": {
        "name": "myenv",
        "python": {"condaDependencies": {"dependencies": ["python=3.11",
            {"pip": ["scikit-learn==1.9.1", "joblib"]}]}}
    }
}
"""


def test_an_inline_environment_is_not_carried_over_so_nothing_is_written(migrate, tmp_path):
    v1 = project(tmp_path / "v1", {"i.json": INLINE_ENVIRONMENT, "aci.json": ACI_JSON})
    done = migrate(v1 / "i.json", v1 / "aci.json")
    assert done.code == 3, done.out
    assert "not converted: an inline Azure ML environment" in done.out
    assert "Not carried over: 1 part(s)" in done.out and "i.json environment" in done.out
    assert "valid." not in done.out
    assert not done.stack_file.exists()  # not a stack serving the sample's requirements

    accepted = migrate(v1 / "i.json", v1 / "aci.json", extra=("--accept-losses",))
    assert accepted.code == 0, accepted.out
    assert "Written anyway (--accept-losses)" in accepted.out
    assert accepted.values["entryScript"] == stack_path(v1 / "score.py")


def test_extra_dockerfile_steps_and_an_unknown_field_are_not_carried_over(migrate, tmp_path):
    inference = '{"entryScript": "score.py", "extraDockerfileSteps": "steps.txt", "entryScrpt": 1}'
    files = {"i.json": inference, "steps.txt": "RUN apt-get install -y libgomp1\n"}
    v1 = project(tmp_path / "v1", {**files, "aci.json": ACI_JSON})
    done = migrate(v1 / "i.json", v1 / "aci.json")
    assert done.code == 3 and not done.stack_file.exists(), done.out
    assert "Not carried over: 2 part(s)" in done.out
    assert "i.json extraDockerfileSteps" in done.out and "i.json entryScrpt: unknown" in done.out


def test_source_directory_is_next_to_the_inference_config_not_in_the_working_directory(
    migrate, tmp_path, monkeypatch
):
    inference = '{"entryScript": "score.py", "condaFile": "myenv.yml", "sourceDirectory": "src"}'
    v1 = project(tmp_path / "v1" / "src", {}).parent
    (v1 / "i.json").write_text(inference)
    (v1 / "aci.json").write_text(ACI_JSON)
    decoy = project(tmp_path / "cwd" / "src", {}).parent  # the same names where the command runs
    monkeypatch.chdir(decoy)
    done = migrate(v1 / "i.json", v1 / "aci.json")
    assert done.code == 0, done.out
    assert done.values["entryScript"] == stack_path(v1 / "src" / "score.py")
    assert done.values["dependenciesFile"] == stack_path(v1 / "src" / "myenv.yml")


def test_python_m_migrate_and_its_console_script_run_in_a_v1_projects_folder(tmp_path):
    """Where a v1 user keeps the files, not the project root: ``python -m migrate`` (the package
    ``make setup`` installs, pyproject's [tool.setuptools]) and ``mlscore-migrate``."""
    v1 = project(tmp_path / "v1", {"inferenceconfig.json": INFERENCE_JSON, "aci.json": ACI_JSON})
    argv = ["--inference-config", "inferenceconfig.json", "--deployment-config", "aci.json"]
    argv += ["--model", str(MODEL), "--model-name", "m", "--model-version", "3"]
    script = Path(sys.executable).parent / "mlscore-migrate"
    for command in ([sys.executable, "-m", "migrate"], [str(script)]):
        out = v1 / f"Pulumi.{len(command)}.yaml"
        done = subprocess.run(
            [*command, *argv, "--stack", "v1", "--out", out.name],
            cwd=v1,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "valid." in done.stdout
        assert 'containerResourceRequirements.cpu = 0.5  ->  aciCpu: "0.5"' in done.stdout
        assert out.read_text().startswith("# Migrated from Azure ML SDK/CLI v1")
        # preview is the project's, not an installed package: the hint runs it from there
        assert f"cd {PROJECT_ROOT} && python -m preview v1 --stack-file {out}" in done.stdout
