"""The scoring host's contract tests on the images' other Pythons (``make contract``, part of
``make test``): the full suite runs on the dev venv's Python (3.11); scoring/Dockerfile also
offers 3.10, 3.12 and 3.13, and the host must run unchanged there.

For each of them found on this machine (``scoring.localenv.image_python``: pyenv, PATH), a venv
of that Python with the host's requirements and the test tools only (nothing of the dev venv),
cached under ``~/.cache/mlscore/contract-<python>-<hash>`` like ``.venv``; the contract tests run
in the three at once. A Python the machine lacks is said, never hidden, and fails the run.

    python tests/scoring/contract.py [3.10 3.12 3.13]
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scoring.localenv import CACHE, image_python  # noqa: E402

PYTHONS = ("3.10", "3.12", "3.13")
# The Azure ML entry-script contract: inference-schema's conversions (in process), and the host
# serving a plain run(), @rawhttp (Werkzeug and Flask) and a streamed body (a process each).
TESTS = ("tests/scoring/test_entry_schema.py", "tests/scoring/test_compat.py",
         "-k", "not test_compat or rawhttp or plain_run or generator")  # fmt: skip
# The sample model the tests train (tests/scoring/conftest.py model_dir) and the test tools;
# scikit-learn unpinned: the sample's own pin (1.9.1) has no wheel for 3.10.
EXTRA = ("scikit-learn", "joblib", "pytest>=8,<10", "pytest-timeout>=2.3,<3", "httpx>=0.27,<1")


def venv(version: str) -> Path:
    host = (REPO / "scoring" / "requirements.txt").read_bytes()
    digest = hashlib.sha256(host + "\0".join(EXTRA).encode()).hexdigest()[:16]
    root = CACHE / f"contract-{version}-{digest}"
    if not (root / ".installed").is_file():
        print(f"building {root}", flush=True)
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([str(image_python(version)), "-m", "venv", str(root)], check=True)
        pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", str(REPO / "scoring" / "requirements.txt"), *EXTRA], check=True)
        (root / ".installed").write_text("")
    return root / "bin" / "python"


def main(versions: list[str]) -> int:
    started = time.monotonic()
    runs = {}
    for version in versions:
        python = venv(version)
        cmd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--confcutdir=tests/scoring", "-o", "addopts=", *TESTS]  # fmt: skip
        runs[version] = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    failed = []
    for version, proc in runs.items():
        out, _ = proc.communicate()
        tail = out.strip().splitlines()[-1] if out.strip() else ""
        if proc.returncode != 0:
            failed.append(version)
            print(out)
        print(f"contract tests on Python {version}: {tail}", flush=True)
    print(f"contract tests: {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(PYTHONS)))
