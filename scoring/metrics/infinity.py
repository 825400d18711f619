"""FID∞ and IS∞: the value a score would take at N = ∞, by a straight-line fit against 1/N.

Chong & Forsyth, "Effectively Unbiased FID and Inception Score and Where to Find Them", CVPR 2020; reference
code mchong6/FID_IS_infinity, ``score_infinity.py`` (``calculate_FID_infinity``, ``calculate_IS_infinity``).
Both FID and IS are biased in N, and the bias is ≈ linear in 1/N with a model-dependent slope, so values at
different N rank models inconsistently. As the reference:

* sizes: ``np.linspace(N_total / 10, N_total, 15).astype(int)`` (the reference: linspace(5000, 50000, 15) of
  50,000 images — the same proportions, scaled to the samples given; at least 2 rows, duplicates dropped);
* at each size a fresh seeded permutation of the rows, the first ``size`` of them (the reference reshuffles
  with ``np.random.shuffle`` before each point);
* an ordinary least-squares line value = intercept + slope / N (the reference's ``LinearRegression``); the
  intercept is the N = ∞ value.

IS at each size is isgame's classic IS with one split (the reference's ``calculate_inception_score`` with
``num_splits=1``); FID is isgame's FID against the full reference statistics. The reference draws its images
from a Sobol sequence; here the samples are given, so only the sub-sampling is random.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.feature_arrays import as_feature_array, check_same_width
from isgame.scoring.metrics.fid import FeatureStatistics, features_to_statistics, statistics_to_fid, symmetric_root
from isgame.scoring.results import FieldsAsDict

POINTS = 15
SMALLEST_FRACTION = 0.1


@dataclass(frozen=True)
class ExtrapolationResult(FieldsAsDict):
    """``value_at_infinity`` (the intercept), the fitted ``slope`` (per 1/N), and the (N, value) points fitted."""

    value_at_infinity: float
    slope: float
    sizes: tuple[int, ...]
    values: tuple[float, ...]
    score: str
    seed: int

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "sizes": list(self.sizes), "values": list(self.values),
                "fit": "least squares of value = value_at_infinity + slope / N (Chong & Forsyth 2020)"}


def default_sizes(n: int, *, points: int = POINTS, smallest: int = 2) -> tuple[int, ...]:
    """The reference's evaluation points scaled to ``n`` rows: linspace(n/10, n, points) as int, >= ``smallest``."""
    sizes = np.linspace(n * SMALLEST_FRACTION, n, points).astype(np.int64)
    return tuple(int(s) for s in np.unique(np.maximum(sizes, smallest)))


def fit_against_inverse_n(sizes: object, values: object) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line value = intercept + slope / N over >= 2 distinct sizes."""
    n = np.asarray(sizes, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if n.ndim != 1 or n.shape != y.shape or np.unique(n).size < 2 or (n <= 0).any():
        raise InvalidInputError(f"the fit needs >= 2 distinct positive sizes with one value each, got sizes {n.tolist()}")
    design = np.column_stack([np.ones_like(n), 1.0 / n])
    (intercept, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(intercept), float(slope)


def _sizes_for(n: int, sizes: tuple[int, ...] | None, smallest: int) -> tuple[int, ...]:
    chosen = default_sizes(n, smallest=smallest) if sizes is None else tuple(int(s) for s in sizes)
    if len(set(chosen)) < 2 or min(chosen) < smallest or max(chosen) > n:
        raise InvalidInputError(f"{parameter('sizes')} must hold >= 2 distinct sizes in [{smallest}, {n}] (the rows "
                                f"given), got {list(chosen)}")
    return chosen


def extrapolate(rows: int, statistic, sizes, smallest: int, score: str, seed: int) -> ExtrapolationResult:
    """The fit of ``statistic(subset rows)`` of ``rows`` rows at each of ``sizes`` (None: :func:`default_sizes`),
    a fresh seeded permutation's first rows at each, against 1/N."""
    chosen = _sizes_for(rows, sizes, smallest)
    rng = np.random.default_rng(seed)
    values = tuple(float(statistic(rng.permutation(rows)[:size])) for size in chosen)
    intercept, slope = fit_against_inverse_n(chosen, values)
    return ExtrapolationResult(value_at_infinity=intercept, slope=slope, sizes=chosen, values=values, score=score,
                               seed=seed)


def with_covariance_root(reference: FeatureStatistics) -> FeatureStatistics:
    """``reference`` with root rows R (R^T R = its covariance), computed once (the symmetric root by eigh) unless it
    has them: every FID at every point then takes the exact root-rows route without another D x D eigh."""
    if reference.root_rows is not None:
        return reference
    return replace(reference, root_rows=symmetric_root(reference.covariance))


def fid_infinity(real: object, fake: object, *, sizes: tuple[int, ...] | None = None,
                 seed: int = 0) -> ExtrapolationResult:
    """FID∞ of fake (N, D) features against real (M, D) features or their :class:`FeatureStatistics`.

    Each point is FID(real, a seeded random subset of ``size`` fake rows); ``sizes`` default
    :func:`default_sizes` of N. FID is in squared feature units; FID∞ can be slightly negative (extrapolation).
    """
    reference = real if isinstance(real, FeatureStatistics) else features_to_statistics(
        as_feature_array(real, name="real"), name="real")
    pool = as_feature_array(fake, name="fake")
    check_same_width(np.empty((1, reference.mean.shape[0])), pool, ("real", "fake"))
    reference = with_covariance_root(reference)
    return extrapolate(pool.shape[0], lambda rows: statistics_to_fid(reference, features_to_statistics(pool[rows])),
                        sizes, 2, "fid", seed)


def is_infinity(values: object, *, kind: str = "logits", sizes: tuple[int, ...] | None = None,
                seed: int = 0) -> ExtrapolationResult:
    """IS∞ of (N, K) logits or probabilities (``kind``): classic one-split IS of seeded subsets, fitted in 1/N.

    IS is in [1, K] at each point; IS∞ is the intercept and may leave that range slightly.
    """
    import torch

    from isgame.scoring.metrics.inception_score import inception_score
    from isgame.scoring.metrics.validation import prediction_shape

    n, _ = prediction_shape(values, kind=kind)
    array = values.detach().cpu() if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    return extrapolate(n, lambda rows: inception_score(array[torch.from_numpy(rows)], kind=kind, splits=1,
                                                        track_stderr=False).is_mean, sizes, 1, "inception score", seed)
