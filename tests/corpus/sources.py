"""Where the corpus's entry scripts come from: public material written by others, read at test
time (the v1 samples of Azure/MachineLearningNotebooks are vendored in ``v1/`` instead, with
their source and licence: that repository is not on PyPI).

* ``azure-ai-ml`` 1.35.2 on PyPI (MIT, Microsoft; its sdist ships the SDK's own test
  configurations, ``tests/test_configs/deployments/*``: the online deployment samples the SDK is
  tested with). ``pip download`` fetches the sdist once per machine into
  ``~/.cache/mlscore/corpus/`` (like the venvs: a fresh clone, CI's, does not download it again);
  its sha256 is pinned, so every run reads the same bytes.
* The seeds: Microsoft's Azure ML documentation the project was given (``shared/seeds/``, beside
  the project's folder, as on every machine and in CI). Their Python code blocks are the entry
  scripts the documentation tells a user to write (``%%writefile score.py`` cells, as Jupyter
  writes them).
* Azure/azureml-examples' inference-schema online example (MIT), which the user's environment
  tests keep in ``tests/models/azureml_examples/`` with its licence and source (``SOURCE.md``):
  its three scripts (numpy, pandas, standard), model, ``env.yml`` and sample inputs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".local" / "corpus"  # this clone's corpus table
SDISTS = Path.home() / ".cache" / "mlscore" / "corpus"  # the downloads, shared by the clones
SEEDS = ROOT.parent / "shared" / "seeds"


@dataclass(frozen=True)
class Sdist:
    """A source distribution on PyPI, pinned by version and sha256."""

    name: str
    version: str
    sha256: str
    licence: str
    repository: str  # where its files live upstream
    package_dir: str  # the package's folder in that repository

    @property
    def url(self) -> str:
        return f"https://pypi.org/project/{self.name}/{self.version}/"

    def upstream(self, path: str) -> str:
        return f"{self.repository}/blob/main/{self.package_dir}/{path}"


AZURE_AI_ML = Sdist(
    name="azure-ai-ml",
    version="1.35.2",
    sha256="fdb0b51755b70819628792f198e9895af82c9efb4721d731eb7e6119f4c8ff1d",
    licence="MIT",
    repository="https://github.com/Azure/azure-sdk-for-python",
    package_dir="sdk/ml/azure-ai-ml",
)


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """One process at a time (pytest-xdist workers and other clones' runs share SDISTS)."""
    SDISTS.mkdir(parents=True, exist_ok=True)
    with open(SDISTS / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sdist_root(sdist: Sdist) -> Path:
    """The unpacked sdist (downloaded with pip once, its sha256 checked)."""
    root = SDISTS / f"{sdist.name}-{sdist.version}"
    with _locked(sdist.name):
        if (root / ".complete").is_file():
            return root
        with tempfile.TemporaryDirectory(dir=SDISTS) as tmp:
            cmd = [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", "--disable-pip-version-check",
                f"{sdist.name}=={sdist.version}", "-d", tmp,
            ]  # fmt: skip
            subprocess.run(cmd, check=True, timeout=300)
            (archive,) = Path(tmp).glob("*.tar.gz")
            digest = hashlib.sha256(archive.read_bytes()).hexdigest()
            if digest != sdist.sha256:
                raise AssertionError(f"{archive.name}: sha256 {digest}, pinned {sdist.sha256}")
            unpacked = Path(tmp) / "unpacked"
            with tarfile.open(archive) as tar:
                tar.extractall(unpacked, filter="data")
            (top,) = unpacked.iterdir()
            (top / ".complete").write_text(digest)
            shutil.rmtree(root, ignore_errors=True)
            os.replace(top, root)
    return root


# --- the seeds -----------------------------------------------------------------------------------
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class SeedBlock:
    seed: str  # file name under shared/seeds
    title: str  # the document's title (front matter)
    index: int  # the n-th Python block of the document
    code: str  # as Jupyter writes it: a leading %%writefile line is the cell magic, not code


def seed_blocks(name: str) -> list[SeedBlock]:
    """The Python code blocks of one seed document, in order."""
    text = (SEEDS / name).read_text(encoding="utf-8")
    title = re.search(r"^title:\s*(.+)$", text, re.M)
    out = []
    for i, m in enumerate(_BLOCK.finditer(text)):
        code = re.sub(r"\A%%writefile [^\n]*\n", "", m.group(1))
        out.append(SeedBlock(name, title.group(1).strip() if title else name, i, code))
    return out


def seed_script(name: str, *markers: str, exclude: str = "") -> SeedBlock:
    """The one Python block of seed ``name`` that defines ``init``/``run``, has every marker and
    not ``exclude``."""
    found = [
        b
        for b in seed_blocks(name)
        if "def init" in b.code
        and "def run" in b.code
        and all(m in b.code for m in markers)
        and not (exclude and exclude in b.code)
    ]
    if len(found) != 1:
        raise AssertionError(f"{name}: {len(found)} entry scripts with {markers}, expected one")
    return found[0]
