"""Probabilities, log-probabilities and entropies of class predictions, in float64.

Conventions: natural logs (nats) unless a name ends in ``_bits``; 0 * log 0 = 0.
No function here ever evaluates log(0) on a probability that is then multiplied by a
non-zero weight.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from isgame.scoring.metrics.validation import PROBABILITY_SUM_ATOL, PredictionKind, check_predictions

LN2 = math.log(2.0)


class ScaledRows(NamedTuple):
    """Per-row statistics of (B, K) predictions with p = ``weights * scale[:, None]`` left unformed.

    ``weights`` (B, K) float64 (unnormalised probabilities), ``scale`` (B,) float64, ``neg_entropy``
    a_i = sum_k p_ik log p_ik (B,) in nats, ``top1`` (B,) int64. Sums of p over rows are then one
    matrix-vector product, ``scale @ weights``, instead of a division pass and a sum.
    """

    weights: torch.Tensor
    scale: torch.Tensor
    neg_entropy: torch.Tensor
    top1: torch.Tensor

    @property
    def probabilities(self) -> torch.Tensor:
        """p (B, K) float64, formed (one pass) for the callers that need it row by row."""
        return self.weights * self.scale.unsqueeze(1)


def row_statistics(values: object, *, kind: PredictionKind, row_offset: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(p, a, top1)`` of (B, K) logits or probabilities: p (B, K) float64, a_i = sum_k p_ik log p_ik (B,) in nats, top-1 (B,).

    :func:`scaled_row_statistics` with p formed.
    """
    rows = scaled_row_statistics(values, kind=kind, row_offset=row_offset)
    return rows.probabilities, rows.neg_entropy, rows.top1


def scaled_row_statistics(values: object, *, kind: PredictionKind, row_offset: int = 0,
                          workspace: torch.Tensor | None = None) -> ScaledRows:
    """What the accumulator keeps per row of (B, K) logits or probabilities, as :class:`ScaledRows`; the input is not modified.

    Float inputs take a fused path. Logits: one exp per value, e = exp(x - max x), p = e / t with
    t = sum_k e_k, ``a = (sum_k e_k (x_k - max x)) / t - log t`` (equal to the log-softmax form up to
    float64 rounding, a few 1e-16), and no separate finiteness pass: a NaN or inf anywhere in a row
    makes its max or its ``a`` non-finite, and only then are the rows checked one by one for the message.
    Probabilities: one pass for the row sums and one for the minimum replace the separate checks, with
    the same values as before. Anything that fails a fast check, and integers, bad types or shapes, go
    through :func:`check_predictions`, whose one-line error names the row.

    ``workspace``: optional float64 buffer of shape (2, R, K), R >= B, that the logits path writes into instead of
    allocating (``weights`` is then a view of it, valid until its next use). Fresh (B, K) float64 tensors cost a
    page fault per 4 KiB on every call, measured as much time as the arithmetic itself.
    """
    rows = _float_rows(values)
    if rows is not None:
        fast = _logit_statistics(rows, workspace) if kind == "logits" else _probability_statistics(rows)
        if fast is not None:
            return fast
    p, log_p = probabilities_and_log_probabilities(values, kind=kind, row_offset=row_offset)
    return ScaledRows(p, torch.ones(p.shape[0], dtype=torch.float64), negative_entropy_per_row(p, log_p), p.argmax(dim=1))


def _top1(rows: torch.Tensor) -> torch.Tensor:
    """Index of each row's first maximum (B,) int64, as ``torch.argmax``; numpy's argmax is vectorised
    and ~10x faster on CPU. A NaN counts as the maximum, which only matters for rows rejected later."""
    return torch.from_numpy(np.argmax(rows.numpy(), axis=1).astype(np.int64, copy=False))


def _logit_statistics(logits: torch.Tensor, workspace: torch.Tensor | None = None) -> ScaledRows | None:
    """The fused path of :func:`scaled_row_statistics` for logits; None when a row is not finite."""
    if workspace is None or workspace.shape[1] < logits.shape[0] or workspace.shape[2] != logits.shape[1]:
        workspace = torch.empty((2, *logits.shape), dtype=torch.float64)
    shifted, weights = workspace[0, : logits.shape[0]], workspace[1, : logits.shape[0]]
    top1 = _top1(logits)
    # One pass, computed in float64 (a float64 peak promotes it; float32 - float32 is exact in float64), into the
    # workspace: never the caller's array, even when it is float64.
    torch.sub(logits, logits.gather(1, top1.unsqueeze(1)).to(torch.float64), out=shifted)
    torch.exp(shifted, out=weights)
    total = weights.sum(dim=1)
    scale = total.reciprocal()
    # sum_k e_k s_k, with the product written over s (no longer needed) instead of a new (B, K) tensor.
    a = shifted.mul_(weights).sum(dim=1).mul_(scale).sub_(total.log_())
    # A NaN or inf logit makes its row's peak NaN or inf, or its shifted values NaN or -inf, and so its a NaN.
    if not bool(torch.isfinite(a).all()):
        return None
    return ScaledRows(weights, scale, a, top1)


def _probability_statistics(probs: torch.Tensor) -> ScaledRows | None:
    """The fused path for probabilities; None when a row is not finite, has a negative value or does not sum to 1
    within ``PROBABILITY_SUM_ATOL`` (then :func:`check_predictions` names the row). A NaN or inf makes its row's
    sum non-finite, so the sums are the only finiteness check needed."""
    total = probs.sum(dim=1, keepdim=True, dtype=torch.float64)
    if not bool(((total - 1).abs() <= PROBABILITY_SUM_ATOL).all()) or bool((probs.amin(dim=1) < 0).any()):
        return None
    p = probs.to(torch.float64) / total
    # p log p with 0 log 0 = 0: log(0) * 0 is the only NaN source (the rows are finite), and log + mul
    # vectorise where xlogy does not (2x faster, the same values).
    a = p.log().mul_(p).nan_to_num_(0.0).sum(dim=1)
    return ScaledRows(p, torch.ones(p.shape[0], dtype=torch.float64), a, _top1(p))


def _float_rows(values: object) -> torch.Tensor | None:
    """A CPU tensor view of well-shaped float predictions (B >= 1, K >= 2), or None to take the checked path."""
    if isinstance(values, np.ndarray) and values.dtype in (np.float32, np.float64):
        tensor = torch.from_numpy(values if values.flags.writeable else values.copy())
    elif isinstance(values, torch.Tensor) and values.dtype in (torch.float32, torch.float64):
        tensor = values.detach().cpu()
    else:
        return None
    return tensor if tensor.ndim == 2 and tensor.shape[0] >= 1 and tensor.shape[1] >= 2 else None


def probabilities_and_log_probabilities(
    values: object, *, kind: PredictionKind, row_offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (N, K) logits or probabilities; return ``(p, log_p)`` as float64 (N, K).

    Logits go through ``log_softmax`` in float64, so ``log_p`` is finite for finite logits.
    For probabilities, ``log_p`` is ``-inf`` exactly where ``p == 0``; callers must pair it
    with ``torch.xlogy``-style products, as the functions below do.
    """
    tensor = check_predictions(values, kind=kind, row_offset=row_offset)
    if kind == "logits":
        log_p = torch.log_softmax(tensor, dim=1)
        return log_p.exp(), log_p
    # check_predictions already renormalised the rows; log(0) = -inf is never weighted by p > 0.
    return tensor, torch.log(tensor)


def negative_entropy_per_row(p: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """sum_k p_k log p_k for each row of (N, K) float64 inputs, in nats; shape (N,), values <= 0."""
    return torch.where(p > 0, p * log_p, torch.zeros((), dtype=p.dtype)).sum(dim=1)


def entropy_nats(p: torch.Tensor) -> float:
    """Shannon entropy of one distribution p of shape (K,), in nats (0 log 0 = 0)."""
    return float(-torch.special.xlogy(p, p).sum())

