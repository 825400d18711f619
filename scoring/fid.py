"""Fréchet Inception Distance on classifier features, as a ladder of pure functions.

features (N, D) -> statistics (mean (D,), covariance (D, D), float64) -> distance.
FID = ||mu_1 - mu_2||^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^{1/2}).
The trace of the matrix square root takes the eigenvalue route in float64:
with A = S_1^{1/2} (from ``eigh``), S_1 S_2 is similar to the symmetric PSD A S_2 A, so
tr((S_1 S_2)^{1/2}) = sum sqrt(eigvalsh(A S_2 A)), negative round-off clipped to 0.
Covariances use ddof 1, as torch-fidelity and torchmetrics do.

Caveat: FID is biased upward for finite N (two samples of the same distribution do not score 0);
compare FIDs only at equal N, or see :func:`fid_sample_size_curve`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.streaming import StreamingMetric


@dataclass(frozen=True)
class FeatureStatistics:
    """Mean (D,) and covariance (D, D), float64, of N feature vectors."""

    mean: np.ndarray
    covariance: np.ndarray
    n: int


def _as_features(features: object, name: str) -> np.ndarray:
    array = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise InvalidInputError(f"{name}: expected features of shape (N, D) with N >= 2, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{name}: features contain NaN or inf")
    return array


def features_to_statistics(features: object, *, name: str = "features") -> FeatureStatistics:
    """Mean and covariance (ddof 1) of (N, D) features, in float64."""
    array = _as_features(features, name)
    return FeatureStatistics(mean=array.mean(axis=0), covariance=np.cov(array, rowvar=False, ddof=1).reshape(
        array.shape[1], array.shape[1]), n=array.shape[0])


def trace_sqrt_product(covariance_1: np.ndarray, covariance_2: np.ndarray) -> float:
    """tr((S_1 S_2)^{1/2}) for PSD S_1, S_2 (D, D), by the symmetric eigenvalue route."""
    values, vectors = np.linalg.eigh(covariance_1)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root @ covariance_2 @ root
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())


def statistics_to_fid(first: FeatureStatistics, second: FeatureStatistics) -> float:
    """FID between two sets of statistics; >= 0 (round-off clipped)."""
    if first.mean.shape != second.mean.shape:
        raise InvalidInputError(f"feature dimensions differ: {first.mean.shape[0]} vs {second.mean.shape[0]}")
    difference = first.mean - second.mean
    value = difference @ difference + np.trace(first.covariance) + np.trace(second.covariance) - 2 * trace_sqrt_product(
        first.covariance, second.covariance)
    return float(max(value, 0.0))


def frechet_distance(features_1: object, features_2: object) -> float:
    """FID between two (N, D) feature sets."""
    return statistics_to_fid(features_to_statistics(features_1, name="first"), features_to_statistics(features_2, name="second"))


class FeatureStatisticsAccumulator(StreamingMetric):
    """Streaming statistics of one feature set: float64 sum (D,), sum of outer products (D, D) and count.

    Memory O(D^2), flat in N; accumulators on several processes combine with a sum.
    ``compute()`` returns the :class:`FeatureStatistics`, the ladder's middle rung.
    """

    higher_is_better = False  # the statistics feed FID, where lower is better

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise InvalidInputError(f"feature dimension must be >= 1, got {dim}")
        self.dim = dim
        self.reset()

    def reset(self) -> None:
        self.total = np.zeros(self.dim)
        self.outer = np.zeros((self.dim, self.dim))
        self.count = 0

    def update(self, features: object) -> None:
        """Add (B, D) features (tensor or array)."""
        array = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
        if array.ndim != 2 or array.shape[1] != self.dim or not np.isfinite(array).all():
            raise InvalidInputError(f"expected finite features of shape (B, {self.dim}), got shape {array.shape}")
        self.total += array.sum(axis=0)
        self.outer += array.T @ array
        self.count += array.shape[0]

    def all_reduce(self) -> None:
        """Sum the statistics over every torchrun process (in place); a no-op in a single process."""
        from isgame.scoring.distributed import all_reduce_sum_

        tensors = [torch.from_numpy(self.total), torch.from_numpy(self.outer), torch.tensor([self.count], dtype=torch.float64)]
        for tensor in tensors:
            all_reduce_sum_(tensor)
        self.total, self.outer, self.count = tensors[0].numpy(), tensors[1].numpy(), int(tensors[2].item())

    def compute(self) -> FeatureStatistics:
        if self.count < 2:
            raise InvalidInputError("need at least two feature vectors")
        mean = self.total / self.count
        covariance = (self.outer - self.count * np.outer(mean, mean)) / (self.count - 1)
        return FeatureStatistics(mean=mean, covariance=covariance, n=self.count)


class FrechetDistanceAccumulator(StreamingMetric):
    """Streaming FID between real and generated features, as torchmetrics' ``update(x, real=...)``.

    ``update(features, real=True)`` adds (B, D) real features, ``real=False`` generated ones;
    ``compute()`` returns the FID (>= 0, lower is better). Give ``reference`` (the real set's
    :class:`FeatureStatistics`) to compare every evaluation with the same real statistics;
    ``reset()`` then keeps them and forgets only the generated rows.
    """

    higher_is_better = False

    def __init__(self, dim: int, *, reference: FeatureStatistics | None = None) -> None:
        if reference is not None and reference.mean.shape != (dim,):
            raise InvalidInputError(f"reference statistics have D = {reference.mean.shape[0]}, expected {dim}")
        self.reference = reference
        self.real = FeatureStatisticsAccumulator(dim)
        self.fake = FeatureStatisticsAccumulator(dim)

    def update(self, features: object, *, real: bool = False) -> None:
        """Add (B, D) features of real images (``real=True``) or generated ones."""
        if real and self.reference is not None:
            raise InvalidInputError("reference statistics were given; add only generated features (real=False)")
        (self.real if real else self.fake).update(features)

    def reset(self) -> None:
        self.real.reset()
        self.fake.reset()

    def all_reduce(self) -> None:
        self.real.all_reduce()
        self.fake.all_reduce()

    def compute(self) -> float:
        real = self.reference if self.reference is not None else self.real.compute()
        return statistics_to_fid(real, self.fake.compute())


def fid_sample_size_curve(reference: object, pool: object, sizes: tuple[int, ...], *, seed: int = 0) -> list[float]:
    """FID against ``reference`` of a seeded random subset of ``pool`` of each size.

    With ``pool`` drawn from the reference's distribution the true FID is 0, so the curve is
    FID's finite-N bias.
    """
    pool_array = _as_features(pool, "pool")
    reference_statistics = features_to_statistics(reference, name="reference")
    rng = np.random.default_rng(seed)
    return [statistics_to_fid(reference_statistics, features_to_statistics(pool_array[rng.choice(len(pool_array), size,
                                                                                                  replace=False)]))
            for size in sizes]
