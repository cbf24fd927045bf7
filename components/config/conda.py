"""Conda's side of the user's environment file: package names and version specs as pip reads
them (components/config/user_env.py reads the file)."""

from __future__ import annotations

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

# Conda packages whose PyPI name differs.
CONDA_TO_PIP = {
    "pytorch": "torch",
    "py-xgboost": "xgboost",
    "msgpack-python": "msgpack",
    "matplotlib-base": "matplotlib",
    "py-opencv": "opencv-python",
    "pytables": "tables",
    "pillow-simd": "pillow",
}
# Conda packages with no pip equivalent (system libraries, CUDA, compilers, conda itself).
CONDA_ONLY = frozenset(
    {
        "cudatoolkit", "cudnn", "nccl", "pytorch-cuda", "cuda-toolkit", "cuda-nvcc", "mkl",
        "mkl-include", "blas", "libblas", "libcblas", "liblapack", "openblas", "libopenblas",
        "libgcc", "libgcc-ng", "libstdcxx-ng", "libgfortran-ng", "_libgcc_mutex",
        "_openmp_mutex", "openssl", "ca-certificates", "libffi", "zlib", "readline", "tk",
        "xz", "sqlite", "ncurses", "ld_impl_linux-64", "gcc", "gxx", "gfortran", "make",
        "conda", "nomkl", "ffmpeg", "r-base", "graphviz", "libxgboost",
    }
)  # fmt: skip
IGNORED_CONDA = frozenset({"pip", "setuptools", "wheel"})
# The first release of each built against numpy 2 (numpy/numpy#26191, "Ecosystem compatibility
# with numpy 2.0"; https://scikit-learn.org/stable/whats_new/v1.4.html#version-1-4-2,
# https://pandas.pydata.org/docs/whatsnew/v2.2.2.html). conda-forge's builds of the older ones
# carry numpy<2 (scikit-learn/scikit-learn#27075: "modify existing conda-forge packages to
# include a numpy<2 constraint"); their PyPI wheels say numpy>=1.x, so pip would pair them with
# numpy 2 and the import fails. A conda line pinning one of them brings conda's numpy<2 along.
NUMPY2_FROM = {"scikit-learn": "1.4.2", "scipy": "1.13.0", "pandas": "2.2.2", "matplotlib": "3.8.4"}


def split_conda_spec(spec: str) -> tuple[str, str]:
    """``numpy=1.26`` -> (numpy, =1.26); ``numpy 1.26.4 py311_0`` -> (numpy, 1.26.4)."""
    parts = spec.split()
    if len(parts) > 1:
        return parts[0], parts[1]
    for i, ch in enumerate(spec):
        if ch in "=<>!~":
            return spec[:i], spec[i:]
    return spec, ""


def conda_version(version: str) -> str:
    """A conda version spec as pip's: ``=1.5`` (fuzzy) -> ``==1.5.*``; ``==1.26.4=py311h_0`` ->
    ``==1.26.4`` (the build string is conda's); ``1.26.*`` -> ``==1.26.*``; others as written."""
    if not version:
        return ""
    if version.startswith("=") and not version.startswith("=="):
        base = version[1:].split("=")[0]
        return f"=={base}" if base.endswith("*") else f"=={base}.*"
    if version.startswith("=="):
        return "==" + version[2:].split("=")[0]
    if version[0].isdigit():
        return f"=={version}"
    return version


def python_spec(version: str) -> SpecifierSet | None:
    """A conda ``python`` version (``=3.10``, ``3.10.4``, ``>=3.9``) as a specifier; None if
    unreadable."""
    try:
        return Requirement("python" + conda_version(version)).specifier
    except InvalidRequirement:
        return None
