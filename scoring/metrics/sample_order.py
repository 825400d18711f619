"""Sample order: are the samples stored class-sorted or clustered? A runs test on the top-1 labels.

With contiguous splits, class-sorted samples wreck the classic IS: each split sees a few classes,
so its own marginal is narrow and its IS small (openai/guided-diffusion #165: ImageNet IS 62.07
with the customary splits against 298.45 with one split on the same samples).

The test (Wald & Wolfowitz 1940 for two categories; for K categories, Mood 1940, "The distribution
theory of runs", Ann. Math. Statist. 11(4), 367-392): the number of runs R of the predicted labels,
against its distribution over random permutations of the same labels (the class counts fixed).
Write R = N - sum_{i=1}^{N-1} J_i with J_i = [x_i = x_{i+1}]. With n_k the count of class k,
F_j = n(n-1)...(n-j+1) (falling factorial) and N_(j) the same of N:

* q = P(J_i = 1)                     = sum_k F_2(n_k) / N_(2);
* a = P(x_i = x_{i+1} = x_{i+2})    = sum_k F_3(n_k) / N_(3)      (adjacent J_i, J_{i+1});
* b = P(J_i = 1, J_j = 1), |i-j| >= 2 = [(sum_k F_2(n_k))^2 - sum_k F_2(n_k)^2 + sum_k F_4(n_k)] / N_(4);

so E[R] = N - (N - 1) q  (= N + 1 - sum_k n_k^2 / N) and

    Var(R) = (N-1) q (1-q) + 2 (N-2) (a - q^2) + (N-2)(N-3) (b - q^2),

counting the N-2 adjacent and (N-2)(N-3)/2 disjoint pairs of indicators. Both are computed in exact
rational arithmetic. z = (R - E[R]) / sqrt(Var(R)); too few runs (z < :data:`Z_CLUSTERED` = -3,
one-sided, p ~ 0.0013 under the normal approximation) means like labels sit together. Too many
runs (z > 3: labels alternate, as in a round-robin attack's targets) is reported but harmless to
contiguous splits.

Streaming: :class:`RunsCounter` counts runs as batches arrive, carrying the last label across
batches (and across torchrun shards in :meth:`RunsCounter.all_reduce`); memory O(K).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from isgame.scoring.errors import parameter
from isgame.scoring.notes import Note

#: one-sided level: a z-score of the runs count below this flags clustered (class-sorted) samples
Z_CLUSTERED = -3.0


def _falling(n: int, j: int) -> int:
    out = 1
    for i in range(j):
        out *= n - i
    return out


def runs_moments(class_counts) -> tuple[float, float]:
    """Mean and variance of the number of runs over random orders of labels with these (K,) class counts."""
    counts = [int(c) for c in class_counts if int(c) > 0]
    n = sum(counts)
    if n < 2:
        return float(n), 0.0
    f2 = sum(_falling(c, 2) for c in counts)
    q = Fraction(f2, _falling(n, 2))
    mean = n - (n - 1) * q
    variance = (n - 1) * q * (1 - q)
    if n >= 3:
        a = Fraction(sum(_falling(c, 3) for c in counts), _falling(n, 3))
        variance += 2 * (n - 2) * (a - q * q)
    if n >= 4:
        b = Fraction(f2 * f2 - sum(_falling(c, 2) ** 2 for c in counts) + sum(_falling(c, 4) for c in counts),
                     _falling(n, 4))
        variance += (n - 2) * (n - 3) * (b - q * q)
    return float(mean), float(max(variance, 0))


def count_runs(labels) -> int:
    """Runs in a 1-D sequence of labels: 1 + the number of changes between neighbours (0 when empty)."""
    labels = np.asarray(labels)
    return 0 if labels.size == 0 else 1 + int(np.count_nonzero(labels[1:] != labels[:-1]))


@dataclass(frozen=True)
class RunsTestResult:
    """Runs of the top-1 labels of N samples against a random order: R, E[R], sd(R), z, and the decision."""

    n: int
    runs: int
    expected_runs: float
    runs_std: float
    z: float
    level: float = Z_CLUSTERED

    @property
    def clustered(self) -> bool:
        """Too few runs: like labels sit together (class-sorted or clustered samples)."""
        return self.z < self.level

    @property
    def p_value(self) -> float:
        """One-sided P(Z <= z) under the normal approximation."""
        return 0.5 * math.erfc(-self.z / math.sqrt(2))

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, "runs": self.runs, "expected_runs": self.expected_runs, "runs_std": self.runs_std,
                "z": self.z, "p_value_one_sided": self.p_value, "level_z": self.level, "clustered": self.clustered}


def runs_test_from_counts(runs: int, class_counts) -> RunsTestResult:
    """The runs test from a runs count and the (K,) class counts (z = 0 when every label is the same)."""
    mean, variance = runs_moments(class_counts)
    n = int(sum(int(c) for c in class_counts))
    z = (runs - mean) / math.sqrt(variance) if variance > 0 else 0.0
    return RunsTestResult(n=n, runs=int(runs), expected_runs=mean, runs_std=math.sqrt(variance), z=z)


def runs_test(labels, num_classes: int | None = None) -> RunsTestResult:
    """The runs test of a 1-D sequence of integer labels in [0, K)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=num_classes or 0)
    return runs_test_from_counts(count_runs(labels), counts)


class RunsCounter:
    """Runs and class counts of top-1 labels fed batch by batch (the last label carries across batches)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.counts = np.zeros(num_classes, dtype=np.int64)
        self.runs = 0
        self.first: int | None = None
        self.last: int | None = None

    def update_labels(self, labels) -> None:
        """Add a batch of (B,) integer labels in row order."""
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels.size == 0:
            return
        self.runs += count_runs(labels) - (1 if self.last is not None and labels[0] == self.last else 0)
        self.first = int(labels[0]) if self.first is None else self.first
        self.last = int(labels[-1])
        self.counts += np.bincount(labels, minlength=self.num_classes)

    def update(self, scores) -> None:
        """Add a batch of (B, K) logits or probabilities (a tensor or an array): their top-1 labels."""
        self.update_labels((scores.argmax(dim=1) if hasattr(scores, "dim") else np.argmax(scores, axis=1)))

    def all_reduce(self) -> None:
        """Combine the shards of every torchrun process (rank order = row order); a no-op in one process."""
        from isgame.scoring.runtime.distributed import all_gather_rows, all_reduce_sum_, current_group

        group = current_group()
        if group.world_size == 1:
            return
        import torch

        row = torch.tensor([[self.runs, -1 if self.first is None else self.first,
                             -1 if self.last is None else self.last]], dtype=torch.int64)
        start, stop = group.shard(group.world_size)
        shards = all_gather_rows(row.repeat(stop - start, 1), group.world_size).tolist()
        counts = torch.from_numpy(self.counts.copy())
        all_reduce_sum_(counts)
        self.counts = counts.numpy()
        filled = [shard for shard in shards if shard[1] >= 0]
        joins = sum(1 for before, after in zip(filled, filled[1:]) if before[2] == after[1])
        self.runs = sum(shard[0] for shard in filled) - joins
        self.first, self.last = (filled[0][1], filled[-1][2]) if filled else (None, None)

    def compute(self) -> RunsTestResult:
        return runs_test_from_counts(self.runs, self.counts)


@dataclass(frozen=True)
class SampleOrderResult:
    """The runs test, whether the splits were contiguous, and when that matters, the IS both ways.

    ``warned``: the samples look clustered and the splits are contiguous (more than one, no shuffle);
    only then are ``is_contiguous`` (as scored) and ``is_shuffled`` (the same splits after a
    seeded shuffle of the rows, ``numpy.random.default_rng(seed).permutation(N)``) filled in.
    """

    test: RunsTestResult
    contiguous_splits: bool
    seed: int
    is_contiguous: float | None = None
    is_shuffled: float | None = None

    @property
    def warned(self) -> bool:
        return self.test.clustered and self.contiguous_splits

    def note(self, name: str) -> Note | None:
        """The one-line warning, or None."""
        if not self.warned:
            return None
        t = self.test
        return Note(f"{name}: the predicted classes come in {t.runs} runs where a random order gives "
                    f"{t.expected_runs:.1f} ± {t.runs_std:.1f} (z = {t.z:.1f} < {t.level:g}): the samples look "
                    f"class-sorted or clustered, so each contiguous split sees few classes; IS "
                    f"{self.is_contiguous:.4f} with contiguous splits, {self.is_shuffled:.4f} after a seeded shuffle "
                    f"(seed {self.seed}); pass {parameter('shuffle', True)} to score shuffled")

    def to_dict(self) -> dict[str, object]:
        return {**self.test.to_dict(), "contiguous_splits": self.contiguous_splits, "warned": self.warned,
                "seed": self.seed, "is_contiguous": self.is_contiguous, "is_shuffled": self.is_shuffled}


def sample_order(test: RunsTestResult, *, splits: int, shuffled: bool, seed: int, is_contiguous: float,
                 shuffled_is=None) -> SampleOrderResult:
    """Decide on the order; ``shuffled_is()`` (called only when the warning fires) gives the shuffled IS."""
    contiguous = splits > 1 and not shuffled
    result = SampleOrderResult(test=test, contiguous_splits=contiguous, seed=seed)
    if not result.warned:
        return result
    return SampleOrderResult(test=test, contiguous_splits=contiguous, seed=seed, is_contiguous=is_contiguous,
                             is_shuffled=None if shuffled_is is None else float(shuffled_is()))


#: dialects whose splits are contiguous rows in stored order (torch-fidelity and torchmetrics shuffle first;
#: barratt-sharma has no splits)
CONTIGUOUS_DIALECTS = ("openai", "sbarratt", "isgame")


def sample_order_of_logits(logits, *, splits: int, dialect: str, seed: int, is_contiguous: float) -> SampleOrderResult:
    """The order test of in-memory (N, K) logits scored by ``dialect`` with ``splits`` splits; when it warns, the
    shuffled IS is that dialect's on the rows permuted by ``numpy.random.default_rng(seed).permutation(N)``."""
    import torch

    from isgame.scoring.metrics.dialects import score_dialect

    logits = torch.as_tensor(logits)
    permutation = torch.from_numpy(np.random.default_rng(seed).permutation(logits.shape[0]))
    return sample_order(runs_test(logits.argmax(dim=1).numpy(), logits.shape[1]), splits=splits,
                        shuffled=dialect not in CONTIGUOUS_DIALECTS, seed=seed, is_contiguous=is_contiguous,
                        shuffled_is=lambda: score_dialect(logits[permutation], dialect, splits=splits).is_mean)
