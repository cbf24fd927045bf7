"""Retrain the corpus's models: the online samples' ``sklearn_regression_model.pkl`` is a
scikit-learn Ridge regression on the diabetes data set (10 features), which scikit-learn ships.
A pickle is tied to the scikit-learn that wrote it, so it is written here, by the one installed,
instead of being copied from its source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split


def train_ridge(path: Path) -> Path:
    x, y = load_diabetes(return_X_y=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(Ridge(alpha=1.0).fit(x, y), path)
    return path


# MachineLearningNotebooks' train-within-notebook (tests/corpus/v1/SOURCE.md): its split, its
# sweep of alpha, the run with the lowest test MSE registered as best_model, and the first test
# row as the sample request.
def _notebook_split() -> list[Any]:
    """(X_train, X_test, y_train, y_test), as the notebook splits them."""
    x, y = load_diabetes(return_X_y=True)
    return train_test_split(x, y, test_size=0.2, random_state=0)


def train_best_ridge(path: Path) -> Path:
    x_train, x_test, y_train, y_test = _notebook_split()
    models = [Ridge(alpha=a).fit(x_train, y_train) for a in np.arange(0.0, 1.0, 0.05)]
    best = min(models, key=lambda m: mean_squared_error(y_test, m.predict(x_test)))
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(best, path)
    return path


def notebook_sample() -> list[list[float]]:
    """``X_test[0:1, :].tolist()``: the notebook's test sample."""
    return _notebook_split()[1][0:1, :].tolist()
