"""Retrain the corpus's models: the online samples' ``sklearn_regression_model.pkl`` is a
scikit-learn Ridge regression on the diabetes data set (10 features), which scikit-learn ships.
A pickle is tied to the scikit-learn that wrote it, so it is written here, by the one installed,
instead of being copied from its source."""

from __future__ import annotations

from pathlib import Path

import joblib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge


def train_ridge(path: Path) -> Path:
    x, y = load_diabetes(return_X_y=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(Ridge(alpha=1.0).fit(x, y), path)
    return path
