"""The result of an Inception Score computation, and the step from sufficient statistics to it.

Conventions, stated once here and carried in ``to_dict()``:

* ``is_mean`` / ``is_std``: mean and standard deviation (ddof 0, as the original improved-GAN
  code) of exp(mean KL) over the splits, each split with its own marginal.
* ``mutual_information_nats``: I(y; x) = H(y) - E[H(y|x)] with one marginal over all N rows
  (Barratt & Sharma's improved score); ``improved_is`` = exp(I) is on the IS scale.
* ``mutual_information_stderr_nats``: std(KL_i, ddof 1) / sqrt(N) over the per-sample terms
  KL_i = KL(p(y|x_i) || p(y)), whose mean is I.
* entropies in bits; log2 K is the ceiling of both H(y) and I.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import torch

from isgame.scoring.metrics.entropy import LN2, entropy_nats
from isgame.scoring.results import PUBLISHED_KEYS, with_published_keys

#: the older names of :data:`isgame.scoring.results.PUBLISHED_KEYS` and :func:`~isgame.scoring.results.with_published_keys`
LEGACY_JSON_KEYS = PUBLISHED_KEYS
with_legacy_json_keys = with_published_keys


def spread_percent(values: list[float]) -> float:
    """100 (max - min) / mean of scores of the same samples: how far a convention moves the figure, in percent."""
    return 100 * (max(values) - min(values)) / float(np.mean(values))


def from_legacy_json_keys(values: dict[str, object]) -> dict[str, object]:
    """The inverse of :func:`with_published_keys`: attribute names from published JSON keys (JSON written before
    the attribute names were written beside them has the published keys alone)."""
    attribute = {json_key: name for name, json_key in PUBLISHED_KEYS.items()}
    return {attribute.get(key, key): value for key, value in values.items()}


@dataclass(frozen=True)
class InceptionScoreResult:
    """Classic and improved Inception Scores of N rows of K-class predictions."""

    n: int
    num_classes: int
    splits: int
    shuffle: bool
    seed: int
    is_mean: float
    is_std: float
    split_scores: list[float]
    mutual_information_nats: float
    mutual_information_bits: float
    mutual_information_stderr_nats: float
    mutual_information_stderr_bits: float
    improved_is: float
    marginal_entropy_bits: float
    conditional_entropy_bits: float
    class_counts: list[int] = field(repr=False)

    #: The std over splits uses ddof 0, as the original improved-GAN code (torchmetrics: ddof 1).
    std_ddof: ClassVar[int] = 0

    @property
    def max_entropy_bits(self) -> float:
        """log2 K, the ceiling of H(y) and of I(y; x) in bits."""
        return math.log2(self.num_classes)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict; NaN (e.g. the standard error of a single row) becomes None."""
        out = asdict(self)
        out["std_ddof"] = self.std_ddof
        out["max_entropy_bits"] = self.max_entropy_bits
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def split_inception_scores(prob_sum: torch.Tensor, neg_entropy_sum: torch.Tensor, count: torch.Tensor) -> list[float]:
    """exp(mean KL) of each split, each with its own marginal; (S, K), (S,) and (S,) sums in, S floats out."""
    scores = []
    for s in range(prob_sum.shape[0]):
        n_s = int(count[s])
        scores.append(math.exp(float(neg_entropy_sum[s]) / n_s + entropy_nats(prob_sum[s] / n_s)))
    return scores


def log_of_marginal(marginal: torch.Tensor) -> torch.Tensor:
    """log p(y) (K,) float64, with 0 instead of -inf where p(y) = 0: classes never predicted have p_ik = 0 for
    every row, so the 0 is never weighted."""
    return torch.where(marginal > 0, torch.log(marginal), torch.zeros((), dtype=torch.float64))


def marginal_and_entropies(prob_sum: torch.Tensor, neg_entropy_sum: torch.Tensor,
                           count: torch.Tensor) -> tuple[int, torch.Tensor, float, float]:
    """(N, p(y) (K,), H(y), H(y|x)) of all rows from the per-split sums; entropies in nats, I = H(y) - H(y|x)."""
    n = int(count.sum())
    marginal = prob_sum.sum(dim=0) / n
    return n, marginal, entropy_nats(marginal), -float(neg_entropy_sum.sum()) / n


def mutual_information_stderr(*, marginal: torch.Tensor, mutual_information: float, n: int, gram: torch.Tensor,
                              neg_entropy_weighted_prob_sum: torch.Tensor, neg_entropy_sq_sum: float) -> float:
    """std(KL_i, ddof 1) / sqrt(N) in nats, from the sums; NaN for a single row."""
    if n < 2:
        return math.nan
    # KL_i = a_i - p_i . L with L = log p(y).
    log_marginal = log_of_marginal(marginal)
    sum_kl = n * mutual_information
    sum_kl_sq = neg_entropy_sq_sum - 2.0 * float(log_marginal @ neg_entropy_weighted_prob_sum) + float(
        log_marginal @ gram @ log_marginal
    )
    variance = max(sum_kl_sq - sum_kl * sum_kl / n, 0.0) / (n - 1)
    return math.sqrt(variance / n)


def stderr_from_deviations(n: int, deviation_sum: float, deviation_sq_sum: float) -> float:
    """std(KL_i, ddof 1) / sqrt(N) in nats from sum d_i and sum d_i^2, d_i = KL_i - I; NaN for a single row."""
    if n < 2:
        return math.nan
    variance = max(deviation_sq_sum - deviation_sum * deviation_sum / n, 0.0) / (n - 1)
    return math.sqrt(variance / n)


def statistics_to_result(
    *,
    prob_sum: torch.Tensor,
    neg_entropy_sum: torch.Tensor,
    count: torch.Tensor,
    class_counts: torch.Tensor,
    gram: torch.Tensor | None,
    neg_entropy_weighted_prob_sum: torch.Tensor | None,
    neg_entropy_sq_sum: float,
    kl_deviation_sums: tuple[float, float] | None = None,
    shuffle: bool,
    seed: int,
) -> InceptionScoreResult:
    """Turn per-split float64 sums into an :class:`InceptionScoreResult`.

    Shapes: ``prob_sum`` (S, K), ``neg_entropy_sum`` (S,), ``count`` (S,), ``class_counts`` (K,),
    ``gram`` (K, K) or None, ``neg_entropy_weighted_prob_sum`` (K,) or None. The standard error comes from
    ``kl_deviation_sums`` (sum of KL_i - I and of its square, a second pass) when given, else from the gram.
    """
    split_scores = split_inception_scores(prob_sum, neg_entropy_sum, count)
    scores = torch.tensor(split_scores, dtype=torch.float64)
    n, marginal, marginal_entropy, conditional_entropy = marginal_and_entropies(prob_sum, neg_entropy_sum, count)
    mutual_information = marginal_entropy - conditional_entropy
    stderr = math.nan
    if kl_deviation_sums is not None:
        stderr = stderr_from_deviations(n, *kl_deviation_sums)
    elif gram is not None and neg_entropy_weighted_prob_sum is not None:
        stderr = mutual_information_stderr(marginal=marginal, mutual_information=mutual_information, n=n, gram=gram,
                                           neg_entropy_weighted_prob_sum=neg_entropy_weighted_prob_sum,
                                           neg_entropy_sq_sum=neg_entropy_sq_sum)
    return InceptionScoreResult(
        n=n,
        num_classes=prob_sum.shape[1],
        splits=prob_sum.shape[0],
        shuffle=shuffle,
        seed=seed,
        is_mean=float(scores.mean()),
        is_std=float(scores.std(correction=0)),
        split_scores=split_scores,
        mutual_information_nats=mutual_information,
        mutual_information_bits=mutual_information / LN2,
        mutual_information_stderr_nats=stderr,
        mutual_information_stderr_bits=stderr / LN2,
        improved_is=math.exp(mutual_information),
        marginal_entropy_bits=marginal_entropy / LN2,
        conditional_entropy_bits=conditional_entropy / LN2,
        class_counts=[int(c) for c in class_counts],
    )
