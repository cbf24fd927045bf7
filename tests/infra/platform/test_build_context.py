"""The build context the program assembles: one content hash over the host, the entry script's
folder, the dependencies and the model; the same inputs give the same tag, one changed byte a
new one; and the model settings are refused, naming the key, before anything is declared."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from components import PROJECT_ROOT
from components.config.reader import Reader
from components.platform.build_context import assemble, model_layout
from components.platform.settings import ModelSettings, read_model
from preview import engine

OWN = PROJECT_ROOT / "tests" / "models" / "iris_centroid"
SAMPLE_MODEL = PROJECT_ROOT / "aml" / "model" / "diabetes-ridge" / "1"


def _model(**config: str) -> tuple[ModelSettings, list[str]]:
    base, _ = engine.stack_config("dev")
    values = {**{k.split(":", 1)[1]: v for k, v in base.items() if k.startswith("mlscore:")}}
    values |= config
    r = Reader(values.get)
    model = read_model(r)
    return model, [str(p) for p in r.problems]


def _own(tmp_path: Path, deps: str = "requirements.txt") -> dict[str, str]:
    """A copy of the test model (so a byte can be changed) as config values."""
    copy = tmp_path / "iris"
    shutil.copytree(OWN, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return {
        "modelName": "iris-centroid",
        "modelPath": str(copy / "model"),
        "entryScript": str(copy / "code" / "score.py"),
        "dependenciesFile": str(copy / deps),
    }


def _tree(path: Path) -> dict[str, bytes]:
    return {f.relative_to(path).as_posix(): f.read_bytes() for f in path.rglob("*") if f.is_file()}


def test_same_inputs_same_context_and_tag(tmp_path: Path) -> None:
    model, problems = _model(**_own(tmp_path))
    assert problems == []
    first = assemble(model, root=tmp_path / "a")
    second = assemble(model, root=tmp_path / "b")
    assert first.digest == second.digest and first.tag == second.tag
    assert first.tag.startswith("iris-centroid-1-") and first.digest[:12] in first.tag
    assert _tree(first.path) == _tree(second.path)
    again = assemble(model, root=tmp_path / "a")  # reused, not rewritten
    assert again.path == first.path and again.digest == first.digest


def test_contexts_unused_for_a_day_go_whatever_the_process_clock_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ages are read off the file system's clock alone: a process whose clock runs a year ahead
    (a time-travel test run, a skewed host) must not prune contexts other runs are using."""
    model, _ = _model(**_own(tmp_path))
    root = tmp_path / "build"
    stale, recent = root / "scoring-0000000000000000", root / "scoring-1111111111111111"
    stale.mkdir(parents=True)
    # ten years old: whatever a faked clock (libfaketime shifts explicit utime times) does to it
    os.utime(stale, (stale.stat().st_mtime - 10 * 365 * 86400,) * 2)
    monkeypatch.setattr("time.time", lambda: 4_102_444_800.0)  # 2100-01-01
    kept = assemble(model, root=root)
    recent.mkdir()  # made just now, by the file system's clock
    assemble(model, root=root)
    assert sorted(p.name for p in root.iterdir()) == sorted([kept.path.name, recent.name])


@pytest.mark.parametrize(
    "changed", ["model/centroids.json", "code/centroid.py", "code/score.py", "requirements.txt"]
)
def test_one_changed_byte_anywhere_gives_a_new_tag(tmp_path: Path, changed: str) -> None:
    config = _own(tmp_path)
    model, _ = _model(**config)
    before = assemble(model, root=tmp_path / "ctx")
    path = tmp_path / "iris" / changed
    data = bytearray(path.read_bytes())
    i = next(i for i in range(3, len(data)) if chr(data[i]).isalpha())
    data[i] ^= 0x20  # one byte: the case of a letter (a comment's, a docstring's or a key's)
    path.write_bytes(bytes(data))
    after = assemble(_model(**config)[0], root=tmp_path / "ctx")
    assert after.digest != before.digest and after.tag != before.tag
    assert after.path != before.path and before.path.is_dir()


def test_the_context_holds_the_host_the_code_the_dependencies_and_the_model(
    tmp_path: Path,
) -> None:
    model, _ = _model(**_own(tmp_path))
    ctx = assemble(model, root=tmp_path / "ctx")
    files = _tree(ctx.path)
    assert files["Dockerfile"] == (PROJECT_ROOT / "scoring" / "Dockerfile").read_bytes()
    assert (
        files["scoring/requirements.txt"]
        == (PROJECT_ROOT / "scoring" / "requirements.txt").read_bytes()
    )
    assert "scoring/app.py" in files and not any("__pycache__" in f for f in files)
    assert "scoring/requirements-dev.txt" not in files
    assert {f for f in files if f.startswith("code/")} == {
        "code/score.py",
        "code/centroid.py",
    }
    assert files["model/model/centroids.json"] == (OWN / "model" / "centroids.json").read_bytes()
    assert b"scipy<2,>=1.11" in files["user-requirements.txt"]
    assert ctx.build_args["ENTRY_SCRIPT"] == "score.py"
    assert ctx.build_args["MODEL_NAME"] == "iris-centroid"
    assert [rel for rel, _ in ctx.model_files] == ["model/centroids.json"]
    fn = assemble(model, "functions", root=tmp_path / "ctx")
    assert (
        _tree(fn.path)["Dockerfile"]
        == (PROJECT_ROOT / "scoring" / "functions.Dockerfile").read_bytes()
    )
    assert fn.digest != ctx.digest


def test_model_layout_is_azure_mls_a_file_as_itself_a_folder_with_its_name() -> None:
    assert [rel for rel, _ in model_layout(SAMPLE_MODEL / "model.joblib")] == ["model.joblib"]
    assert [rel for rel, _ in model_layout(SAMPLE_MODEL)] == ["1/metadata.json", "1/model.joblib"]


def test_a_conda_file_gives_its_pip_section_and_the_conda_packages_pip_has(
    tmp_path: Path,
) -> None:
    model, problems = _model(**_own(tmp_path, "environment.yml"))
    assert problems == []
    assert model.requirements == ("scipy<2,>=1.11", "inference-schema<2,>=1.8")
    conda = tmp_path / "myenv.yml"
    conda.write_text(
        "dependencies:\n  - python=3.11\n  - conda-forge::numpy=1.26\n  - pytorch==2.3.1=py311_0"
        "\n  - pip\n  - pip:\n    - joblib>=1.4\n"
    )
    model, problems = _model(dependenciesFile=str(conda))
    assert problems == []
    assert model.requirements == ("numpy==1.26.*", "torch==2.3.1", "joblib>=1.4")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("dependencies:\n  - cudatoolkit=11.8\n  - scipy\n",
         "conda package 'cudatoolkit' has no pip"),
        ("dependencies:\n  - python=3.8\n", "the images run Python 3.11"),
        ("dependencies: [unclosed\n", "not valid YAML"),
        ("name: x\n", "needs a 'dependencies:' list"),
    ],
)  # fmt: skip
def test_a_conda_file_the_image_cannot_install_is_refused(
    tmp_path: Path, content: str, words: str
) -> None:
    conda = tmp_path / "myenv.yml"
    conda.write_text(content)
    _, problems = _model(dependenciesFile=str(conda))
    assert len(problems) == 1 and words in problems[0], problems
    assert problems[0].startswith("mlscore:dependenciesFile = ") and "fix:" in problems[0]


@pytest.mark.parametrize(
    ("files", "config", "key", "words"),
    [
        ({}, {"modelPath": "nope/model"}, "modelPath", "no such file or folder"),
        ({"empty/.keep": ""}, {"modelPath": "{tmp}/empty"}, "modelPath", "holds no file"),
        ({}, {"entryScript": "nope.py"}, "entryScript", "no such file"),
        ({"s.py": "def init():\n    pass\n"}, {"entryScript": "{tmp}/s.py"}, "entryScript",
         "missing: run"),
        ({"s.py": "def init(:\n"}, {"entryScript": "{tmp}/s.py"}, "entryScript",
         "not valid Python"),
        ({"r.txt": "azure-identity==1.7.0\n"}, {"dependenciesFile": "{tmp}/r.txt"},
         "dependenciesFile", "the scoring host needs azure-identity<2,>=1.19"),
        ({"r.txt": "numpy==1.21.0\n"}, {"dependenciesFile": "{tmp}/r.txt"}, "dependenciesFile",
         "r.txt line 1 ('numpy==1.21.0'): the image build"),
        ({"r.txt": "-r other.txt\n"}, {"dependenciesFile": "{tmp}/r.txt"}, "dependenciesFile",
         "pip option"),
        ({"r.txt": "not a requirement!\n"}, {"dependenciesFile": "{tmp}/r.txt"},
         "dependenciesFile", "is not a requirement"),
        ({}, {"dependenciesFile": "missing.txt"}, "dependenciesFile", "no such file"),
    ],
)  # fmt: skip
def test_bad_model_settings_are_refused_naming_the_key(
    tmp_path: Path, files: dict[str, str], config: dict[str, str], key: str, words: str
) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    _, problems = _model(**{k: v.replace("{tmp}", str(tmp_path)) for k, v in config.items()})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"mlscore:{key} = ") and words in problems[0], problems
    assert "fix:" in problems[0]


def test_unreadable_dependencies_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "r.txt"
    binary.write_bytes(b"\xff\xfe\x00numpy")
    _, problems = _model(dependenciesFile=str(binary))
    assert len(problems) == 1 and "unreadable" in problems[0], problems


def test_a_bad_model_config_stops_the_program_before_any_resource(run_stack) -> None:
    run = run_stack("dev", entryScript="scoring/sample_model/train.py")
    assert run.problems and not run.resources
    assert any("mlscore:entryScript" in str(p) and "init" in str(p) for p in run.problems)
