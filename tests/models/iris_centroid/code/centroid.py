"""Nearest-centroid classification with scipy (the test model's own dependency)."""

from __future__ import annotations

from dataclasses import dataclass

from scipy.spatial.distance import cdist


@dataclass(frozen=True)
class NearestCentroid:
    labels: list[str]
    centroids: list[list[float]]

    @classmethod
    def from_json(cls, doc: dict) -> NearestCentroid:
        return cls(list(doc["labels"]), [list(map(float, c)) for c in doc["centroids"]])

    def predict(self, rows: list[list[float]]) -> list[str]:
        if not rows:
            return []
        distances = cdist(rows, self.centroids)
        return [self.labels[int(i)] for i in distances.argmin(axis=1)]
