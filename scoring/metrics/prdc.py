"""Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

On features: ``real`` (N, d) and ``fake`` (M, d). The k-NN radius of a point is the distance to
its k-th nearest neighbour within its own set (itself excluded).

* precision: fraction of fake points inside some real ball (real radii, k = 3);
* recall: fraction of real points inside some fake ball (fake radii, k = 3);
* density: (1 / (k M)) sum over fake points of the number of real balls containing them (k = 5);
* coverage: fraction of real points whose ball contains at least one fake point (k = 5).

Inside means strictly closer than the radius (<), as in the ``prdc`` package of Naeem et al. The two
k are the papers' own: k = 3 is Kynkäänniemi et al.'s for precision and recall, k = 5 Naeem et al.'s for
density and coverage; the ``prdc`` package computes all four with one ``nearest_k`` (5 in its README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.results import FieldsAsDict


def knn_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row of (N, d) ``points`` to its k-th nearest other row; shape (N,)."""
    if points.shape[0] <= k:
        raise InvalidInputError(f"need more than k = {k} points for k-NN radii, got {points.shape[0]}")
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return distances[:, k]


@dataclass(frozen=True)
class PrecisionRecallResult(FieldsAsDict):
    precision: float
    recall: float
    density: float
    coverage: float


def _inside_counts(centres: np.ndarray, radii: np.ndarray, queries: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """For each query, the number of balls (centres, radii) that contain it; shape (M,)."""
    counts = np.zeros(queries.shape[0], dtype=np.int64)
    for start in range(0, queries.shape[0], chunk):
        distances = pairwise_distances(queries[start : start + chunk], centres)
        counts[start : start + chunk] = (distances < radii[None, :]).sum(axis=1)
    return counts


def _covered(centres: np.ndarray, radii: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """For each ball, whether any query lies inside it; shape (N,)."""
    nearest, _ = NearestNeighbors(n_neighbors=1).fit(queries).kneighbors(centres)
    return nearest[:, 0] < radii


def precision_recall_density_coverage(real: np.ndarray, fake: np.ndarray, *, k_precision_recall: int = 3,
                                      k_density_coverage: int = 5) -> PrecisionRecallResult:
    """All four manifold metrics of ``fake`` against ``real``; each in [0, 1] except density (>= 0)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise InvalidInputError(f"expected (N, d) and (M, d) features, got {real.shape} and {fake.shape}")
    real_radii = knn_radii(real, k_precision_recall)
    fake_radii = knn_radii(fake, k_precision_recall)
    precision = float((_inside_counts(real, real_radii, fake) > 0).mean())
    recall = float((_inside_counts(fake, fake_radii, real) > 0).mean())
    dc_radii = knn_radii(real, k_density_coverage)
    density = float(_inside_counts(real, dc_radii, fake).sum() / (k_density_coverage * fake.shape[0]))
    coverage = float(_covered(real, dc_radii, fake).mean())
    return PrecisionRecallResult(precision=precision, recall=recall, density=density, coverage=coverage)
