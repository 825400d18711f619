"""FLD, the feature likelihood divergence, and its train−test gap: a memorisation signal.

Jiralerspong, Bose, Gemp, Qin, Bengio, Berseth & Gidel, "Feature Likelihood Divergence: Evaluating the
Generalization of Generative Models Using Samples", NeurIPS 2023. Reference code: marcojira/fld,
``fld/MoG.py`` (``preprocess_feat``, ``MoG.fit``, ``get_dim_adjusted_nlls``) and ``fld/metrics/FLD.py``
(``compute_metric``, ``get_baseline_nll``), commit 245ac7c. This is a float64 port of that code:

1. Normalise train, test and generated features by the TEST set's per-column mean and std (ddof 1).
   Deviation: columns with zero test std (dead units) are dropped; the reference divides by zero there.
2. A mixture of isotropic Gaussians, one per generated sample (uniform weights 1/m), each with its own
   log-variance ℓ_j, initialised at log((min_i |x_i − μ_j|² + 1e-3) / D) over the train rows x_i.
3. Fit ℓ (and the variance of one extra "origin" component at the train mean, squared distances × 0.81, weight
   1, used only while fitting) by Adam (lr 0.5, 50 epochs, batches of 10,000 train rows) to the train set's
   mean NLL / D; ℓ clamped to [-40, 20] after each step.
4. Dimension-adjusted NLL of a set: −mean_i log Σ_j N(x_i | μ_j, e^{ℓ_j} I) / m, divided by D (nats per dim).
5. Baseline: the same MoG centred on min(m, M/2) shuffled train rows, fitted on the other train rows, evaluated on
   test. FLD = 100 · (NLL_test − baseline); FLD_train = 100 · (NLL_train − baseline).

``gap`` = FLD_train − FLD = 100 · (NLL_train − NLL_test), the reference's "gap" mode: about 0 or mildly
negative for a generalising model, strongly negative (the reference warns below −1000) when the samples copy
the training set, which the MoG then rewards on train and not on test. Lower FLD is better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.feature_arrays import as_feature_array, check_same_width
from isgame.scoring.results import FieldsAsDict

LEARNING_RATE = 0.5
EPOCHS = 50
BATCH_SIZE = 10_000
GEN_SIZE = 10_000
ORIGIN_DIST_PROP = 0.1
LOG_VARIANCE_BOUNDS = (-40.0, 20.0)


@dataclass(frozen=True)
class FldResult(FieldsAsDict):
    """FLD (test), FLD on train, their gap (train − test), all ×100 nats per dimension; lower FLD is better."""

    fld: float
    fld_train: float
    gap: float
    nll_test: float
    nll_train: float
    baseline_nll: float
    n_generated: int
    dim: int
    seed: int
    #: generated samples that are exact copies of a training point (their components' variance collapses)
    copies: int = 0

    @property
    def memorised(self) -> bool:
        """The authors' warning: FLD above 1000 (or a gap below -1000) means the samples are likely memorised; with
        exact copies among them the value is their mixture's collapse, set by round-off."""
        return self.fld > 1000 or self.gap < -1000

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "memorised": self.memorised,
                "gap_note": "gap = fld_train - fld; strongly negative when samples copy the training set"}


@dataclass(frozen=True)
class FldNormalisation:
    """Step 1: the test set's column mean and std (ddof 1) over the ``keep`` columns (D,) bool it varies in."""

    keep: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, test: np.ndarray) -> "FldNormalisation":
        mean, std = test.mean(0), test.std(0, ddof=1)
        keep = std > 0
        if not keep.any():
            raise InvalidInputError("test features: every column is constant, so FLD's normalisation is undefined; "
                                    "pass held-out features that vary")
        return cls(keep=keep, mean=mean[keep], std=std[keep])

    def __call__(self, array: np.ndarray) -> np.ndarray:
        """(N, D) features scaled, (N, D_kept)."""
        return (array[:, self.keep] - self.mean) / self.std


def _normalised(train: np.ndarray, test: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, ...]:
    """All three scaled by test's column mean and std (ddof 1), dropping columns test does not vary in."""
    normalise = FldNormalisation.of(test)
    return tuple(normalise(array) for array in (train, test, generated))


def squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|x_i − y_j|² of (n, D) and (m, D) float64 arrays, shape (n, m), round-off clipped at 0."""
    return np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T), 0.0)


def _component_lls(squared: np.ndarray, log_variances: np.ndarray, dim: int) -> np.ndarray:
    """log N(x_i | μ_j, e^{ℓ_j} I) from squared distances (n, m); the reference's ``pairwise_lls_from_dists``."""
    return -0.5 * squared * np.exp(-log_variances) - (dim / 2) * log_variances - (dim / 2) * math.log(2 * math.pi)


def loss_gradient(squared: np.ndarray, origin_squared: np.ndarray, log_variances: np.ndarray, dim: int,
                  work: np.ndarray | None = None) -> np.ndarray:
    """Gradient of the fitting loss −mean_i log p(x_i) / D in (ℓ_1 .. ℓ_m, ℓ_origin), shape (m + 1,).

    log p(x_i) = logsumexp(log N(x_i | μ_j, e^{ℓ_j} I) − log m over j, log N(x_i | origin, e^{ℓ_origin} I)), so
    ∂ log p(x_i) / ∂ℓ_j = r_ij (d_ij e^{−ℓ_j} / 2 − D / 2) with r the posterior responsibilities: the gradient
    torch's autograd takes of the reference's loss, in a few passes over the (n, m) matrix. ``work``: an optional
    (n, m) scratch array, overwritten.
    """
    n, m = squared.shape
    work = np.empty_like(squared) if work is None else work[:n]
    half_precision = 0.5 * np.exp(-log_variances)
    np.multiply(squared, -half_precision[:m], out=work)
    work += -(dim / 2) * log_variances[:m] - math.log(m)
    origin = -half_precision[m] * origin_squared - (dim / 2) * log_variances[m]
    shift = np.maximum(work.max(1), origin)
    work -= shift[:, None]
    # exp below -700 is < 1e-304 next to the row's largest term 1: nothing at float64 precision, but exp is slow on
    # such arguments (sub-normal results), and most entries are there once the bandwidths have shrunk
    np.maximum(work, -700.0, out=work)
    # torch's vectorised exp, faster than numpy's and within an ulp of it
    torch.exp(torch.from_numpy(work), out=torch.from_numpy(work))
    origin_weight = np.exp(origin - shift)
    inverse_total = 1.0 / (work.sum(1) + origin_weight)
    work *= inverse_total[:, None]
    origin_weight *= inverse_total
    responsibility = np.append(work.sum(0), origin_weight.sum())
    weighted = np.append(np.einsum("ij,ij->j", work, squared), origin_weight @ origin_squared)
    return -(half_precision * weighted - (dim / 2) * responsibility) / (n * dim)


def fit_log_variances(centres: np.ndarray, data: np.ndarray, *, epochs: int = EPOCHS,
                      learning_rate: float = LEARNING_RATE) -> np.ndarray:
    """Per-component log-variances (m,) of the MoG centred on ``centres`` (m, D) fitted to ``data`` (n, D).

    Adam as ``torch.optim.Adam`` (betas 0.9 / 0.999, eps 1e-8) on the m component log-variances and the origin's
    (which starts at 0 and is discarded), one step per batch of 10,000 rows, ``epochs`` passes.
    """
    m, dim = centres.shape
    squared = squared_distances(data, centres)
    origin_squared = (1 - ORIGIN_DIST_PROP) ** 2 * squared_distances(data, data.mean(0, keepdims=True))[:, 0]
    params = np.append(np.log((squared.min(0) + 1e-3) / dim), 0.0)
    first, second = np.zeros_like(params), np.zeros_like(params)
    step, work = 0, np.empty((min(BATCH_SIZE, data.shape[0]), m))
    for _ in range(epochs):
        for start in range(0, data.shape[0], BATCH_SIZE):
            rows = slice(start, start + BATCH_SIZE)
            gradient = loss_gradient(squared[rows], origin_squared[rows], params, dim, work)
            step += 1
            first = 0.9 * first + 0.1 * gradient
            second = 0.999 * second + 0.001 * gradient**2
            denominator = np.sqrt(second) / math.sqrt(1 - 0.999**step) + 1e-8
            params = params - (learning_rate / (1 - 0.9**step)) * first / denominator
            params[:m] = np.clip(params[:m], *LOG_VARIANCE_BOUNDS)
    return params[:m]


def component_log_likelihoods(points: np.ndarray, centres: np.ndarray, log_variances: np.ndarray) -> np.ndarray:
    """log N(x_i | μ_j, e^{ℓ_j} I) of points (T, D) under each component (m centres (m, D)), shape (T, m), nats."""
    return _component_lls(squared_distances(points, centres), log_variances, centres.shape[1])


def mixture_nll(pairwise: np.ndarray, weights: np.ndarray | None = None) -> float:
    """−mean_i log Σ_j w_j N(x_i | μ_j, e^{ℓ_j} I) from the component log-likelihoods ``pairwise`` (T, m) of
    :func:`component_log_likelihoods`, in nats per point (FLD's figure divides it by D). ``weights`` (m,) >= 0
    summing to 1; None: uniform 1/m, computed as the reference does (a logsumexp less log m)."""
    if weights is None:
        shift = pairwise.max(1, keepdims=True)
        log_density = np.log(np.exp(pairwise - shift).sum(1)) + shift[:, 0] - math.log(pairwise.shape[1])
    else:
        used = np.flatnonzero(weights > 0)  # components a resample left out weigh 0: log 0 = −inf drops them
        weighted = pairwise[:, used] + np.log(weights[used])
        shift = weighted.max(1, keepdims=True)
        log_density = np.log(np.exp(weighted - shift).sum(1)) + shift[:, 0]
    return float(-log_density.mean())


def mean_dim_adjusted_nll(points: np.ndarray, centres: np.ndarray, log_variances: np.ndarray) -> float:
    """−mean_i log p(x_i) / D under the uniform MoG (no origin component), nats per dimension."""
    return mixture_nll(component_log_likelihoods(points, centres, log_variances)) / centres.shape[1]


def generated_rows(count: int, seed: int) -> np.ndarray | None:
    """The rows (GEN_SIZE,) of ``count`` generated ones that FLD keeps, a seeded subset, when there are more than
    GEN_SIZE (the reference's cap); None when it keeps them all."""
    if count <= GEN_SIZE:
        return None
    return np.random.default_rng(seed).choice(count, GEN_SIZE, replace=False)


def fit_mixture(train: np.ndarray, generated: np.ndarray, *, seed: int) -> np.ndarray:
    """Step 3 on normalised features: the log-variances (m,) of the MoG centred on ``generated`` (m, D), fitted to
    ``train`` (M, D) shuffled with seed + 1 (the reference shuffles train before batching; it matters only beyond
    one batch of 10,000 rows)."""
    return fit_log_variances(generated, train[np.random.default_rng(seed + 1).permutation(train.shape[0])])


def fld_baseline_nll(train: np.ndarray, test: np.ndarray, *, size: int, seed: int = 0) -> float:
    """The reference's ``get_baseline_nll`` on already normalised features: a MoG on min(size, M // 2) shuffled
    train rows, fitted on the rest of train, scored on test (nats per dimension). Independent of the samples,
    so a caller scoring many sample sets of one size may compute it once."""
    shuffled = train[np.random.default_rng(seed).permutation(train.shape[0])]
    split = min(size, train.shape[0] // 2)
    return mean_dim_adjusted_nll(test, shuffled[:split], fit_log_variances(shuffled[:split], shuffled[split:]))


def feature_likelihood_divergence(train: object, test: object, generated: object, *, seed: int = 0,
                                  baseline_nll: float | None = None) -> FldResult:
    """FLD of generated (N, D) features, with train (M, D) fitting the bandwidths and test (T, D) scoring them.

    Args:
        train: the generator's training features, M >= 4 (half of it centres the baseline MoG).
        test: held-out real features, T >= 2.
        generated: the samples' features, N >= 1; a seeded subset of 10,000 when larger (the reference's cap).
        seed: seeds that subset, the shuffle of train rows into batches and the baseline's split.
        baseline_nll: a stored :func:`fld_baseline_nll` of the same train, test, size and seed (the reference's
            ``FLD(baseline_nll=...)``); None computes it.
    """
    train_a = as_feature_array(train, name="train", min_rows=4)
    test_a = as_feature_array(test, name="test")
    gen_a = as_feature_array(generated, name="generated", min_rows=1)
    for array, name in ((test_a, "test"), (gen_a, "generated")):
        check_same_width(train_a, array, ("train", name))
    kept = generated_rows(gen_a.shape[0], seed)
    if kept is not None:
        gen_a = gen_a[kept]
    train_n, test_n, gen_n = _normalised(train_a, test_a, gen_a)
    log_variances = fit_mixture(train_n, gen_n, seed=seed)
    nll_test = mean_dim_adjusted_nll(test_n, gen_n, log_variances)
    nll_train = mean_dim_adjusted_nll(train_n, gen_n, log_variances)
    baseline = fld_baseline_nll(train_n, test_n, size=gen_n.shape[0], seed=seed) if baseline_nll is None \
        else float(baseline_nll)
    copies = int((squared_distances(gen_n, train_n).min(axis=1) <= 1e-12 * gen_n.shape[1]).sum())
    return FldResult(fld=100 * (nll_test - baseline), fld_train=100 * (nll_train - baseline),
                     gap=100 * (nll_train - nll_test), nll_test=nll_test, nll_train=nll_train, baseline_nll=baseline,
                     n_generated=gen_n.shape[0], dim=gen_n.shape[1], seed=seed, copies=copies)
