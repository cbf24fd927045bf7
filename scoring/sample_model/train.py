"""Train the sample model and write it in Azure ML's ``<name>/<version>`` model folder layout.

    python -m scoring.sample_model.train --out .local/model
    # -> .local/model/diabetes-ridge/1/model.joblib

Offline and deterministic: the diabetes data set ships inside scikit-learn.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MODEL_NAME = "diabetes-ridge"
MODEL_VERSION = "1"


def train(
    out_dir: Path, name: str = MODEL_NAME, version: str = MODEL_VERSION, alpha: float = 0.1
) -> Path:
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    model = Ridge(alpha=alpha).fit(x_train, y_train)
    target = Path(out_dir) / name / version
    target.mkdir(parents=True, exist_ok=True)
    path = target / "model.joblib"
    joblib.dump(model, path)
    (target / "metadata.json").write_text(
        json.dumps(
            {
                "name": name,
                "version": version,
                "algorithm": "Ridge",
                "alpha": alpha,
                "features": int(x.shape[1]),
                "r2_test": round(float(model.score(x_test, y_test)), 4),
            },
            indent=2,
        )
        + "\n"
    )
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".local/model", help="model root (AZUREML_MODEL_DIR)")
    parser.add_argument("--name", default=MODEL_NAME)
    parser.add_argument("--version", default=MODEL_VERSION)
    parser.add_argument("--alpha", type=float, default=0.1)
    args = parser.parse_args(argv)
    path = train(Path(args.out), args.name, args.version, args.alpha)
    print(path)


if __name__ == "__main__":
    main()
