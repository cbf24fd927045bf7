"""The build context of a scoring image, assembled by the program: deterministic, content-hashed.

One folder holds everything the image is built from, in this layout (the Dockerfiles COPY it):

    Dockerfile             scoring/Dockerfile or scoring/functions.Dockerfile
    scoring/               the scoring host (and its requirements*.txt)
    user-requirements.txt  the user's dependencies (mlscore:dependenciesFile) as pip requirements
    code/                  the entry script's folder (mlscore:entryScript) -> /var/azureml-app/code
    model/                 the model (mlscore:modelPath) in Azure ML's layout -> AZUREML_MODEL_DIR
    dependencies/          mlscore:dependenciesFile as written (in the digest; not copied in)

The digest is a SHA-256 over every file's path and bytes and the build arguments: the same
inputs give the same digest and tag; one changed byte anywhere gives a new one, a new image
digest, and the next ``pulumi up`` rolls it out. The folder is written once per digest under
``.local/build/`` (atomically), so a preview and a deploy of the same inputs share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from components import PROJECT_ROOT
from components.platform.settings import ModelSettings

SCORING_DIR = PROJECT_ROOT / "scoring"
BUILD_ROOT = PROJECT_ROOT / ".local" / "build"
DOCKERFILES = {"scoring": "Dockerfile", "functions": "functions.Dockerfile"}
CODE_DIR = "code"
MODEL_DIR = "model"
DEPENDENCIES_DIR = "dependencies"
USER_REQUIREMENTS = "user-requirements.txt"
# Not part of the host in the image (scoring/.dockerignore, the Dockerfiles themselves).
_HOST_SKIP = {"Dockerfile", "functions.Dockerfile", ".dockerignore", "requirements-dev.txt"}
_UNUSED_SECONDS = 24 * 3600  # an assembled context unused this long is removed


@dataclass(frozen=True)
class BuildContext:
    image: str  # "scoring" or "functions"
    path: Path  # the assembled folder
    digest: str  # sha256 hex of the files and build arguments
    build_args: Mapping[str, str] = field(default_factory=dict)
    # (path under AZUREML_MODEL_DIR, the file in the context): what Azure ML registers.
    model_files: tuple[tuple[str, Path], ...] = ()

    @property
    def dockerfile(self) -> Path:
        return self.path / "Dockerfile"

    @property
    def tag(self) -> str:
        return (
            f"{self.build_args['MODEL_NAME']}-{self.build_args['MODEL_VERSION']}-{self.digest[:12]}"
        )


def _files(root: Path, skip: Collection[str] = ()) -> list[tuple[str, Path]]:
    """Every file under ``root`` (posix relative path, file), sorted; hidden files, caches and
    ``skip`` names at the top level left out."""
    found = []
    for f in root.rglob("*"):
        rel = f.relative_to(root)
        if not f.is_file() or (len(rel.parts) == 1 and rel.name in skip):
            continue
        if any(p.startswith(".") or p == "__pycache__" for p in rel.parts) or f.suffix == ".pyc":
            continue
        found.append((rel.as_posix(), f))
    return sorted(found)


def model_layout(model_path: Path) -> list[tuple[str, Path]]:
    """The model's files as Azure ML lays them out under ``AZUREML_MODEL_DIR``: a file as
    ``<file>``, a folder as ``<folder>/<its files>`` (what registering that path gives)."""
    if model_path.is_file():
        return [(model_path.name, model_path)]
    return [(f"{model_path.name}/{rel}", f) for rel, f in _files(model_path)]


def requirements_text(model: ModelSettings) -> bytes:
    source = model.dependencies_file.name if model.dependencies_file else "none"
    lines = [f"# the entry script's dependencies (from {source})", *model.requirements]
    return ("\n".join(lines) + "\n").encode()


def layout(model: ModelSettings, image: str) -> dict[str, Path | bytes]:
    """Context path -> source file (or bytes) of one image's build context."""
    if model.path is None or model.entry_script is None:
        raise ValueError("the build context needs the validated modelPath and entryScript")
    entries: dict[str, Path | bytes] = {"Dockerfile": SCORING_DIR / DOCKERFILES[image]}
    entries |= {f"scoring/{rel}": f for rel, f in _files(SCORING_DIR, _HOST_SKIP)}
    entries[USER_REQUIREMENTS] = requirements_text(model)
    if model.dependencies_file is not None:  # as written: a changed comment is a new digest too
        entries[f"{DEPENDENCIES_DIR}/{model.dependencies_file.name}"] = model.dependencies_file
    entries |= {f"{CODE_DIR}/{rel}": f for rel, f in _files(model.entry_script.parent)}
    entries |= {f"{MODEL_DIR}/{rel}": f for rel, f in model_layout(model.path)}
    return entries


def shown(path: Path | None) -> str:
    """A config path as the user wrote it: relative to the project when inside it."""
    if path is None:
        return ""
    return (
        path.relative_to(PROJECT_ROOT).as_posix()
        if path.is_relative_to(PROJECT_ROOT)
        else str(path)
    )


def build_args(model: ModelSettings, image: str = "scoring") -> dict[str, str]:
    """The Dockerfiles' ARGs: the image's Python (the base stage of scoring/Dockerfile and of
    functions.Dockerfile), where the model and the script go, and (as image labels, shown in
    the preview) where they came from."""
    assert model.entry_script is not None
    return {
        "PYTHON_VERSION": model.python_version,
        "MODEL_NAME": model.name,
        "MODEL_VERSION": model.version,
        "ENTRY_SCRIPT": model.entry_script.name,
        "MODEL_SOURCE": shown(model.path),
        "ENTRY_SCRIPT_SOURCE": shown(model.entry_script),
        "DEPENDENCIES_SOURCE": shown(model.dependencies_file),
    }


def runtime_args(model: ModelSettings, image: str) -> dict[str, str]:
    """scoring/Dockerfile's BATCH_RUNTIME: "true" when the stack has an Azure ML batch deployment
    (mlscore:batchEnabled), which runs this image with Azure ML's batch runtime installed beside
    the host (scoring/requirements-batch.txt, in the same pip resolution). Not a build argument
    of the function image."""
    return {"BATCH_RUNTIME": str(model.batch_runtime).lower()} if image == "scoring" else {}


def digest_of(entries: Mapping[str, Path | bytes], args: Mapping[str, str]) -> str:
    h = hashlib.sha256(json.dumps(dict(sorted(args.items()))).encode())
    for rel in sorted(entries):
        src = entries[rel]
        data = src if isinstance(src, bytes) else src.read_bytes()
        h.update(f"\0{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def assemble(model: ModelSettings, image: str = "scoring", root: Path = BUILD_ROOT) -> BuildContext:
    """Assemble (or reuse) the build context of ``image`` for ``model`` under ``root``."""
    entries = layout(model, image)
    args = build_args(model, image) | runtime_args(model, image)
    digest = digest_of(entries, args)
    args["CONTEXT_DIGEST"] = digest  # a label of the image: which context it was built from
    target = root / f"{image}-{digest[:16]}"
    if (target / ".complete").is_file():
        _touch(target)  # in use: the most recent, so not pruned
    else:
        _write(entries, target)
    _prune(root, image, keep=target)
    files = tuple(
        (rel[len(MODEL_DIR) + 1 :], target / rel)
        for rel in sorted(entries)
        if rel.startswith(MODEL_DIR + "/")
    )
    return BuildContext(image, target, digest, args, files)


def _write(entries: Mapping[str, Path | bytes], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    for rel, src in entries.items():
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src if isinstance(src, bytes) else src.read_bytes())
        dest.chmod(0o644)
    (tmp / ".complete").write_text("")
    try:
        os.replace(tmp, target)
    except OSError:  # assembled meanwhile by another run: same digest, same bytes
        shutil.rmtree(tmp, ignore_errors=True)


def _touch(directory: Path) -> None:
    """Mark ``directory`` used now by the file system's clock: renaming an entry into it sets
    its modification time from the kernel. (``os.utime(directory)`` takes the process's clock
    where a library fakes it, as libfaketime does in ``make time-travel``; Docker copies only
    the context's named folders, so the marker never reaches an image.)"""
    fresh = directory / f".used.{os.getpid()}"
    fresh.write_bytes(b"")
    os.replace(fresh, directory / ".used")


def _prune(root: Path, image: str, keep: Path) -> None:
    """Contexts of ``image`` unused for a day are only disk. (Not fewer: a deploy running in
    another process reads its model files from its context while this one assembles.) "Now" is
    the modification time of ``keep``, just touched: the file system's clock on both sides of
    the comparison, whatever the process's clock says (a skewed or faked one would prune the
    contexts other runs are using)."""
    now = keep.stat().st_mtime
    for p in root.glob(f"{image}-*"):
        if p.is_dir() and p != keep and now - p.stat().st_mtime > _UNUSED_SECONDS:
            shutil.rmtree(p, ignore_errors=True)
