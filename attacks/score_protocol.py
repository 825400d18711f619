"""The protocol an attack games: which rows share a marginal, the exact score, its gradient, its closed forms.

A reported Inception Score is a *protocol*: a dialect (:mod:`isgame.scoring.metrics.dialects`) and a
split count. Every dialect is the mean over groups of rows of exp(mean KL(p(y|x_i) || p_g(y))),
each group with its own marginal p_g; the dialects differ only in how rows fall into groups:

=================  ============================================================================
openai             contiguous rows i*N//s .. (i+1)*N//s - 1
torch-fidelity     the same bounds over ``numpy.random.RandomState(2020).permutation(N)``
torchmetrics       ``torch.chunk`` (parts of ceil(N/s) rows) of ``torch.randperm(N)`` seeded 0
sbarratt           rows k*(N//s) .. (k+1)*(N//s) - 1; the remainder counts in no group
barratt-sharma     one group of all N rows: exp(I(y; x)), the improved score
=================  ============================================================================

so the groups alone decide which images an attack must balance against each other. Groups are
independent terms of the score: an attack may keep each group's best iterate separately.
:meth:`ScoreProtocol.score` reproduces ``score_dialect`` (float64; openai's float32 softmax differs
in about the 7th digit); torchmetrics' uint8 truncation of the images is not applied here.

Closed forms (exact, for predictions that are one-hot): a group whose top-1 labels have the class
histogram h scores exp(H(h / n_g)), the perplexity of its histogram, because mean_i KL(e_{y_i} || h/n_g)
= -sum_c (h_c/n_g) log(h_c/n_g). Hence

* :meth:`one_hot_score` of labels: the score when every image is certain of its label, the limit of
  pushing every image toward the class it already has;
* :meth:`balanced_ceiling`: the most even histogram of n_g over K classes (n_g mod K classes hold one
  more image), the supremum of the protocol's score over *any* predictions for groups of these sizes:
  for a fixed group, I(y; x) is convex in the predictions p(y|x), so its maximum over the product of
  simplices sits at a vertex (one-hot predictions), where it is the histogram's entropy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.dialects import DEFAULT_SPLITS, DIALECTS

#: the permutation seeds of the dialects that shuffle (their defaults in :mod:`~isgame.scoring.metrics.dialects`)
DIALECT_SEEDS = {"torch-fidelity": 2020, "torchmetrics": 0}


@dataclass(frozen=True)
class ScoreProtocol:
    """A dialect and its split count; ``splits`` None takes the dialect's default (10, or 1 for sbarratt)."""

    dialect: str = "openai"
    splits: int | None = None

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise InvalidInputError(f"{parameter('dialect')} must be one of {', '.join(DIALECTS)}, "
                                    f"got {self.dialect!r}")
        if self.splits is not None and (isinstance(self.splits, bool) or self.splits < 1):
            raise InvalidInputError(f"{parameter('splits')} must be >= 1, got {self.splits}")

    @classmethod
    def improved(cls) -> "ScoreProtocol":
        """exp(I(y; x)) over all rows (Barratt & Sharma's score): one group."""
        return cls("barratt-sharma", 1)

    @property
    def split_count(self) -> int:
        """The splits in force: 1 for barratt-sharma, else ``splits`` or the dialect's default."""
        if self.dialect == "barratt-sharma":
            return 1
        return DEFAULT_SPLITS[self.dialect] if self.splits is None else self.splits

    def describe(self) -> str:
        """"openai, 10 splits" / "exp(I), one marginal"."""
        if self.dialect == "barratt-sharma":
            return "exp(I), one marginal (barratt-sharma)"
        count = self.split_count
        return f"{self.dialect}, {count} split{'' if count == 1 else 's'}"

    def to_dict(self) -> dict[str, object]:
        return {"dialect": self.dialect, "splits": self.split_count, "description": self.describe()}

    def groups(self, n: int) -> list[torch.Tensor]:
        """The row indices (int64) of each group, for ``n`` rows; rows in no group do not count."""
        splits = self.split_count
        if not 1 <= splits <= n:
            raise InvalidInputError(f"N = {n} samples is fewer than splits = {splits}; use fewer splits")
        if self.dialect == "barratt-sharma":
            return [torch.arange(n)]
        if self.dialect == "sbarratt":
            size = n // splits
            return [torch.arange(k * size, (k + 1) * size) for k in range(splits)]
        if self.dialect == "torchmetrics":
            order = torch.randperm(n, generator=torch.Generator().manual_seed(DIALECT_SEEDS["torchmetrics"]))
            chunk = math.ceil(n / splits)
            return [order[start:start + chunk] for start in range(0, n, chunk)]
        order = (torch.arange(n) if self.dialect == "openai" else
                 torch.from_numpy(np.random.RandomState(DIALECT_SEEDS["torch-fidelity"]).permutation(n)))
        return [order[i * n // splits:(i + 1) * n // splits] for i in range(splits)]

    def group_scores(self, logits: torch.Tensor) -> torch.Tensor:
        """(G,) float64: exp(mean KL(p_i || p_g)) of every group of (N, K) ``logits``; no gradient."""
        with torch.no_grad():
            return group_scores(logits, self.groups(logits.shape[0]))

    def score(self, logits: torch.Tensor) -> float:
        """The protocol's figure of (N, K) ``logits``: the mean of :meth:`group_scores`."""
        return float(self.group_scores(logits).mean())

    def one_hot_score(self, labels: torch.Tensor, num_classes: int) -> float:
        """The exact score of one-hot predictions of ``labels`` (N,): mean over groups of exp(H(histogram))."""
        scores = []
        for group in self.groups(labels.shape[0]):
            counts = torch.bincount(labels[group], minlength=num_classes).double()
            scores.append(_perplexity(counts))
        return float(np.mean(scores))

    def balanced_ceiling(self, n: int, num_classes: int) -> float:
        """The supremum of the score over any predictions of ``n`` rows: every group's histogram as even as it
        can be (n_g // K images a class, one more for n_g mod K classes), each prediction one-hot."""
        scores = []
        for group in self.groups(n):
            size = group.numel()
            counts = torch.full((num_classes,), size // num_classes, dtype=torch.float64)
            counts[: size % num_classes] += 1
            scores.append(_perplexity(counts))
        return float(np.mean(scores))


def _perplexity(counts: torch.Tensor) -> float:
    """exp of the entropy of a histogram (nats)."""
    p = counts[counts > 0] / counts.sum()
    return math.exp(float(-(p * p.log()).sum()))


def group_scores(logits: torch.Tensor, groups: list[torch.Tensor]) -> torch.Tensor:
    """(G,) float64 exp(mean KL(p_i || p_g)) per group of rows of (N, K) ``logits``."""
    log_p = torch.log_softmax(logits.double(), dim=1)
    scores = []
    for group in groups:
        part = log_p[group]
        log_marginal = torch.logsumexp(part, dim=0) - math.log(part.shape[0])
        scores.append((part.exp() * (part - log_marginal)).sum(dim=1).mean().exp())
    return torch.stack(scores)


def score_ascent_surrogate(logits: torch.Tensor, all_logits: torch.Tensor, rows: torch.Tensor,
                           groups: list[torch.Tensor]) -> torch.Tensor:
    """A scalar whose gradient w.r.t. ``logits`` (B, K), the rows ``rows`` (B,) of the whole set, points where the
    protocol's groups' mutual informations rise: sum_i <p_i, stop_grad(log p_i - log p_g(i))>.

    d/dp_i of n_g * I_g is log p_i - log p_g + const (the constant vanishes through the softmax), so each row
    needs only its group's marginal, taken from ``all_logits`` (N, K), the whole set's current logits with no
    gradient (under torchrun: gathered from every rank). Rows in no group get no gradient. The per-group
    weights of the score's exact gradient (exp(I_g) / (G n_g)) are left out: sign and normalised steps do not
    see a per-image scale.
    """
    n = all_logits.shape[0]
    group_of = torch.full((n,), -1, dtype=torch.int64)
    for index, group in enumerate(groups):
        group_of[group] = index
    with torch.no_grad():
        log_all = torch.log_softmax(all_logits.double(), dim=1)
        log_marginals = torch.stack([torch.logsumexp(log_all[g], dim=0) - math.log(g.numel()) for g in groups])
    mine = group_of[rows]
    counted = mine >= 0
    log_p = torch.log_softmax(logits, dim=1)[counted]
    direction = (log_p.detach().double() - log_marginals[mine[counted]]).to(log_p.dtype)
    return (log_p.exp() * direction).sum()
