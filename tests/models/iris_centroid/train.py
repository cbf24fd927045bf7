"""Write the test model: the per-class mean of scikit-learn's bundled iris data set.

python tests/models/iris_centroid/train.py   # -> tests/models/iris_centroid/model/centroids.json
"""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.datasets import load_iris

OUT = Path(__file__).resolve().parent / "model" / "centroids.json"


def main() -> None:
    iris = load_iris()
    centroids = [
        [round(float(v), 4) for v in iris.data[iris.target == k].mean(axis=0)]
        for k in range(len(iris.target_names))
    ]
    doc = {"labels": [str(n) for n in iris.target_names], "centroids": centroids}
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(OUT)


if __name__ == "__main__":
    main()
