"""The robustness matrix's columns: every metric, its family, its direction, and how it is bootstrapped.

A metric column is measured on one game's outputs (:class:`GameOutputs`: images, pixels, and the logits and
features of each classifier) against the :class:`MatrixContext` built once per matrix (the reference features
and statistics, training pixels, C_T's held-out half, the auxiliary classifiers). Each measurement is a
:class:`Measurement`: the value, exactly as the metric's own function computes it, and either a ``draw`` (the
metric recomputed on a resample of the game's rows, for the bootstrap of
:mod:`isgame.probes.matrix.significance`) or an analytic standard error (C_T is a z statistic: 1).

Draws reuse what does not change between resamples: the k-NN metrics resample per-row indicators of one
distance matrix (recall keeps each generated row's k-NN radius from the full set; with duplicates a resample
would otherwise give radius 0), KID's draw is the full-set unbiased MMD^2 from one kernel matrix (its value is
the subset estimate, as ``isgame metrics`` reports it), and FLD's draw reweights the mixture it fitted once (:func:`measure_fld`).

Families, in the order the heatmap shows them: classifier scores, feature distances (through a classifier),
k-NN manifold metrics, diversity, and pixel-space metrics that no classifier can be attacked through.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from sklearn.metrics import pairwise_distances

from isgame.probes.matrix.samples import AuxiliaryScorer, GameOutputs, held_out_halves
from isgame.scoring.metrics.registry import (  # noqa: F401  (FAMILIES and QUALITY: this module's names too)
    COLUMN_SOURCES,
    COLUMNS,
    FAMILIES,
    METRICS as REGISTERED_METRICS,
    QUALITY,
    ColumnList,
    ColumnView,
    MatrixMetric,
    MetricInputs,
    plugin_columns,
)
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.copy_detectors import (
    CT_GENERATED_PER_CELL,
    authentic_flags,
    ct_cells,
    data_copying_test,
    flatten_images,
    leave_one_out_nearest_distances,
)
from isgame.scoring.metrics.fid import (
    FeatureStatistics,
    clip_round_off,
    clipped_eigenvalues,
    features_to_statistics,
    statistics_to_fid,
    symmetric_root,
)
from isgame.scoring.metrics.fld import (
    FldNormalisation,
    component_log_likelihoods,
    fit_mixture,
    fld_baseline_nll,
    generated_rows,
    mixture_nll,
)
from isgame.scoring.metrics.fld import squared_distances as fld_squared_distances
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.metrics.kid import kernel_inception_distance, polynomial_kernel
from isgame.scoring.metrics.prdc import knn_radii, precision_recall_density_coverage

KID_SUBSETS = 50
SLICED_PROJECTIONS = 200
SLICED_ORDER = 2
SLICED_DRAW_PROJECTIONS = 50
#: the RBF bandwidth is the median pairwise distance of at most this many reference rows (seeded beyond)
RBF_MEDIAN_ROWS = 2000
#: the k of precision/recall (Kynkäänniemi et al.'s default) and of density/coverage (Naeem et al.'s)
PRDC_K, DC_K = 3, 5


@dataclass(frozen=True)
class Measurement:
    """A metric's value on a game, and how its uncertainty is had: ``draw(rows)`` recomputes it on the sorted
    resampled row numbers (n,), or ``stderr`` is analytic."""

    value: float
    draw: Callable[[np.ndarray], float] | None = None
    stderr: float | None = None


@dataclass
class MatrixContext:
    """What every game is measured against, computed once: ``reference_features`` (N_ref, D) for KID and the k-NN
    metrics and ``reference_statistics`` for FID (the training images' features, or a stats file's subset and
    moments), the training pixels (N_train, P), C_T's held-out half (pixels), the auxiliary scorers, and FLD's
    train and test features (the training images' and C_T's held-out half's)."""

    seed: int
    splits: int
    kid_subset_size: int
    ct_cells: int
    reference_features: np.ndarray
    reference_statistics: FeatureStatistics
    train_pixels: np.ndarray
    ct_held_out_pixels: np.ndarray
    auxiliary: dict[str, AuxiliaryScorer] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    train_images: torch.Tensor | None = field(default=None, repr=False)
    #: FLD's train set (N_train, D): the main classifier's features of the training images, even beside a stats file
    fld_train: np.ndarray | None = field(default=None, repr=False)
    #: FLD's test set (T, D): the main classifier's features of C_T's held-out half
    fld_test: np.ndarray | None = field(default=None, repr=False)
    _fld_baselines: dict[int, float] = field(default_factory=dict, repr=False)
    _rooted_auxiliary: dict[str, FeatureStatistics] = field(default_factory=dict, repr=False)

    @cached_property
    def fld_normalised(self) -> tuple[FldNormalisation, np.ndarray, np.ndarray]:
        """FLD's normalisation by the test set, and the train (N_train, D') and test (T, D') features it gives,
        computed once (exactly as :func:`~isgame.scoring.metrics.fld.feature_likelihood_divergence` computes them)."""
        normalise = FldNormalisation.of(self.fld_test)
        return normalise, normalise(self.fld_train), normalise(self.fld_test)

    def fld_baseline(self, size: int) -> float:
        """FLD's baseline NLL for ``size`` mixture centres (:func:`~isgame.scoring.metrics.fld.fld_baseline_nll`): it depends
        on train, test, size and seed alone, so it is fitted once per size (n for the games, the second held-out
        half's size for the reference row), not once per game."""
        if size not in self._fld_baselines:
            _, train, test = self.fld_normalised
            self._fld_baselines[size] = fld_baseline_nll(train, test, size=size, seed=self.seed)
        return self._fld_baselines[size]

    def rooted_auxiliary_statistics(self, role: str) -> FeatureStatistics:
        """An auxiliary classifier's training statistics with their covariance root, computed once per role."""
        from isgame.scoring.metrics.infinity import with_covariance_root

        if role not in self._rooted_auxiliary:
            self._rooted_auxiliary[role] = with_covariance_root(self.auxiliary[role].train_statistics)
        return self._rooted_auxiliary[role]

    @cached_property
    def rooted_reference_statistics(self) -> FeatureStatistics:
        """The FID reference with its covariance root, computed once for the many FIDs of FID∞."""
        from isgame.scoring.metrics.infinity import with_covariance_root

        return with_covariance_root(self.reference_statistics)

    @cached_property
    def precision_radii(self) -> np.ndarray:
        return knn_radii(self.reference_features, PRDC_K)

    @cached_property
    def coverage_radii(self) -> np.ndarray:
        return knn_radii(self.reference_features, DC_K)

    @cached_property
    def reference_kernel_within(self) -> float:
        """The reference's own term of the full-set unbiased MMD^2 (cubic polynomial kernel), in row blocks so that a
        10,000-row stats subset never holds its whole kernel matrix."""
        rows = self.reference_features
        total = sum(polynomial_kernel(block, rows).sum() for block in _blocks(rows))
        diagonal = sum(np.diag(polynomial_kernel(block, block)).sum() for block in _blocks(rows))
        m = rows.shape[0]
        return float((total - diagonal) / (m * (m - 1)))

    @cached_property
    def train_pixel_own_distances(self) -> np.ndarray:
        return leave_one_out_nearest_distances(self.train_pixels)

    @cached_property
    def rbf_reference(self) -> tuple[float, float]:
        """The RBF kernel's bandwidth (median heuristic on the reference) and the reference's unbiased own term."""
        from isgame.scoring.metrics.rbf_mmd import median_heuristic, squared_distances

        rows = self.reference_features
        # The median of all pairwise distances up to RBF_MEDIAN_ROWS reference rows (every digit); beyond, of a
        # seeded subsample of that many, so that a 10,000-row stats subset does not need 10^8 distances at once.
        sample = rows if rows.shape[0] <= RBF_MEDIAN_ROWS else rows[np.sort(
            np.random.default_rng(self.seed).choice(rows.shape[0], RBF_MEDIAN_ROWS, replace=False))]
        sigma = median_heuristic(sample)
        gamma, m = 1.0 / (2.0 * sigma**2), rows.shape[0]
        total = sum(np.exp(-gamma * squared_distances(block, rows)).sum() for block in _blocks(rows))
        return sigma, float((total - m) / (m * (m - 1)))  # the diagonal is exp(0) = 1 per row

    @cached_property
    def sliced_reference(self) -> tuple[np.ndarray, np.ndarray]:
        """POT's seeded projection directions (D, P) and the reference projected on them (N_ref, P)."""
        import ot

        directions = ot.sliced.get_random_projections(self.reference_features.shape[1], SLICED_PROJECTIONS,
                                                      seed=self.seed)
        return directions, self.reference_features @ directions

    @cached_property
    def wavelet_reference(self) -> list[FeatureStatistics]:
        """Per Haar packet, the statistics of the training images' coefficients (images pooled to <= 32 px)."""
        from isgame.scoring.metrics.wavelet_fd import packet_features

        packets = packet_features(self.wavelet_images(self.train_images))
        return [features_to_statistics(packets[:, p]) for p in range(packets.shape[1])]

    @cached_property
    def wavelet_reference_roots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The packets' reference means (P, F), covariance traces (P,) and symmetric covariance roots (P, F, F),
        for the wavelet distance's draws."""
        statistics = self.wavelet_reference
        return (np.stack([packet.mean for packet in statistics]),
                np.array([np.trace(packet.covariance) for packet in statistics]),
                np.stack([symmetric_root(packet.covariance) for packet in statistics]))

    @staticmethod
    def wavelet_images(images: torch.Tensor) -> np.ndarray:
        """(N, C, H, W) images pooled as the wavelet distance takes them (:func:`pooled_images`), float64."""
        from isgame.scoring.metrics.wavelet_fd import pooled_images

        return pooled_images(images.float()).double().numpy()


Measure = Callable[[MatrixContext, GameOutputs], dict[str, Measurement]]


def _blocks(rows: np.ndarray, size: int = 1024) -> list[np.ndarray]:
    """(N, D) rows in consecutive blocks of at most ``size`` rows (kernel sums without an N x N matrix)."""
    return [rows[start:start + size] for start in range(0, rows.shape[0], size)]


def _rows(values, rows: np.ndarray):
    return values[torch.from_numpy(rows)] if isinstance(values, torch.Tensor) else values[rows]


def class_probabilities(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """p(y|x) (n, K) and the negative entropy sum_k p log p (n,) of (n, K) logits, float64: what every IS of a
    subset of the rows reads."""
    log_p = torch.log_softmax(logits.double(), dim=1)
    p = log_p.exp()
    return p.numpy(), (p * log_p).sum(dim=1).numpy()


def split_scores(probabilities: np.ndarray, neg_entropy: np.ndarray, rows: np.ndarray, splits: int) -> tuple[float, float]:
    """(IS over ``splits`` contiguous splits, exp(I)) of the ``rows`` (sorted) of (n, K) ``probabilities``.

    Per split, mean_i KL(p_i || p_split) = mean_i a_i - sum_k m_k log m_k with a_i = sum_k p_ik log p_ik and m the
    split's marginal (0 log 0 = 0): the value :func:`~isgame.scoring.metrics.inception_score.inception_score` gives
    (split i holding positions i*N//s .. (i+1)*N//s - 1), without its input checks, for the many draws of a cell."""
    from isgame.scoring.metrics.accumulator import split_bounds

    p, a = probabilities[rows], neg_entropy[rows]

    def information(part: slice) -> float:
        marginal = p[part].mean(axis=0)
        positive = marginal[marginal > 0]
        return float(a[part].mean() - positive @ np.log(positive))

    bounds = split_bounds(rows.shape[0], splits)
    split_is = [math.exp(information(slice(lo, hi))) for lo, hi in zip(bounds[:-1], bounds[1:])]
    return float(np.mean(split_is)), math.exp(information(slice(None)))


def measure_inception_scores(role: str, names: tuple[str, str] | tuple[str]) -> Measure:
    """IS (and exp(I) when two names are given) of the ``role`` classifier's logits, over contiguous splits; the
    draws score subsets of the rows from their class probabilities, computed once."""
    def measure(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
        logits = game.outputs[role][0]
        full = inception_score(logits, splits=context.splits, track_stderr=False)
        probabilities, neg_entropy = class_probabilities(logits)

        def draw(index: int) -> Callable[[np.ndarray], float]:
            return lambda rows: split_scores(probabilities, neg_entropy, rows, min(context.splits, rows.shape[0]))[index]

        out = {names[0]: Measurement(full.is_mean, draw=draw(0))}
        if len(names) > 1:
            out[names[1]] = Measurement(full.improved_is, draw=draw(1))
        return out
    return measure


def measure_fid(role: str, name: str) -> Measure:
    """FID of the ``role`` classifier's features against its reference statistics. A draw projects the game's
    features on the reference covariance's root once (A = X R), so each draw's FID needs one eigendecomposition of
    the covariance of A's rows and no D x D products (:func:`frechet_from_projection`)."""
    def measure(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
        reference = context.rooted_reference_statistics if role == "main" else \
            context.rooted_auxiliary_statistics(role)
        features = game.outputs[role][1]
        projected = features @ reference.root_rows.T  # (m, r): R S R^T shares tr sqrt with C S, as C = R^T R

        def draw(rows: np.ndarray) -> float:
            return frechet_from_projection(features[rows], projected[rows], reference)

        return {name: Measurement(statistics_to_fid(reference, features_to_statistics(features)), draw=draw)}
    return measure


def frechet_from_projection(features: np.ndarray, projected: np.ndarray, reference: FeatureStatistics) -> float:
    """FID of (m, D) ``features`` against ``reference`` (with root rows R, (r, D) with R^T R its covariance, as
    ``root_rows``: the symmetric root, r = D, or the low-rank one of N <= D rows), given ``projected`` = features
    R^T (m, r): |mu - mu_r|^2 + tr S + tr S_r - 2 tr (R S R^T)^{1/2}, with R S R^T the covariance of the projected
    rows (its eigenvalues through the m x m Gram matrix when m <= r)."""
    difference = features.mean(axis=0) - reference.mean
    centred = features - features.mean(axis=0)
    centred_projection = projected - projected.mean(axis=0)
    m = features.shape[0]
    gram = (centred_projection @ centred_projection.T if m <= projected.shape[1]
            else centred_projection.T @ centred_projection) / (m - 1)
    trace_sqrt = float(np.sqrt(clipped_eigenvalues(gram)).sum())
    value = difference @ difference + (centred * centred).sum() / (m - 1) + np.trace(reference.covariance) \
        - 2 * trace_sqrt
    return float(max(value, 0.0))


def measure_kid(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
    """KID (subset estimate, as ``isgame metrics``); its draws are the full-set unbiased MMD^2 of a resample."""
    features = game.outputs["main"][1]
    kid = kernel_inception_distance(context.reference_features, features, subsets=KID_SUBSETS,
                                    subset_size=context.kid_subset_size, seed=context.seed)
    within = polynomial_kernel(features, features)
    cross = polynomial_kernel(features, context.reference_features).mean(axis=1)
    diagonal = np.diag(within)

    def draw(rows: np.ndarray) -> float:
        m = rows.shape[0]
        own = (within[np.ix_(rows, rows)].sum() - diagonal[rows].sum()) / (m * (m - 1))
        return float(own + context.reference_kernel_within - 2 * cross[rows].mean())

    return {"KID": Measurement(kid.mean, draw=draw)}


def measure_manifold(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
    """Precision, recall (k = 3, Kynkäänniemi et al. 2019's default), density, coverage (k = 5, Naeem et al. 2020's)
    and their draws: indicators of one distance matrix, recall with each drawn sample's radius among the drawn
    ones (the prdc package computes all four with one k, 5 by default)."""
    reference, features = context.reference_features, game.outputs["main"][1]
    full = precision_recall_density_coverage(reference, features, k_precision_recall=PRDC_K, k_density_coverage=DC_K)
    distances = pairwise_distances(reference, features)  # (N_ref, n)
    in_reference_ball = distances < context.precision_radii[:, None]
    precise = in_reference_ball.any(axis=0)
    inside = distances < context.coverage_radii[:, None]
    density_counts = inside.sum(axis=0) / DC_K

    game_distances = pairwise_distances(features, features)  # (n, n), for the radii of a draw's own rows

    def any_of(matrix: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda rows: float(matrix[:, np.unique(rows)].any(axis=1).mean())

    def recall(rows: np.ndarray) -> float:
        # A sample's k-NN radius among the drawn samples (the k-th smallest distance after its own 0); a draw of
        # k rows or fewer has none, and the test leaves it out.
        if rows.shape[0] <= PRDC_K:
            return math.nan
        radii = np.partition(game_distances[np.ix_(rows, rows)], PRDC_K, axis=1)[:, PRDC_K]
        return float((distances[:, rows] < radii[None, :]).any(axis=1).mean())

    return {"precision": Measurement(full.precision, draw=lambda rows: float(precise[rows].mean())),
            "recall": Measurement(full.recall, draw=recall),
            "density": Measurement(full.density, draw=lambda rows: float(density_counts[rows].mean())),
            "coverage": Measurement(full.coverage, draw=any_of(inside))}


def copying_statistic(train: np.ndarray, held_out: np.ndarray, generated: np.ndarray, *, seed: int,
                      notes: list[str] | None = None, what: str = "the samples", cells: int = 10) -> float:
    """C_T of ``generated`` (M, D) against ``held_out`` (pixels, as ``train``) with ``cells`` k-means cells, or NaN
    (and a note) when no cell holds enough of its samples: possible only for small sets, where C_T is undefined."""
    try:
        return data_copying_test(train, held_out, generated, cells=cells, seed=seed).ct_statistic
    except InvalidInputError as error:
        if not str(error).startswith("no cell holds more than"):
            raise
        if notes is not None:
            notes.append(f"C_T of {what} is undefined (NaN): no k-means cell holds more than "
                         f"{CT_GENERATED_PER_CELL} of its {generated.shape[0]} samples and a held-out image; more "
                         f"samples (n) and real images define it")
        return math.nan


def measure_copying(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
    """C_T (a z statistic, so its standard error is 1) and authenticity (per-sample flags, resampled)."""
    flags = authentic_flags(context.train_pixels, game.pixels, own_distances=context.train_pixel_own_distances)
    notes: list[str] = []
    ct = copying_statistic(context.train_pixels, context.ct_held_out_pixels, game.pixels, seed=context.seed,
                           notes=notes, cells=context.ct_cells)
    context.notes.extend(notes)
    return {"C_T": Measurement(ct, stderr=1.0),
            "authenticity": Measurement(float(flags.mean()), draw=lambda rows: float(flags[rows].mean()))}


#: the points of the 1/N fit in a draw of IS∞ or FID∞ (the value itself uses the reference's 15)
INFINITY_DRAW_POINTS = 3


def measure_infinity(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
    """IS∞ and FID∞ (Chong & Forsyth, CVPR 2020): intercepts of fits against 1/N over seeded subsets. A draw fits
    :data:`INFINITY_DRAW_POINTS` points of the half-sample, the game's and the reference's alike."""
    from isgame.scoring.metrics.infinity import default_sizes, extrapolate, fid_infinity, is_infinity

    logits, features = game.outputs["main"]
    probabilities, neg_entropy = class_probabilities(logits)
    reference = context.rooted_reference_statistics

    def fitted(rows: np.ndarray, statistic, score: str) -> float:
        sizes = default_sizes(rows.shape[0], points=INFINITY_DRAW_POINTS)
        return extrapolate(rows.shape[0], lambda chosen: statistic(rows[np.sort(chosen)]), sizes, 2, score,
                           context.seed).value_at_infinity

    def is_draw(rows: np.ndarray) -> float:
        return fitted(rows, lambda chosen: split_scores(probabilities, neg_entropy, chosen, 1)[1], "is")

    projected = features @ reference.root_rows.T

    def fid_draw(rows: np.ndarray) -> float:
        return fitted(rows, lambda chosen: frechet_from_projection(features[chosen], projected[chosen], reference),
                      "fid")

    return {"IS∞": Measurement(is_infinity(logits, seed=context.seed).value_at_infinity, draw=is_draw),
            "FID∞": Measurement(fid_infinity(reference, features, seed=context.seed).value_at_infinity, draw=fid_draw)}


def measure_rbf_mmd(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
    """Unbiased RBF-kernel MMD^2 (as CMMD, Jayasumana et al. 2024), bandwidth: the median pairwise distance of the
    reference features; the same number as :func:`isgame.scoring.metrics.rbf_mmd.rbf_mmd`, from kernels computed once."""
    from isgame.scoring.metrics.rbf_mmd import squared_distances

    features = game.outputs["main"][1]
    sigma, reference_term = context.rbf_reference
    gamma = 1.0 / (2.0 * sigma**2)
    within = np.exp(-gamma * squared_distances(features, features))
    cross = np.exp(-gamma * squared_distances(context.reference_features, features)).mean(axis=0)

    def mmd(rows: np.ndarray) -> float:
        m = rows.shape[0]
        own = (within[np.ix_(rows, rows)].sum() - m) / (m * (m - 1))  # the diagonal is exp(0) = 1
        return float(reference_term + own - 2 * cross[rows].mean())

    return {"RBF-MMD": Measurement(mmd(np.arange(game.n)), draw=mmd)}


def measure_sliced_wasserstein(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
    """Sliced Wasserstein SW_2 on features (POT's projections, 200 of them, seeded). A draw uses the first 50
    directions, the reference pre-sorted: the spread between draws, not the projection noise, is what the test
    needs, and a draw then costs a quarter as much."""
    import ot

    from isgame.scoring.metrics.sliced_wasserstein import uniform_wasserstein_1d

    directions, reference = context.sliced_reference
    projected = game.outputs["main"][1] @ directions
    value = float(np.mean(ot.lp.wasserstein_1d(reference, projected, p=SLICED_ORDER)) ** (1 / SLICED_ORDER))
    few = slice(0, SLICED_DRAW_PROJECTIONS)
    sorted_reference = np.sort(reference[:, few], axis=0)

    def draw(rows: np.ndarray) -> float:
        costs = uniform_wasserstein_1d(np.sort(projected[rows, few], axis=0), sorted_reference, SLICED_ORDER)
        return float(np.mean(costs) ** (1 / SLICED_ORDER))

    return {"SWD": Measurement(value, draw=draw)}


#: FLD above this, with samples that copy training points exactly, is their mixture's collapse, not a distance:
#: the authors' code warns there ("your generated data is likely completely memorized")
MEMORISED_FLD = 1000.0


def fld_measurement(context: MatrixContext, features: np.ndarray) -> Measurement:
    """FLD (Jiralerspong et al., NeurIPS 2023) of ``features`` (n, D) of a sample set: the value of
    :func:`~isgame.scoring.metrics.fld.feature_likelihood_divergence` (train: ``context.fld_train``, test:
    ``context.fld_test``, the context's seed), with the baseline fitted once per size and no NLL of the train set
    (the gap is not a column).

    Samples that are exact copies of training points make their components' fitted variance collapse to the
    clamp, and a set of them scores a round-off value (1e16 and more). Such a value, above
    :data:`MEMORISED_FLD` with copies among the centres, is recorded as +inf: memorised, worse than any
    distance, and the same on every machine.

    The draw does not refit: it keeps the fitted log-variances and scores the test set under the mixture of the
    drawn rows' components, from the (T, n) component log-likelihood matrix computed once, less the baseline of
    the draw's size (so both sides of a test carry the same constant).
    """
    try:
        normalise, train, test = context.fld_normalised
    except InvalidInputError as error:  # a held-out half with no varying feature: FLD is undefined, not the matrix
        note = f"FLD is undefined (NaN): {error}"
        if note not in context.notes:
            context.notes.append(note)
        return Measurement(math.nan)
    kept = generated_rows(features.shape[0], context.seed)  # more than the reference's 10,000 cap: its subset
    centres = normalise(features if kept is None else features[kept])
    log_variances = fit_mixture(train, centres, seed=context.seed)
    pairwise = component_log_likelihoods(test, centres, log_variances)
    dim = centres.shape[1]
    copies = _copies_of(centres, train)

    def fld(columns: np.ndarray | None) -> float:
        chosen = pairwise if columns is None else pairwise[:, columns]
        value = 100 * (mixture_nll(chosen) / dim - context.fld_baseline(chosen.shape[1]))
        copied = copies.any() if columns is None else copies[columns].any()
        return math.inf if copied and value > MEMORISED_FLD else value

    def draw(rows: np.ndarray) -> float:
        chosen = rows if kept is None else np.flatnonzero(np.isin(kept, rows))
        return fld(chosen) if chosen.size else math.nan

    return Measurement(fld(None), draw=draw)


def _copies_of(centres: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Which (m,) of the normalised ``centres`` are exact copies of a training row (squared distance at round-off
    level of the features' own scale)."""
    nearest = fld_squared_distances(centres, train).min(axis=1)
    return nearest <= 1e-12 * centres.shape[1]


def measure_fld(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
    """FLD of the game's features, fitted on the training features and scored on C_T's held-out half."""
    return {"FLD": fld_measurement(context, game.outputs["main"][1])}


def measure_vendi(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
    """Vendi score (Friedman & Dieng, TMLR 2023; cosine kernel on features, q = 1): reference-free diversity."""
    from isgame.scoring.metrics.vendi import vendi_score

    features = game.outputs["main"][1]
    return {"Vendi": Measurement(vendi_score(features).vendi, draw=lambda rows: vendi_score(features[rows]).vendi)}


def measure_wavelet(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
    """Encoder-free: the mean over Haar packets of the Fréchet distance to the training images' packets (as FWD,
    Veeramacheneni et al., ICLR 2025), on images pooled to <= 32 px."""
    from isgame.scoring.metrics.wavelet_fd import packet_features

    packets = packet_features(context.wavelet_images(game.images))
    reference = context.wavelet_reference
    full = float(np.mean([statistics_to_fid(reference[p], features_to_statistics(packets[:, p]))
                          for p in range(packets.shape[1])]))
    means, covariance_traces, roots = context.wavelet_reference_roots

    def draw(rows: np.ndarray) -> float:
        # Every packet at once: (P, F, F) covariances and one stacked eigendecomposition of R_p S_p R_p, the same
        # Fréchet distance per packet as statistics_to_fid (eigenvalues clipped alike) without P calls per draw.
        chosen = packets[rows]
        mean = chosen.mean(axis=0)
        centred = chosen - mean
        covariance = np.einsum("mpf,mpg->pfg", centred, centred) / (chosen.shape[0] - 1)
        middle = roots @ covariance @ roots
        eigenvalues = np.linalg.eigvalsh((middle + np.swapaxes(middle, 1, 2)) / 2)
        trace_sqrt = np.sqrt(np.stack([clip_round_off(values, values.shape[0]) for values in eigenvalues])).sum(1)
        per_packet = (((mean - means) ** 2).sum(1) + np.trace(covariance, axis1=1, axis2=2) + covariance_traces
                      - 2 * trace_sqrt)
        return float(per_packet.mean())

    return {"wavelet FD": Measurement(full, draw=draw)}


#: (the columns it fills, the auxiliary classifier it needs or None, the measurement)
MEASURES: tuple[tuple[tuple[str, ...], str | None, Measure], ...] = (
    (("IS", "exp(I)"), None, measure_inception_scores("main", ("IS", "exp(I)"))),
    (("R-IS",), "robust", measure_inception_scores("robust", ("R-IS",))),
    (("FID",), None, measure_fid("main", "FID")),
    (("KID",), None, measure_kid),
    (("R-FID",), "robust", measure_fid("robust", "R-FID")),
    (("FID-b",), "second", measure_fid("second", "FID-b")),
    (("precision", "recall", "density", "coverage"), None, measure_manifold),
    (("C_T", "authenticity"), None, measure_copying),
    (("IS∞", "FID∞"), None, measure_infinity),
    (("RBF-MMD",), None, measure_rbf_mmd),
    (("SWD",), None, measure_sliced_wasserstein),
    (("FLD",), None, measure_fld),
    (("Vendi",), None, measure_vendi),
    (("wavelet FD",), None, measure_wavelet),
)


#: every column the matrix knows, in heatmap order (a live view of the registry: plug-in columns join it)
MATRIX_METRICS: Sequence[MatrixMetric] = ColumnList(as_names=False)
#: True: higher is better; False: lower; None: two-sided (C_T: closest to 0 is best)
HIGHER_IS_BETTER: Mapping[str, bool | None] = ColumnView("higher_is_better")
METRICS: Sequence[str] = ColumnList(as_names=True)
METRIC_FAMILIES: Mapping[str, str] = ColumnView("family")
FOOLED_RULES: Mapping[str, str] = ColumnView("rule")
METRIC_SCOPES: Mapping[str, tuple[str, ...]] = ColumnView("scope")
#: IS splits and KID subset rows of the matrix (fewer where n is smaller)
IS_SPLITS, KID_SUBSET_SIZE = 10, 200


def matrix_context(domain, *, n: int, seed: int, auxiliary: dict[str, AuxiliaryScorer]) -> MatrixContext:
    """The reference of every game on ``domain``: the stats file's subset and moments where the domain has one,
    else the training images' features; IS splits min(10, n), KID subsets min(200, n), C_T cells for n."""
    stats = getattr(domain, "reference_stats", None)
    if stats is None:
        reference_features = domain.train_outputs[1].double().numpy()
        reference_statistics = features_to_statistics(reference_features)
    else:
        reference_features = np.asarray(stats.features_subset, np.float64)
        reference_statistics = stats.statistics
    held_out_pixels = flatten_images(domain.real)
    ct_half, _ = held_out_halves(held_out_pixels.shape[0], seed)
    real_features = domain.real_outputs[1].double().numpy()
    return MatrixContext(seed=seed, splits=min(IS_SPLITS, n), kid_subset_size=min(KID_SUBSET_SIZE, n),
                         # Fewer k-means cells on a small domain, so that a cell can hold enough samples for C_T.
                         ct_cells=ct_cells(min(n, domain.real.shape[0] // 2), fixed=domain.ct_cells),
                         reference_features=reference_features, reference_statistics=reference_statistics,
                         train_pixels=flatten_images(domain.train), ct_held_out_pixels=held_out_pixels[ct_half],
                         auxiliary=auxiliary, train_images=domain.train,
                         fld_train=domain.train_outputs[1].double().numpy(), fld_test=real_features[ct_half])


def measure_plugin(column: str) -> Measure:
    """A plug-in column, measured by its own registered function on every game: FAKE is the game's features (its
    logits and images where the metric needs them), REAL the matrix's reference (the training images' features and
    statistics) and, for a metric that needs training images, REAL the held-out half and TRAIN the training
    features, as C_T and FLD are measured. A draw calls the function on the drawn rows."""
    spec = REGISTERED_METRICS[COLUMN_SOURCES[column]]
    key = COLUMNS[column].value_key

    def measure(context: MatrixContext, game: GameOutputs) -> dict[str, Measurement]:
        logits, features = game.outputs["main"]
        real = context.fld_test if spec.needs_train else context.reference_features
        images = game.images.numpy()
        real_images = None if context.train_images is None else context.train_images.numpy()

        def value(rows: np.ndarray) -> float:
            inputs = MetricInputs(real=real, fake=features[rows], train=context.fld_train if spec.needs_train else None,
                                  real_statistics=context.reference_statistics, seed=context.seed,
                                  fake_logits=logits[rows].double().numpy() if spec.needs_logits else None,
                                  real_images=real_images if spec.needs_images else None,
                                  fake_images=images[rows] if spec.needs_images else None)
            result = spec.compute(inputs)
            if not isinstance(result, dict) or (key is None and len(result) != 1) or (key is not None and key not in result):
                raise InvalidInputError(f"plug-in metric {spec.name!r} returned {result!r}; the matrix reads "
                                        f"{'its only key' if key is None else repr(key)} (register it with "
                                        f"{parameter('value_key')} or {parameter('headline')})")
            return float(result[key] if key is not None else next(iter(result.values())))

        return {column: Measurement(value(np.arange(game.n)), draw=value)}
    return measure


def all_measures() -> list[tuple[tuple[str, ...], str | None, Measure]]:
    """:data:`MEASURES` and one generic measurement per plug-in column, in column order."""
    return [*MEASURES, *(((column,), None, measure_plugin(column)) for column in plugin_columns())]


def measure_game(context: MatrixContext, game: GameOutputs, metrics: list[str]) -> dict[str, Measurement]:
    """Every measurement of ``metrics`` on one game (see :func:`all_measures`)."""
    out = {}
    for names, _, measure in all_measures():
        if set(names) & set(metrics):
            out.update({name: m for name, m in measure(context, game).items() if name in metrics})
    return out


def in_column_order(row: dict[str, Measurement]) -> dict[str, Measurement]:
    """``row`` with its columns in the order :func:`all_measures` fills them."""
    return {m: row[m] for names, _, _ in all_measures() for m in names if m in row}


def _metric_key(name: str) -> str:
    """Case, spaces, dashes and underscores ignored: FID-b, fid_b and "fid b" name one column."""
    return "".join(ch for ch in name.lower() if ch not in " -_")


def available_metrics(auxiliary: dict[str, AuxiliaryScorer], metrics: list[str] | None = None) -> list[str]:
    """The columns the matrix can fill: all (or those of ``metrics``, spelled in any case) whose auxiliary
    classifier is there; a requested column whose classifier is missing is refused in one line."""
    known = [metric.name for metric in MATRIX_METRICS if metric.needs is None or metric.needs in auxiliary]
    if metrics is None:
        return known
    by_key = {_metric_key(m.name): m for m in MATRIX_METRICS}
    unknown = [m for m in metrics if _metric_key(m) not in by_key]
    if unknown:
        raise InvalidInputError(f"{parameter('metrics')}: unknown {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    wanted = {by_key[_metric_key(m)].name for m in metrics}
    missing = [m for m in MATRIX_METRICS if m.name in wanted and m.name not in known]
    if missing:
        role = missing[0].needs
        raise InvalidInputError(f"{parameter('metrics')}: {', '.join(m.name for m in missing)} need a {role} classifier, "
                                f"which this domain has none of; pass {parameter(f'{role}_classifier')}")
    return [m for m in known if m in wanted]
