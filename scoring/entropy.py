"""Probabilities, log-probabilities and entropies of class predictions, in float64.

Conventions: natural logs (nats) unless a name ends in ``_bits``; 0 * log 0 = 0.
No function here ever evaluates log(0) on a probability that is then multiplied by a
non-zero weight.
"""

from __future__ import annotations

import math

import torch

from isgame.scoring.validation import PredictionKind, check_predictions

LN2 = math.log(2.0)


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

