"""The local run is the image (issue 28 item 4): a venv of the image's Python resolved from the
files the Dockerfile installs, the image's file layout and environment, cached by digest.

The real example: Azure/azureml-examples' inference-schema online endpoint (tests/models/
azureml_examples, MIT): env.yml asks for python=3.10 and scikit-learn=1.2.2, and its iris.pkl
was pickled by scikit-learn 1.0.2. The host serves it on 3.10 with those libraries, none of the
dev venv's (scikit-learn 1.9 on 3.11) in sight.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _scoring_support import REPO, Host, free_port

from components.platform.build_context import BuildContext, assemble
from components.settings import load
from preview import engine
from scoring.localenv import LocalEnv, image_env, image_python

EXAMPLE = REPO / "tests" / "models" / "azureml_examples" / "inference-schema"
CONFIG = {
    "modelName": "azureml-infschema",
    "modelPath": str(EXAMPLE / "models"),
    "entryScript": str(EXAMPLE / "code" / "score-numpy.py"),
    "dependenciesFile": str(EXAMPLE / "env.yml"),
    # Python 3.10 is past its Azure Functions end of support (October 2026): the stack leaves the
    # function app out (components/targets/functions/settings/python.py refuses it otherwise)
    "functionsEnabled": "false",
}


def _context(root: Path, **config: str) -> BuildContext:
    stack, _ = engine.stack_config("dev", config)
    settings = load(lambda k: stack.get(f"mlscore:{k}"), project="mlscore", stack="dev")
    return assemble(settings.model, "scoring", root=root)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalEnv, Host, float]]:
    tmp = tmp_path_factory.mktemp("localenv")
    ctx = _context(tmp / "ctx", **CONFIG)
    assert ctx.build_args["PYTHON_VERSION"] == "3.10"  # env.yml's python=3.10
    started = time.monotonic()
    local = image_env(ctx, tmp / "image")
    took = time.monotonic() - started
    port = free_port()
    env = local.with_target({"AZUREML_SERVER_PORT": str(port)}) | {"SCORING_HOST": "127.0.0.1"}
    with open(tmp / "host.log", "wb") as log:
        proc = subprocess.Popen(
            [str(local.python), "-m", "scoring"],
            cwd=local.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    host = Host(proc, port, tmp / "host.log")
    try:
        host.wait_ready(120)
        yield local, host, took
    finally:
        host.stop()


def _in_env(local: LocalEnv, code: str) -> str:
    done = subprocess.run(
        [str(local.python), "-c", code],
        cwd=local.workdir,
        env=local.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_old_scikit_learn_pickle_is_served_on_the_python_its_conda_file_names(example) -> None:
    local, host, _ = example
    sample = json.loads((EXAMPLE / "sample-inputs" / "numpy.json").read_text())
    r = host.client.post("/score", json=sample)
    assert r.status_code == 200, host.log()
    assert r.json() == {"Category": ["Virginica", "Setosa"]}
    swagger = host.client.get("/swagger.json").json()
    assert swagger["definitions"]["ServiceInput"]["example"] == {"iris": [[7.2, 3.2, 6.0, 1.8]]}
    versions = _in_env(
        local,
        "import sys, numpy, sklearn; print('%d.%d' % sys.version_info[:2], sklearn.__version__, "
        "numpy.__version__.split('.')[0])",
    )
    # conda-forge's scikit-learn 1.2.2 carries numpy<2 (components/config/user_env.py)
    assert versions == "3.10 1.2.2 1"


def test_the_environment_is_the_images_and_nothing_of_the_dev_venv(example) -> None:
    local, _, _ = example
    assert local.python.parent.parent.name.startswith("localenv-3.10-")
    assert local.home == local.layout.local("/app") and local.env["HOME"] == str(local.home)
    assert local.user == "10001"  # scoring/Dockerfile: USER 10001, useradd --home-dir /app
    assert local.workdir == local.layout.local("/var/azureml-app")
    assert local.env["PATH"].split(":")[0] == str(local.python.parent)
    assert local.env["AZUREML_MODEL_DIR"] == str(
        local.layout.local("/var/azureml-app/azureml-models/azureml-infschema/1")
    )
    assert not {"VIRTUAL_ENV", "REDIS_URL", "PYTEST_CURRENT_TEST"} & set(local.env)
    paths = json.loads(_in_env(local, "import sys, json; print(json.dumps(sys.path))"))
    assert not any(".venv" in p or "mlscore/venv-" in p for p in paths), paths
    assert _in_env(local, "import importlib.util as u; print(u.find_spec('pulumi'))") == "None"


def test_the_second_run_reuses_the_environment(example, tmp_path: Path) -> None:
    local, _, first = example
    ctx = _context(tmp_path / "ctx", **CONFIG)
    started = time.monotonic()
    again = image_env(ctx, tmp_path / "image")
    cached = time.monotonic() - started
    assert again.python == local.python
    assert cached < 10, f"first {first:.1f} s, cached {cached:.1f} s"
    print(f"local env: first {first:.1f} s, cached {cached:.2f} s")


def test_a_python_the_machine_lacks_is_named_with_the_fix() -> None:
    with pytest.raises(SystemExit, match=r"Python 3\.99 .*pyenv install 3\.99"):
        image_python("3.99")


def test_the_venv_is_built_by_the_dockerfiles_own_install_step(tmp_path: Path) -> None:
    """The build stage's RUN line, its /tmp/req files mapped to the context files its COPY lines
    name: what docker build runs, minus --no-cache-dir (which changes no version)."""
    from scoring.localenv import _install_step

    ctx = _context(tmp_path / "ctx", **CONFIG)
    command, files = _install_step(ctx)
    assert files == [
        ctx.path / "scoring" / "requirements.txt",
        ctx.path / "scoring" / "requirements-batch.txt",  # Azure ML's batch runtime, when on
        ctx.path / "user-requirements.txt",
    ]
    host, batch, user = (str(f) for f in files)
    on = ctx.build_args["BATCH_RUNTIME"]  # "true": the dev stack has batch on
    assert " ".join(command.split()) == (
        f'set -- -r {host} && if [ "{on}" = true ]; then set -- "$@" -r {batch}; fi '
        f'&& pip install "$@" -r {user} && pip check'
    )
    assert "numpy<2" in (ctx.path / "user-requirements.txt").read_text()
