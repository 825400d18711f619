"""Streaming Inception Score: an accumulator with ``update`` / ``compute`` / ``reset``.

The accumulator keeps float64 sufficient statistics, never the rows themselves:

* per split s: the sum of p(y|x_i) over its rows (K,), the sum of
  ``a_i = sum_k p_ik log p_ik`` (i.e. minus the conditional entropy) and the row count;
* for the standard error of the mutual information: ``sum_i p_i p_i^T`` (K, K),
  ``sum_i a_i p_i`` (K,) and ``sum_i a_i^2``. This is what the per-sample KL terms
  ``KL_i = a_i - p_i . log p(y)`` need once the marginal p(y) is known at the end;
* the histogram of top-1 classes (K,).

Memory is O(K * splits + K^2) and flat in N (8 MiB for K = 1000), except that
``shuffle=True`` stores one split id per row (4 bytes * N) for the seeded permutation.
All statistics are sums, so accumulators on several processes combine with a sum.

The (K, K) statistics cost O(K^2) per row (``benchmarks/accumulator_throughput.py`` measures it). Where the rows can
be read twice (a file, an array in memory), :meth:`InceptionScoreAccumulator.second_pass` gives the same
standard error in O(K) per row: build the accumulator with ``track_stderr=False``, feed the rows, then feed
them again to a :class:`KLDeviationAccumulator` that knows p(y) and sums (KL_i - I) and its square.

Split convention (the original improved-GAN code): with N rows and s splits, split i holds
rows ``i*N//s`` to ``(i+1)*N//s - 1`` of the (optionally shuffled) order. With
``shuffle=True`` the order is ``rows[numpy.random.default_rng(seed).permutation(N)]``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg.blas import dsyrk

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.entropy import ScaledRows, scaled_row_statistics
from isgame.scoring.metrics.score_result import (
    InceptionScoreResult,
    log_of_marginal,
    marginal_and_entropies,
    statistics_to_result,
)
from isgame.scoring.metrics.streaming import StreamingMetric
from isgame.scoring.metrics.validation import PredictionKind, check_splits

#: Rows per pass of the per-row statistics: the two 512 x K = 1000 float64 buffers (8 MiB) stay in cache, where
#: larger passes spill it; smaller ones mean more parallel regions per row, which is what collapses when other
#: processes hold the cores.
ROW_CHUNK = 512
#: Up to this many classes the one-pass (K, K) statistics cost less than reading the rows a second time: the
#: gram's O(K^2) per row overtakes a second O(K) pass between K = 30 and K = 100.
ONE_PASS_STDERR_MAX_CLASSES = 32


def split_bounds(total: int, splits: int) -> np.ndarray:
    """(splits + 1,) int64: split i holds positions ``bounds[i]`` .. ``bounds[i + 1] - 1``, i.e. i*N//s .. (i+1)*N//s - 1."""
    return np.array([i * total // splits for i in range(splits + 1)], dtype=np.int64)


def split_of_rows(total: int, splits: int, *, shuffle: bool, seed: int) -> np.ndarray:
    """Split id (N,) int64 of every row, in the rows' own order: contiguous by position, or, with ``shuffle``,
    by the row's position in ``rows[numpy.random.default_rng(seed).permutation(N)]``."""
    positions = np.arange(total, dtype=np.int64)
    if shuffle:  # row permutation[j] sits at position j of the shuffled order
        permutation = np.random.default_rng(seed).permutation(total)
        positions = np.empty(total, dtype=np.int64)
        positions[permutation] = np.arange(total, dtype=np.int64)
    return np.searchsorted(split_bounds(total, splits), positions, side="right") - 1


def uses_second_pass(num_classes: int, track_stderr: bool) -> bool:
    """Whether a caller that can read its rows twice should take the standard error from
    :meth:`InceptionScoreAccumulator.second_pass` rather than the one-pass (K, K) statistics."""
    return track_stderr and num_classes > ONE_PASS_STDERR_MAX_CLASSES


class InceptionScoreAccumulator(StreamingMetric):
    """Accumulate class predictions batch by batch and compute IS and mutual information.

    Args:
        num_classes: K, the number of classes (>= 2).
        splits: number of contiguous splits for the classic IS (>= 1).
        total: the number of rows that will be fed, N. Required when ``splits > 1`` or
            ``shuffle=True``, because split boundaries are ``i*N//s``.
        shuffle: assign rows to splits through a seeded permutation of 0..N-1.
        seed: seed of that permutation.
        kind: ``"logits"`` or ``"probs"``; what ``update`` receives.
        track_stderr: keep the (K, K) statistics that the standard error needs.

    ``compute()`` returns an :class:`InceptionScoreResult`: the classic IS (higher is better,
    in [1, K]) and the mutual information I(y; x) in nats and bits.
    """

    higher_is_better = True

    def __init__(
        self,
        num_classes: int,
        *,
        splits: int = 1,
        total: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        kind: PredictionKind = "logits",
        track_stderr: bool = True,
    ) -> None:
        if num_classes < 2:
            raise InvalidInputError(f"num_classes must be >= 2, got {num_classes}")
        if total is not None:
            if total < 1:
                raise InvalidInputError(f"total must be >= 1, got {total}")
            check_splits(total, splits)
        elif splits != 1 or shuffle:
            raise InvalidInputError("total (the number of rows N) is required when splits > 1 or shuffle is on")
        if kind not in ("logits", "probs"):
            raise InvalidInputError(f"kind must be 'logits' or 'probs', got {kind!r}")
        self.num_classes = num_classes
        self.splits = splits
        self.total = total
        self.shuffle = shuffle
        self.seed = seed
        self.kind: PredictionKind = kind
        self.track_stderr = track_stderr
        self._bounds: np.ndarray | None = None
        self._split_of_row = self._make_split_assignment()
        # Reused float64 buffers of the per-row statistics (2 x chunk x K): no page faults per chunk.
        self._workspace = torch.empty((2, ROW_CHUNK, num_classes), dtype=torch.float64)
        k, s = num_classes, splits
        self.add_state("prob_sum", lambda: torch.zeros((s, k), dtype=torch.float64))
        self.add_state("neg_entropy_sum", lambda: torch.zeros(s, dtype=torch.float64))
        self.add_state("count", lambda: torch.zeros(s, dtype=torch.int64))
        self.add_state("class_counts", lambda: torch.zeros(k, dtype=torch.int64))
        if track_stderr:
            # The lower triangle of sum_i p_i p_i^T, filled by BLAS's symmetric rank-k update (see _add_gram).
            self.add_state("gram_triangle", lambda: torch.zeros((k, k), dtype=torch.float64))
            self.add_state("neg_entropy_weighted_prob_sum", lambda: torch.zeros(k, dtype=torch.float64))
            self.add_state("neg_entropy_sq_sum", lambda: torch.zeros((), dtype=torch.float64))
        self.reset()

    def _make_split_assignment(self) -> np.ndarray | None:
        """Split id of every row, stored only for shuffle (the permutation needs O(N) memory)."""
        if self.total is None or not self.shuffle:
            return None
        return split_of_rows(self.total, self.splits, shuffle=True, seed=self.seed).astype(np.int32)

    def _split_of_position(self, positions: np.ndarray) -> np.ndarray:
        """Split i holds positions i*N//s .. (i+1)*N//s - 1."""
        if self._bounds is None:
            self._bounds = split_bounds(self.total, self.splits)
        return np.searchsorted(self._bounds, positions, side="right") - 1

    def reset(self) -> None:
        """Forget every row fed so far."""
        super().reset()
        self.position = 0

    def _after_states_change(self) -> None:
        self.rows_seen = int(self.count.sum())

    def seek(self, row: int) -> None:
        """Make the next batch start at global row ``row`` (a process's shard start); splits use global rows."""
        if row < 0 or (self.total is not None and row > self.total):
            raise InvalidInputError(f"row {row} is outside 0..{self.total}")
        self.position = row

    def _update(self, values: object) -> None:
        """Add a batch of logits or probabilities of shape (B, K); rows are numbered from the current position.

        Rows are processed ``ROW_CHUNK`` at a time, so that the float64 working set of the per-row
        statistics stays in cache however large the batch.
        """
        if isinstance(values, (np.ndarray, torch.Tensor)) and values.ndim == 2 and values.shape[0] > ROW_CHUNK:
            for first in range(0, values.shape[0], ROW_CHUNK):
                self._update(values[first : first + ROW_CHUNK])
            return
        self._add(scaled_row_statistics(values, kind=self.kind, row_offset=self.position, workspace=self._workspace))

    def _add(self, rows: ScaledRows) -> None:
        """Add rows given as :class:`ScaledRows`: p = weights * scale (B, K) float64, a_i (B,), top-1 classes (B,)."""
        batch = rows.weights.shape[0]
        if rows.weights.shape[1] != self.num_classes:
            raise InvalidInputError(
                f"batch at row {self.position} has K = {rows.weights.shape[1]} classes, expected {self.num_classes}; "
                "all rows must come from the same classifier"
            )
        if self.total is not None and self.position + batch > self.total:
            raise InvalidInputError(f"received more than total = {self.total} rows; pass the right total")
        self._add_split_sums(rows)
        self.class_counts += torch.bincount(rows.top1, minlength=self.num_classes)
        if self.track_stderr:
            p, a = rows.probabilities, rows.neg_entropy
            self._add_gram(p)
            self.neg_entropy_weighted_prob_sum += a @ p
            self.neg_entropy_sq_sum += (a * a).sum()
        self.rows_seen += batch
        self.position += batch


    def _add_gram(self, p: torch.Tensor) -> None:
        """Add p^T p (one triangle, float64) with BLAS's symmetric rank-k update ``dsyrk``, in place.

        Half a matrix product's work, and still float64: float32 products would be twice as fast again but
        move the standard error by ~1e-6 relative at K = 1000. dsyrk needs a Fortran-ordered matrix: the
        transpose of ``gram_triangle`` (C-ordered) is one, over the same memory, and its upper triangle is
        ``gram_triangle``'s lower one.
        """
        buffer = self.gram_triangle.numpy().T
        rows = np.ascontiguousarray(p.numpy())
        # rows.T is Fortran-ordered (K, B), so dsyrk reads it without a copy and accumulates into the buffer.
        out = dsyrk(1.0, rows.T, beta=1.0, c=buffer, trans=0, lower=0, overwrite_c=1)
        if not np.shares_memory(out, buffer):  # a BLAS wrapper that copied instead of updating in place
            buffer[...] = out

    @property
    def gram(self) -> torch.Tensor:
        """sum_i p_i p_i^T (K, K) float64, symmetric, from the stored triangle."""
        lower = self.gram_triangle.tril()
        return lower + lower.tril(-1).T

    def _add_split_sums(self, rows: ScaledRows) -> None:
        """Add each row's p and a to the sums of its split, as matrix products (float64 dot products, not a
        row-after-row ``index_add_``, which over 5e4 rows of K = 1000 drifted 6e-11 from an exact sum)."""
        batch = rows.weights.shape[0]
        if self._split_of_row is None:
            ends = [0, 0] if self.splits == 1 else self._split_of_position(
                np.array([self.position, self.position + batch - 1], dtype=np.int64))
            if ends[0] == ends[1]:  # the common case: the whole chunk lies in one contiguous split
                self.prob_sum[ends[0]] += rows.scale @ rows.weights
                self.neg_entropy_sum[ends[0]] += rows.neg_entropy.sum()
                self.count[ends[0]] += batch
                return
            ids = self._split_of_position(np.arange(self.position, self.position + batch, dtype=np.int64))
        else:
            ids = self._split_of_row[self.position : self.position + batch]
        # member[s, i] = 1 where row i belongs to split first + s: one (S', B) x (B, K) product sums the S' splits
        # present at once (2 where a contiguous chunk straddles a boundary, all of them when shuffled).
        ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        first, last = int(ids.min()), int(ids.max())
        member = torch.zeros((last - first + 1, batch), dtype=torch.float64)
        member[ids - first, torch.arange(batch)] = 1.0
        self.prob_sum[first : last + 1] += (member * rows.scale) @ rows.weights
        self.neg_entropy_sum[first : last + 1] += member @ rows.neg_entropy
        self.count[first : last + 1] += member.sum(dim=1).to(torch.int64)

    def statistics(self) -> list[torch.Tensor]:
        """The sufficient statistics (the declared states), in a fixed order."""
        return self.states()

    def second_pass(self) -> KLDeviationAccumulator:
        """The standard error's exact second pass over the same rows (call after :meth:`all_reduce`).

        With the marginal p(y) of every row known, each row's KL_i is a dot product: O(K) per row, where the
        one-pass (K, K) statistics cost O(K^2). Feed it the rows again (any order, any batches), all-reduce it,
        and pass it to :meth:`compute`; this accumulator may then be built with ``track_stderr=False``.
        """
        _, marginal, marginal_entropy, conditional_entropy = marginal_and_entropies(self.prob_sum, self.neg_entropy_sum,
                                                                                    self.count)
        return KLDeviationAccumulator(log_of_marginal(marginal), marginal_entropy - conditional_entropy, kind=self.kind)

    def compute(self, second_pass: KLDeviationAccumulator | None = None) -> InceptionScoreResult:
        """The scores of every row fed since the last reset; the standard error from ``second_pass`` when given
        (it must have seen every row once), else from the (K, K) statistics when kept, else NaN."""
        if self.rows_seen == 0:
            raise InvalidInputError("no rows were fed; pass at least one sample")
        if self.total is not None and self.rows_seen != self.total:
            raise InvalidInputError(
                f"received {self.rows_seen} rows but total = {self.total}; split boundaries depend on N, pass the right total"
            )
        if second_pass is not None and second_pass.rows_seen != self.rows_seen:
            raise InvalidInputError(f"the second pass saw {second_pass.rows_seen} rows, the first {self.rows_seen}; "
                                    "feed it every row once")
        gram_path = self.track_stderr and second_pass is None
        return statistics_to_result(
            prob_sum=self.prob_sum,
            neg_entropy_sum=self.neg_entropy_sum,
            count=self.count,
            class_counts=self.class_counts,
            gram=self.gram if gram_path else None,
            neg_entropy_weighted_prob_sum=self.neg_entropy_weighted_prob_sum if gram_path else None,
            neg_entropy_sq_sum=float(self.neg_entropy_sq_sum) if gram_path else math.nan,
            kl_deviation_sums=None if second_pass is None else second_pass.sums(),
            shuffle=self.shuffle,
            seed=self.seed,
        )


class KLDeviationAccumulator(StreamingMetric):
    """Second pass of the standard error of I: sums of d_i = KL_i - I and d_i^2 over rows, float64.

    KL_i = a_i - p_i . log p(y) once the marginal p(y) of all N rows is known (from the first pass); centring
    on I keeps the variance free of the cancellation of sum KL_i^2 - (sum KL_i)^2 / N. Row order and batching
    do not matter, and the sums all-reduce across torchrun processes like the first pass's.

    Args:
        log_marginal: log p(y) (K,) float64, 0 where p(y) = 0 (no row has mass there).
        mutual_information: I in nats, from the same first pass.
        kind: ``"logits"`` or ``"probs"``, as the rows fed.
    """

    def __init__(self, log_marginal: torch.Tensor, mutual_information: float, *, kind: PredictionKind = "logits") -> None:
        self.log_marginal = log_marginal.to(torch.float64)
        self.mutual_information = mutual_information
        self.kind: PredictionKind = kind
        self._workspace = torch.empty((2, ROW_CHUNK, log_marginal.shape[0]), dtype=torch.float64)
        self.add_state("deviation_sum", lambda: torch.zeros((), dtype=torch.float64))
        self.add_state("deviation_sq_sum", lambda: torch.zeros((), dtype=torch.float64))
        self.add_state("rows", lambda: torch.zeros((), dtype=torch.int64))
        self.reset()

    @property
    def rows_seen(self) -> int:
        return int(self.rows)

    def _update(self, values: object) -> None:
        """Add a batch (B, K) of the rows the first pass saw, ``ROW_CHUNK`` rows at a time."""
        if isinstance(values, (np.ndarray, torch.Tensor)) and values.ndim == 2 and values.shape[0] > ROW_CHUNK:
            for first in range(0, values.shape[0], ROW_CHUNK):
                self._update(values[first : first + ROW_CHUNK])
            return
        rows = scaled_row_statistics(values, kind=self.kind, workspace=self._workspace)
        if rows.weights.shape[1] != self.log_marginal.shape[0]:
            raise InvalidInputError(f"second pass: a batch has K = {rows.weights.shape[1]} classes, expected "
                                    f"{self.log_marginal.shape[0]}; feed the rows of the first pass")
        # d_i = a_i - (e_i . L) / t_i - I, with p_i = e_i / t_i never formed.
        deviation = rows.neg_entropy - (rows.weights @ self.log_marginal).mul_(rows.scale) - self.mutual_information
        self.deviation_sum += deviation.sum()
        self.deviation_sq_sum += deviation @ deviation
        self.rows += rows.weights.shape[0]

    def compute(self) -> tuple[float, float]:
        """(sum d_i, sum d_i^2) in nats and nats^2."""
        return float(self.deviation_sum), float(self.deviation_sq_sum)

    def sums(self) -> tuple[float, float]:
        """(sum d_i, sum d_i^2) in nats and nats^2 (:meth:`compute`)."""
        return self.compute()
