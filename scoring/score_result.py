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

import torch

from scoring.entropy import LN2, entropy_nats


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
    std_ddof: int = 0

    @property
    def max_entropy_bits(self) -> float:
        """log2 K, the ceiling of H(y) and of I(y; x) in bits."""
        return math.log2(self.num_classes)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict; NaN (e.g. the standard error of a single row) becomes None."""
        out = asdict(self)
        out["max_entropy_bits"] = self.max_entropy_bits
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def statistics_to_result(
    *,
    prob_sum: torch.Tensor,
    neg_entropy_sum: torch.Tensor,
    count: torch.Tensor,
    class_counts: torch.Tensor,
    gram: torch.Tensor | None,
    neg_entropy_weighted_prob_sum: torch.Tensor | None,
    neg_entropy_sq_sum: float,
    shuffle: bool,
    seed: int,
) -> InceptionScoreResult:
    """Turn per-split float64 sums into an :class:`InceptionScoreResult`.

    Shapes: ``prob_sum`` (S, K), ``neg_entropy_sum`` (S,), ``count`` (S,), ``class_counts`` (K,),
    ``gram`` (K, K) or None, ``neg_entropy_weighted_prob_sum`` (K,) or None.
    """
    splits, num_classes = prob_sum.shape
    split_scores = []
    for s in range(splits):
        n_s = int(count[s])
        marginal = prob_sum[s] / n_s
        log_is = float(neg_entropy_sum[s]) / n_s + entropy_nats(marginal)
        split_scores.append(math.exp(log_is))
    scores = torch.tensor(split_scores, dtype=torch.float64)

    n = int(count.sum())
    marginal = prob_sum.sum(dim=0) / n
    marginal_entropy = entropy_nats(marginal)
    conditional_entropy = -float(neg_entropy_sum.sum()) / n
    mutual_information = marginal_entropy - conditional_entropy

    stderr = math.nan
    if gram is not None and neg_entropy_weighted_prob_sum is not None and n > 1:
        # KL_i = a_i - p_i . L with L = log p(y); classes never predicted (p(y) = 0) have
        # p_ik = 0 for every row, so their L_k is set to 0 instead of -inf.
        log_marginal = torch.where(marginal > 0, torch.log(marginal), torch.zeros((), dtype=torch.float64))
        sum_kl = n * mutual_information
        sum_kl_sq = neg_entropy_sq_sum - 2.0 * float(log_marginal @ neg_entropy_weighted_prob_sum) + float(
            log_marginal @ gram @ log_marginal
        )
        variance = max(sum_kl_sq - sum_kl * sum_kl / n, 0.0) / (n - 1)
        stderr = math.sqrt(variance / n)

    return InceptionScoreResult(
        n=n,
        num_classes=num_classes,
        splits=splits,
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


class SplitScoresDisplay:
    """Per-split IS as bars, with their mean and the split-free exp(I) as lines.

    ``SplitScoresDisplay.from_result(result).plot(ax=None)``; keeps ``ax_`` and ``figure_``.
    """

    def __init__(self, split_scores: list[float], is_mean: float, improved_is: float, num_classes: int) -> None:
        self.split_scores = split_scores
        self.is_mean = is_mean
        self.improved_is = improved_is
        self.num_classes = num_classes

    @classmethod
    def from_result(cls, result: InceptionScoreResult) -> "SplitScoresDisplay":
        return cls(result.split_scores, result.is_mean, result.improved_is, result.num_classes)

    def plot(self, *, ax=None) -> "SplitScoresDisplay":
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        positions = range(1, len(self.split_scores) + 1)
        ax.bar(positions, self.split_scores, color="#8da0cb", label="IS per split")
        ax.axhline(self.is_mean, color="#333333", linestyle="--", label=f"mean IS = {self.is_mean:.3f}")
        ax.axhline(self.improved_is, color="#e78ac3", label=f"exp(I(y;x)), all rows = {self.improved_is:.3f}")
        ax.set_xlabel("split")
        ax.set_ylabel(f"Inception Score (max {self.num_classes})")
        ax.legend(loc="lower right", fontsize=8)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
