"""RBF-kernel MMD², the statistic CMMD computes, with a bandwidth set by the reference set's own scale.

Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image Generation", CVPR 2024;
reference code google-research/google-research ``cmmd/distance.py`` (``mmd``). CMMD uses the Gaussian RBF
kernel k(x, y) = exp(-|x - y|² / (2σ²)) with σ = 10 on CLIP embeddings and multiplies MMD² by 1000 for
readability. σ = 10 only suits CLIP's scale, so here σ follows the features:

    bandwidth rule: σ = the median Euclidean distance between distinct rows of the REFERENCE set
    (the median heuristic; Gretton et al., JMLR 2012), unless ``bandwidth`` is given.

Two estimators from the same kernel matrices (X: m reference rows, Y: n candidate rows):

* ``mmd2`` (unbiased U-statistic, Gretton et al. 2012 Eq. 3): mean of k over x_i ≠ x_j pairs + the same for
  Y − 2 · mean k(x_i, y_j). Zero in expectation for equal distributions; can be slightly negative.
* ``mmd2_biased`` (the V-statistic, including the diagonal: what ``cmmd/distance.py`` computes); >= 0.

Both are dimensionless (k ∈ (0, 1]); ``mmd2_x1000`` is ``mmd2`` on CMMD's ×1000 scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.feature_arrays import as_feature_array, check_same_width
from isgame.scoring.results import FieldsAsDict

CMMD_SCALE = 1000.0
BANDWIDTH_RULE = "median Euclidean distance between distinct reference rows (median heuristic)"


@dataclass(frozen=True)
class RbfMmdResult(FieldsAsDict):
    """Unbiased and biased MMD² (dimensionless) under exp(-|x-y|²/(2σ²)); σ = ``bandwidth`` in feature units."""

    mmd2: float
    mmd2_biased: float
    mmd2_x1000: float
    bandwidth: float
    bandwidth_rule: str

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "kernel": "exp(-|x - y|^2 / (2 bandwidth^2))",
                "scale_note": "mmd2_x1000 = 1000 * mmd2, CMMD's scale; CMMD's own estimator is mmd2_biased"}


def squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|x_i - y_j|² of (m, d) and (n, d) float64 arrays, shape (m, n), round-off clipped at 0."""
    values = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.maximum(values, 0.0)


def median_heuristic(reference: np.ndarray) -> float:
    """The median Euclidean distance over pairs i < j of the (m, d) reference rows; > 0."""
    return _median_distance(squared_distances(reference, reference))


def _median_distance(squared: np.ndarray) -> float:
    upper = np.triu_indices(squared.shape[0], k=1)
    median = float(np.sqrt(np.median(squared[upper])))
    if not median > 0:
        raise InvalidInputError("the reference features are mostly identical rows, so the median distance is 0; "
                                f"pass a positive {parameter('bandwidth')}")
    return median


def _kernel_means(squared: np.ndarray, gamma: float) -> tuple[float, float]:
    """(mean of k over all entries, mean over off-diagonal entries) of a square matrix of squared distances."""
    kernel = np.exp(-gamma * squared)
    total, trace, m = kernel.sum(), np.trace(kernel), kernel.shape[0]
    return float(total / m**2), float((total - trace) / (m * (m - 1)))


def rbf_mmd(real: object, fake: object, *, bandwidth: float | None = None) -> RbfMmdResult:
    """MMD² between reference (M, D) and candidate (N, D) features under a Gaussian RBF kernel.

    Args:
        real: reference features, M >= 2 (the bandwidth comes from them).
        fake: candidate features, N >= 2, same D.
        bandwidth: σ in feature units; None: the median heuristic on ``real``.
    """
    x, y = as_feature_array(real, name="real"), as_feature_array(fake, name="fake")
    check_same_width(x, y, ("real", "fake"))
    if bandwidth is not None and not bandwidth > 0:
        raise InvalidInputError(f"{parameter('bandwidth')} must be > 0, got {bandwidth}")
    d_xx = squared_distances(x, x)
    sigma = float(bandwidth) if bandwidth is not None else _median_distance(d_xx)
    gamma = 1.0 / (2.0 * sigma**2)
    biased_xx, unbiased_xx = _kernel_means(d_xx, gamma)
    biased_yy, unbiased_yy = _kernel_means(squared_distances(y, y), gamma)
    cross = float(np.exp(-gamma * squared_distances(x, y)).mean())
    unbiased = unbiased_xx + unbiased_yy - 2 * cross
    return RbfMmdResult(mmd2=unbiased, mmd2_biased=biased_xx + biased_yy - 2 * cross,
                        mmd2_x1000=CMMD_SCALE * unbiased, bandwidth=sigma,
                        bandwidth_rule="given" if bandwidth is not None else BANDWIDTH_RULE)
