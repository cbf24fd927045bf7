"""The image's Python is the user's (issue 28 item 2): a conda file's python= line or
mlscore:pythonVersion, any of 3.10-3.13, refused otherwise before any resource, naming the key
and the supported versions; the build context carries it to scoring/Dockerfile."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import PROJECT_ROOT
from components.config.reader import Reader
from components.platform.build_context import assemble
from components.platform.settings import PYTHON_VERSIONS, ModelSettings, read_model
from preview import engine

EXAMPLES = PROJECT_ROOT / "tests" / "models" / "azureml_examples"


def _model(**config: str) -> tuple[ModelSettings, list[str]]:
    base, _ = engine.stack_config("dev")
    values = {k.split(":", 1)[1]: v for k, v in base.items() if k.startswith("mlscore:")}
    # Batch off: Azure ML's batch runtime has no Python 3.13 (tests/infra/targets/aml/test_batch.py)
    values["batchEnabled"] = "false"
    r = Reader((values | config).get)
    return read_model(r), [str(p) for p in r.problems]


def _conda(tmp_path: Path, python: str) -> str:
    conda = tmp_path / "environment.yml"
    conda.write_text(f"dependencies:\n  - {python}\n  - pip:\n    - joblib>=1.4\n")
    return str(conda)


@pytest.mark.parametrize(
    ("python", "image"),
    [("python=3.10", "3.10"), ("python=3.10.4", "3.10"), ("python=3.13", "3.13"),
     ("python>=3.9", "3.11"), ("python>=3.12", "3.13"), ("python", "3.11")],
)  # fmt: skip
def test_the_conda_files_python_line_picks_the_images_python(
    tmp_path: Path, python: str, image: str
) -> None:
    model, problems = _model(dependenciesFile=_conda(tmp_path, python))
    assert problems == [] and model.python_version == image
    ctx = assemble(model, "scoring", root=tmp_path / "ctx")
    assert ctx.build_args["PYTHON_VERSION"] == image
    assert assemble(model, "functions", root=tmp_path / "f").build_args["PYTHON_VERSION"] == image


def test_the_seeds_python_38_era_files_are_refused_naming_the_supported_versions() -> None:
    """model-1's conda file (azureml-examples 305b30381) says python=3.9."""
    _, problems = _model(dependenciesFile=str(EXAMPLES / "environments" / "model-1-python39.yaml"))
    (problem,) = problems
    assert problem.startswith("mlscore:dependenciesFile = 'python=3.9 (model-1-python39.yaml ")
    assert "line 5)'" in problem and "3.10, 3.11, 3.12, 3.13" in problem and "fix:" in problem


@pytest.mark.parametrize(
    ("config", "keys", "words"),
    [
        ({"pythonVersion": "3.9"}, "mlscore:pythonVersion = '3.9'", "3.10, 3.11, 3.12, 3.13"),
        ({"pythonVersion": "3.14"}, "mlscore:pythonVersion = '3.14'", "3.10, 3.11, 3.12, 3.13"),
        ({"pythonVersion": "3.12", "dependenciesFile": "{conda}"},
         "mlscore:pythonVersion, mlscore:dependenciesFile = '3.12'", "asks for python=3.10"),
    ],
)  # fmt: skip
def test_a_python_the_images_do_not_have_is_refused_naming_the_key(
    tmp_path: Path, config: dict[str, str], keys: str, words: str
) -> None:
    conda = _conda(tmp_path, "python=3.10")
    _, problems = _model(**{k: v.replace("{conda}", conda) for k, v in config.items()})
    (problem,) = problems
    assert problem.startswith(keys) and words in problem and "fix:" in problem


def test_pythonversion_picks_the_python_of_a_pip_requirements_file(tmp_path: Path) -> None:
    pip = tmp_path / "requirements.txt"
    pip.write_text("joblib>=1.4\n")
    model, problems = _model(dependenciesFile=str(pip), pythonVersion="3.13")
    assert problems == [] and model.python_version == "3.13" and model.resolution == "ok"
    assert _model()[0].python_version == "3.11"  # the sample: the default
    assert PYTHON_VERSIONS == ("3.10", "3.11", "3.12", "3.13")


def test_an_unreachable_index_says_the_check_was_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pulumi.log.warn prints to stderr only while no engine is set; after another test of this
    # worker ran the program under mocks it goes to that engine's log, so read the call itself
    warned: list[str] = []
    monkeypatch.setattr("pulumi.log.warn", lambda msg, *a, **k: warned.append(str(msg)))
    monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setattr("components.config.user_env.CACHE", tmp_path / "resolved")
    pip = tmp_path / "requirements.txt"
    pip.write_text("joblib>=1.4\n")
    model, problems = _model(dependenciesFile=str(pip))
    assert problems == [] and model.resolution.startswith("skipped: the package index is not")
    (err,) = warned
    assert "mlscore:dependenciesFile" in err and "the check was skipped" in err
