"""The corpus: public Azure ML entry scripts written by others, each with its model (retrained
here: the pickles they load are not redistributable), its own sample request and the answer the
model gives to it when called directly.

Every script is used unchanged: read from its source at test time (``sources.py``), or, for the
v1 samples of Azure/MachineLearningNotebooks (``Model.get_model_path``, ``azureml-defaults``),
vendored with their environment, source and licence in ``v1/`` (``v1/SOURCE.md``). ``refused``
names what the program refuses before deploy (the published ``python=3.6.2``); ``fails`` what
an example cannot do on any current Python stack (e.g. ``from sklearn.externals import
joblib``, removed in scikit-learn 0.23): the corpus records how the program reports both.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from tests.corpus import sources
from tests.corpus.sources import AZURE_AI_ML, ROOT

# The request of the online samples (azureml-examples cli/endpoints/online/model-1/
# sample-request.json) and of the seeds: two rows of the diabetes data's 10 features.
ROWS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]
JSON_REQUEST = json.dumps({"data": ROWS}).encode()
BINARY_REQUEST = bytes(range(256)) + b"\x00\xff binary payload"
TEXT_REQUEST = b"The quick brown fox jumps over the lazy dog"  # reversed, still text


@dataclass(frozen=True)
class Model:
    """Where a script finds its model under ``AZUREML_MODEL_DIR``: ``folder/file`` when the
    model was registered as a folder, ``file`` when registered as one file."""

    folder: str | None
    file: str
    trainer: str = "train_ridge"  # the function of tests/corpus/train.py that writes it

    def write(self, root: Path) -> tuple[Path, Path]:
        """Train it into ``root``: (the modelPath to configure, the pickle)."""
        from tests.corpus import train

        model_path = root / self.folder if self.folder else root / self.file
        pickle = root / self.folder / self.file if self.folder else model_path
        getattr(train, self.trainer)(pickle)
        return model_path, pickle


@dataclass(frozen=True)
class Shipped:
    """A model that comes with its example (kept in this repository by another test suite):
    ``path`` is the modelPath to configure, ``pickle`` the file to call directly."""

    path: Path
    pickle: Path

    def write(self, root: Path) -> tuple[Path, Path]:
        return self.path, self.pickle


@dataclass(frozen=True)
class Example:
    name: str
    shape: str  # what kind of entry script it is
    source: str  # where it is, as the table shows it
    url: str  # its page upstream
    licence: str
    script: Callable[[], tuple[str, str]]  # (file name, text)
    model: Model | Shipped
    request: bytes | Callable[[], bytes]  # the example's own sample request
    content_type: str
    # (the pickle, the image's python) -> the answer the model gives when called directly
    direct: Callable[[Path, Path], Any]
    fails: str = ""  # the local run fails, its log saying this
    dependencies: Path | None = None  # its dependenciesFile; None: the stack's
    # The name the model is registered under (modelName): the one a v1 script asks
    # Model.get_model_path for; "" for corpus-<name>.
    model_name: str = ""
    refused: str = ""  # the program refuses the stack before deploy, saying this

    @property
    def raw(self) -> bool:
        return self.content_type != "application/json"

    @property
    def registered(self) -> str:
        return self.model_name or f"corpus-{self.name}"

    def body(self) -> bytes:
        return self.request if isinstance(self.request, bytes) else self.request()


def ridge_predict(pickle: Path, python: Path) -> Any:
    return joblib.load(pickle).predict(np.array(ROWS)).tolist()


IRIS_ROWS = [[7.2, 3.2, 6.0, 1.8], [4.2, 3.5, 1.0, 3.0]]  # the sample inputs' two flowers
IRIS_CATEGORIES = ["Setosa", "Versicolor", "Virginica"]  # the example's category_list


def iris_categories(pickle: Path, python: Path) -> Any:
    """The pipeline's own predict_proba, argmax to the example's category names, in the image's
    Python (the pickle is scikit-learn 1.0.2's: the dev venv's scikit-learn is not its)."""
    code = (
        "import joblib, json, sys; m = joblib.load(sys.argv[1]); "
        "print(json.dumps(m.predict_proba(json.loads(sys.argv[2])).argmax(axis=1).tolist()))"
    )
    done = subprocess.run(
        [str(python), "-c", code, str(pickle), json.dumps(IRIS_ROWS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {"Category": [IRIS_CATEGORIES[i] for i in json.loads(done.stdout)]}


def _sdist_file(path: str) -> Callable[[], tuple[str, str]]:
    def read() -> tuple[str, str]:
        file = sources.sdist_root(AZURE_AI_ML) / path
        return file.name, file.read_text()

    return read


def _seed(name: str, *markers: str, exclude: str = "") -> Callable[[], tuple[str, str]]:
    return lambda: ("score.py", sources.seed_script(name, *markers, exclude=exclude).code)


def _aiml(name: str, shape: str, path: str, model: Model, direct: Any, fails: str = "") -> Example:
    return Example(
        name=name,
        shape=shape,
        source=f"azure-ai-ml {AZURE_AI_ML.version} (PyPI) {path}",
        url=AZURE_AI_ML.upstream(path),
        licence=AZURE_AI_ML.licence,
        script=_sdist_file(path),
        model=model,
        request=JSON_REQUEST,
        content_type="application/json",
        direct=direct,
        fails=fails,
    )


DEPLOYMENTS = "tests/test_configs/deployments"
# Azure/azureml-examples' inference-schema online example, kept (with its licence and source)
# in tests/models/azureml_examples by the user's environment tests: scripts, model, env.yml
# (python=3.10, scikit-learn=1.2.2) and the example's own sample inputs.
INFSCHEMA = ROOT / "tests" / "models" / "azureml_examples" / "inference-schema"
INFSCHEMA_UPSTREAM = (
    "https://github.com/Azure/azureml-examples/blob/085cd6ea399038c1e07843acff811f34261c0887/"
    "cli/endpoints/online/managed/inference-schema"
)


def _infschema(kind: str, parameter_type: str) -> Example:
    script = INFSCHEMA / "code" / f"score-{kind}.py"
    return Example(
        name=f"infschema-{kind}",
        shape=f"inference-schema {parameter_type}, python 3.10, scikit-learn 1.2.2",
        source=f"Azure/azureml-examples@085cd6e inference-schema/code/score-{kind}.py",
        url=f"{INFSCHEMA_UPSTREAM}/code/score-{kind}.py",
        licence="MIT",
        script=lambda: (script.name, script.read_text()),
        model=Shipped(INFSCHEMA / "models", INFSCHEMA / "models" / "iris.pkl"),
        request=(INFSCHEMA / "sample-inputs" / f"{kind}.json").read_bytes(),
        content_type="application/json",
        direct=iris_categories,
        dependencies=INFSCHEMA / "env.yml",
    )


FOLDER_PKL = Model("model", "sklearn_regression_model.pkl")
SEED_DEPLOY = "001_3f886972c8942c20.txt"  # how-to-deploy-and-where (ru-ru), v1 SDK
SEED_DOCS = "https://learn.microsoft.com/azure/machine-learning/v1/how-to-deploy-and-where"
SKLEARN_EXTERNALS = "cannot import name 'joblib' from 'sklearn.externals'"

EXAMPLES: tuple[Example, ...] = (
    _infschema("numpy", "NumpyParameterType"),
    _infschema("pandas", "PandasParameterType"),
    _infschema("standard", "StandardPythonParameterType"),
    _aiml(
        "online-model-1",
        "v2 online sample: run(raw_data) json.loads, model folder",
        f"{DEPLOYMENTS}/model-1/onlinescoring/score.py",
        FOLDER_PKL,
        ridge_predict,
    ),
    _aiml(
        "online-model-4",
        "v2 online sample: errors returned as text, model.pkl",
        f"{DEPLOYMENTS}/model-4/onlinescoring/cloud_score.py",
        Model("model", "model.pkl"),
        ridge_predict,
    ),
    _aiml(
        "endpoint-do-nothing",
        "typed run(raw_data: list) -> list, no model",
        f"{DEPLOYMENTS}/endpoint_scoring/do_nothing.py",
        FOLDER_PKL,
        lambda _p, _py: [{"result": "Hello World"}],
    ),
    _aiml(
        "online-model-3",
        "v1-era sample: from sklearn.externals import joblib",
        f"{DEPLOYMENTS}/model-3/score.py",
        Model(None, "sklearn_regression_model.pkl"),
        ridge_predict,
        fails=SKLEARN_EXTERNALS,
    ),
    Example(
        name="seed-rawhttp-binary",
        shape="@rawhttp AMLRequest/AMLResponse, binary in and out",
        source=f"seed {SEED_DEPLOY} (Microsoft docs, v1 how-to-deploy-and-where)",
        url=f"{SEED_DOCS}#binary-data",
        licence="CC-BY-4.0 (docs) / MIT (code)",
        script=_seed(SEED_DEPLOY, "@rawhttp"),
        model=FOLDER_PKL,
        request=BINARY_REQUEST,
        content_type="application/octet-stream",
        direct=lambda _p, _py: BINARY_REQUEST[::-1],  # "returns the reversed bytes for POST"
    ),
    Example(
        name="seed-rawhttp-text",
        shape="@rawhttp AMLRequest/AMLResponse, text in and out",
        source=f"seed {SEED_DEPLOY} (Microsoft docs, v1 how-to-deploy-and-where)",
        url=f"{SEED_DOCS}#binary-data",
        licence="CC-BY-4.0 (docs) / MIT (code)",
        script=_seed(SEED_DEPLOY, "@rawhttp"),
        model=FOLDER_PKL,
        request=TEXT_REQUEST,
        content_type="text/plain; charset=utf-8",
        direct=lambda _p, _py: TEXT_REQUEST[::-1],
    ),
    Example(
        name="seed-v1-schema-numpy",
        shape="v1: inference-schema NumpyParameterType, Model.get_model_path",
        source=f"seed {SEED_DEPLOY} (Microsoft docs, v1 how-to-deploy-and-where)",
        url=f"{SEED_DOCS}#example-entry-script",
        licence="CC-BY-4.0 (docs) / MIT (code)",
        script=_seed(SEED_DEPLOY, "Model.get_model_path", "NumpyParameterType"),
        model=Model(None, "sklearn_mnist_model.pkl"),
        request=JSON_REQUEST,
        content_type="application/json",
        direct=ridge_predict,
        fails=SKLEARN_EXTERNALS,
    ),
    Example(
        name="seed-v1-get-model-path",
        shape="v1: Model.get_model_path, azureml-defaults, sklearn.externals",
        source=f"seed {SEED_DEPLOY} (Microsoft docs, v1 how-to-deploy-and-where)",
        url=f"{SEED_DOCS}#define-an-entry-script",
        licence="CC-BY-4.0 (docs) / MIT (code)",
        script=_seed(SEED_DEPLOY, "Model.get_model_path", exclude="input_schema"),
        model=Model(None, "sklearn_mnist_model.pkl"),
        request=JSON_REQUEST,
        content_type="application/json",
        direct=ridge_predict,
        fails=SKLEARN_EXTERNALS,
    ),
)

# --- v1 samples of Azure/MachineLearningNotebooks (MIT): Model.get_model_path, azureml-defaults --
# Vendored unchanged in tests/corpus/v1 (SOURCE.md: repository, commits, paths, licence).
V1 = Path(__file__).resolve().parent / "v1"
MLN = "https://github.com/Azure/MachineLearningNotebooks/blob"
DEPLOY_TO_CLOUD = "a1cb9b33a54d6af61699981edfb71a5a85f8d4af"  # 1.0.60 SDK release, 2019-09-03
TRAIN_IN_NOTEBOOK = "6c629f1eda513fd6df4f65dc437e28d89cf5fa41"  # Release-57, 2020-07-06
# The environment a user writes for them today: deploy-to-cloud's myenv.yml without python=3.6.2.
TODAY = V1 / "today" / "myenv.yml"


def _vendored(folder: str) -> Callable[[], tuple[str, str]]:
    script = V1 / folder / "score.py"
    return lambda: (script.name, script.read_text())


def _deploy_to_cloud(name: str, shape: str, dependencies: Path, **expected: str) -> Example:
    """deploy-to-cloud: registered as model_name="sklearn_regression_model.pkl" (one file), its
    notebook's two rows as the request."""
    path = "how-to-use-azureml/deployment/deploy-to-cloud/score.py"
    return Example(
        name=name,
        shape=shape,
        source=f"Azure/MachineLearningNotebooks@{DEPLOY_TO_CLOUD[:7]} {path}",
        url=f"{MLN}/{DEPLOY_TO_CLOUD}/{path}",
        licence="MIT",
        script=_vendored("deploy-to-cloud"),
        model=Model(None, "sklearn_regression_model.pkl"),
        request=JSON_REQUEST,
        content_type="application/json",
        direct=ridge_predict,
        dependencies=dependencies,
        model_name="sklearn_regression_model.pkl",
        **expected,
    )


def _notebook_request() -> bytes:
    from tests.corpus.train import notebook_sample

    return json.dumps({"data": notebook_sample()}).encode()


def notebook_predict(pickle: Path, python: Path) -> Any:
    from tests.corpus.train import notebook_sample

    return joblib.load(pickle).predict(np.array(notebook_sample())).tolist()


TRAIN_IN_NOTEBOOK_PATH = "how-to-use-azureml/training/train-within-notebook/score.py"

V1_EXAMPLES: tuple[Example, ...] = (
    # As published: python=3.6.2, which no image runs; refused before any resource.
    _deploy_to_cloud(
        "v1-deploy-to-cloud",
        "v1: Model.get_model_path, azureml-defaults, python=3.6.2, sklearn.externals",
        V1 / "deploy-to-cloud" / "myenv.yml",
        refused="python=3.6.2 (myenv.yml line 3)",
    ),
    # The same script in today's environment: deployed, then its import of sklearn.externals
    # fails before init() asks Model.get_model_path.
    _deploy_to_cloud(
        "v1-deploy-to-cloud-today",
        "v1: Model.get_model_path, azureml-defaults (today), sklearn.externals",
        TODAY,
        fails=SKLEARN_EXTERNALS,
    ),
    Example(
        name="v1-train-within-notebook-today",
        shape="v1: Model.get_model_path(model_name='best_model'), azureml-defaults (today)",
        source=f"Azure/MachineLearningNotebooks@{TRAIN_IN_NOTEBOOK[:7]} {TRAIN_IN_NOTEBOOK_PATH}",
        url=f"{MLN}/{TRAIN_IN_NOTEBOOK}/{TRAIN_IN_NOTEBOOK_PATH}",
        licence="MIT",
        script=_vendored("train-within-notebook"),
        model=Model(None, "model.pkl", trainer="train_best_ridge"),  # outputs/model.pkl
        request=_notebook_request,
        content_type="application/json",
        direct=notebook_predict,
        dependencies=TODAY,
        model_name="best_model",
    ),
)

EXAMPLES += V1_EXAMPLES
