"""Vendi score: the effective number of distinct samples, exp of the entropy of the eigenvalues of K/n.

Friedman & Dieng, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning", TMLR 2023;
reference code ``vendi_score/vendi.py`` of the ``vendi-score`` package 0.0.3 (``score_K``, ``score_dual``,
``entropy_q``). For a positive semi-definite similarity matrix K (n, n) with k(x, x) = 1, the eigenvalues
λ_i of K/n are non-negative and sum to 1, and

    VS_q = exp(H_q(λ)),  H_1 = -Σ λ_i log λ_i (Shannon, q = 1, the paper's default),
                         H_q = log(Σ λ_i^q) / (1 - q) otherwise (Rényi; the package's ``score_K(q=...)``).

VS lies in [1, n]: 1 when all samples are identical, n when they are mutually dissimilar. The paper's check:
samples [0, 0, 10, 10, 20, 20] with k(a, b) = exp(-|a - b|) give 2.99999… (three distinct values).

On features this module uses the cosine kernel k(x, y) = x·y / (|x| |y|), the normalised linear kernel the
paper and the package (``score_X`` / ``score_dual`` with ``normalize=True``) use for embeddings. Its
nonzero eigenvalues equal those of the (D, D) matrix X̂ᵀX̂ / n (X̂: unit rows), so the score costs O(n D²)
rather than O(n³) — the package's ``score_dual``.

The package itself is not called at run time: its ``score_K`` reads ``scipy.sparse.csr``, a namespace SciPy
deprecates (warns today, removed in SciPy 2.0), and ``score_X`` drops its ``q``. The tests check this
module against the package where it is installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.feature_arrays import as_feature_array
from isgame.scoring.results import FieldsAsDict

#: the paper's default order: Shannon entropy
VENDI_ORDER = 1.0
COSINE_KERNEL = "cosine (normalised linear): k(x, y) = x.y / (|x| |y|)"


@dataclass(frozen=True)
class VendiResult(FieldsAsDict):
    """``vendi`` in [1, n]: the effective number of distinct samples; ``q`` the entropy order."""

    vendi: float
    q: float
    n: int
    kernel: str = COSINE_KERNEL

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "range": f"[1, {self.n}]; higher is more diverse"}


def order_entropy(probabilities: np.ndarray, q: float = VENDI_ORDER) -> float:
    """Rényi entropy of order ``q`` (nats) of a probability vector; q = 1 is Shannon, q = inf the min-entropy.

    Zero (and round-off negative) eigenvalues are dropped, as ``vendi_score.entropy_q`` does.
    """
    p = probabilities[probabilities > 0]
    if q == 1:
        return float(-(p * np.log(p)).sum())
    if math.isinf(q):
        return float(-np.log(p.max()))
    return float(np.log((p ** q).sum()) / (1 - q))


def _check_order(q: float) -> None:
    if not q >= 0:
        raise InvalidInputError(f"{parameter('q')} must be >= 0 (1 = Shannon, the paper's default), got {q}")


def vendi_score_of_kernel(kernel: object, *, q: float = VENDI_ORDER) -> float:
    """VS_q of an (n, n) symmetric PSD similarity matrix with ones on the diagonal; in [1, n]."""
    _check_order(q)
    matrix = np.asarray(kernel, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise InvalidInputError(f"expected a square (n, n) similarity matrix, got shape {matrix.shape}")
    if not np.allclose(np.diag(matrix), 1.0, atol=1e-6):
        raise InvalidInputError("the similarity matrix needs k(x, x) = 1 on its diagonal; normalise it first")
    eigenvalues = scipy.linalg.eigvalsh(matrix / matrix.shape[0])
    return math.exp(order_entropy(eigenvalues, q))


def vendi_score(features: object, *, q: float = VENDI_ORDER) -> VendiResult:
    """Vendi score of (N, D) features under the cosine kernel, by the (D, D) dual when D < N.

    Args:
        features: (N, D) float array, N >= 1; no row may be all zeros (its direction is undefined).
        q: entropy order, >= 0; 1 (Shannon) as in the paper.

    Returns:
        A :class:`VendiResult`; ``vendi`` in [1, N] (also <= D for this kernel: the rank of K is at most D).
    """
    _check_order(q)
    array = as_feature_array(features, name="features", min_rows=1)
    norms = np.linalg.norm(array, axis=1)
    if (norms == 0).any():
        raise InvalidInputError(f"features: row {int(np.argmax(norms == 0))} is all zeros, so the cosine kernel is "
                                "undefined; drop zero rows")
    unit = array / norms[:, None]
    n, dim = unit.shape
    # K/n and X̂ᵀX̂/n share their nonzero eigenvalues; take the smaller matrix
    gram = unit.T @ unit if dim < n else unit @ unit.T
    eigenvalues = scipy.linalg.eigvalsh(gram / n)
    return VendiResult(vendi=math.exp(order_entropy(eigenvalues, q)), q=float(q), n=n)
