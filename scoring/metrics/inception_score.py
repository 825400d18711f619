"""One-call Inception Score of an (N, K) array of logits or probabilities.

This is the streaming accumulator fed in one batch, so the one-shot and streamed paths
cannot drift apart; the standard error takes a second pass over the rows (no (K, K) statistics). See :mod:`scoring.score_result` for every convention.
"""

from __future__ import annotations

import torch

from isgame.scoring.metrics.accumulator import InceptionScoreAccumulator, KLDeviationAccumulator, uses_second_pass
from isgame.scoring.metrics.score_result import InceptionScoreResult
from isgame.scoring.metrics.validation import PredictionKind, check_splits, prediction_shape


def inception_score(
    values: object,
    *,
    kind: PredictionKind = "logits",
    splits: int = 10,
    shuffle: bool = False,
    seed: int = 0,
    track_stderr: bool = True,
) -> InceptionScoreResult:
    """Classic IS over ``splits`` contiguous parts and the split-free mutual information.

    Args:
        values: (N, K) logits or probabilities (numpy array or tensor), K >= 2, N >= splits.
        kind: ``"logits"`` or ``"probs"``.
        splits: number of parts; part i is rows i*N//splits to (i+1)*N//splits - 1.
        shuffle: split a seeded permutation of the rows instead of the given order.
        seed: the permutation's seed (``numpy.random.default_rng(seed)``).
        track_stderr: compute the standard error of I (for K > 32 a second pass over the rows, O(N K) time;
            else the one-pass O(N K^2) statistics, cheaper at small K).

    Returns:
        An :class:`InceptionScoreResult`; IS in [1, K], I in [0, log K] nats.
    """
    n, k = prediction_shape(values, kind=kind)
    check_splits(n, splits)
    second_pass = uses_second_pass(k, track_stderr)
    accumulator = InceptionScoreAccumulator(
        k,
        splits=splits,
        total=n,
        shuffle=shuffle,
        seed=seed,
        kind=kind,
        track_stderr=track_stderr and not second_pass,
    )
    accumulator.update(values)
    return accumulator.compute(_second_pass(accumulator, values, sharded=False) if second_pass else None)


def _second_pass(accumulator: InceptionScoreAccumulator, values: object, *, sharded: bool) -> KLDeviationAccumulator:
    """The standard error's second pass over rows already in memory (after the first pass's all-reduce when
    ``sharded``: each torchrun process then holds a shard and the sums are all-reduced too)."""
    second_pass = accumulator.second_pass()
    if len(values):
        second_pass.update(values)
    if sharded:
        second_pass.all_reduce()
    return second_pass


def mutual_information(values: object, *, kind: PredictionKind = "logits") -> float:
    """I(y; x) = H(y) - E[H(y|x)] of (N, K) logits or probabilities, in nats, in [0, log K].

    Barratt & Sharma's split-free score: one marginal over all N rows; exp of it is the improved
    IS. The standard error and the bits come with :func:`inception_score`.
    """
    return inception_score(values, kind=kind, splits=1, track_stderr=False).mutual_information_nats


def inception_score_of_shards(
    local_logits: torch.Tensor,
    *,
    total: int,
    start: int,
    splits: int = 10,
    track_stderr: bool = False,
) -> InceptionScoreResult:
    """The IS of all ``total`` rows when each torchrun rank holds the (rows, K) logits of rows
    [start, start + rows).

    Splits follow global row indices and the float64 statistics are summed over the ranks (a no-op
    in a single process, where start=0), so the result is :func:`inception_score` of the
    concatenated logits.
    """
    second_pass = uses_second_pass(local_logits.shape[-1], track_stderr)
    accumulator = InceptionScoreAccumulator(local_logits.shape[-1], splits=splits, total=total, kind="logits",
                                            track_stderr=track_stderr and not second_pass)
    accumulator.seek(start)
    if len(local_logits):
        accumulator.update(local_logits)
    accumulator.all_reduce()
    return accumulator.compute(_second_pass(accumulator, local_logits, sharded=True) if second_pass else None)
