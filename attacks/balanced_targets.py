"""Split-balanced targets: per group of the score's protocol, the labels that even out the group's class
histogram at the least cost, as a linear assignment.

A group of n_g images scores at most exp(H(histogram)) (:mod:`isgame.attacks.score_protocol`), highest
when every class holds n_g // K images and n_g mod K classes one more. Choosing which image takes which
class is an assignment of rows to class slots: class c offers n_g // K slots at the cost of moving an
image there, plus one optional slot whose cost carries a surcharge M large enough that exactly
n_g mod K optional slots are used (any assignment using one more pays M more than the whole spread of
real costs), so every class gets its quota. The cost of image i for class c is its logit margin
max_j z_ij - z_ic (0 for the class it already has): the logit gap a targeted step must close.
scipy's ``linear_sum_assignment`` solves it exactly (Crouse 2016, the modified Jonker-Volgenant
algorithm), in O(n_g^3); above :data:`EXACT_ASSIGNMENT_LIMIT` cost-matrix cells (ImageNet-sized
groups: 5000 rows x 1000 classes) a greedy pass takes the cheapest (image, class) pairs while the
class has room, which is not guaranteed optimal and says so in :func:`balanced_targets`' result.
"""

from __future__ import annotations

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError

#: the largest cost matrix (rows x slots) solved exactly; beyond it the greedy assignment runs
EXACT_ASSIGNMENT_LIMIT = 4_000_000


def logit_margins(logits: torch.Tensor) -> np.ndarray:
    """(N, K) float64 cost of each class for each row: max_j z_ij - z_ic, 0 for the top class."""
    z = logits.detach().double()
    return (z.max(dim=1, keepdim=True).values - z).cpu().numpy()


def assign_group(cost: np.ndarray) -> np.ndarray:
    """(n,) class per row minimising the total ``cost`` (n, K) subject to the most even histogram."""
    from scipy.optimize import linear_sum_assignment

    n, k = cost.shape
    floor = n // k
    mandatory = np.repeat(np.arange(k), floor)
    columns = np.concatenate([mandatory, np.arange(k)])
    if n * columns.size > EXACT_ASSIGNMENT_LIMIT:
        return greedy_assign_group(cost)
    # Any assignment using one optional slot more than n mod K pays M more; real costs differ by less than M.
    surcharge = n * (float(cost.max()) + 1.0)
    matrix = np.concatenate([cost[:, mandatory], cost + surcharge], axis=1)
    rows, chosen = linear_sum_assignment(matrix)
    classes = np.empty(n, dtype=np.int64)
    classes[rows] = columns[chosen]
    return classes


def greedy_assign_group(cost: np.ndarray) -> np.ndarray:
    """The greedy stand-in for large groups: cheapest (row, class) pairs first, each class up to n // K rows and
    n mod K classes (the first to ask) one more. Balanced, not necessarily the least cost."""
    n, k = cost.shape
    floor, extra = divmod(n, k)
    room = np.full(k, floor, dtype=np.int64)
    extras_left = extra
    classes = np.full(n, -1, dtype=np.int64)
    for flat in np.argsort(cost, axis=None, kind="stable"):
        row, c = divmod(int(flat), k)
        if classes[row] >= 0:
            continue
        if room[c] > 0:
            room[c] -= 1
        elif extras_left > 0 and room[c] == 0:
            extras_left -= 1
            room[c] = -1  # this class took its one extra slot
        else:
            continue
        classes[row] = c
    return classes


def balanced_targets(logits: torch.Tensor, groups: list[torch.Tensor]) -> torch.Tensor:
    """(N,) int64 target per row of (N, K) ``logits``: per group, the most even histogram at the least total logit
    margin; rows in no group keep their top class."""
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise InvalidInputError(f"expected logits of shape (N, K) with K >= 2, got shape {tuple(logits.shape)}")
    cost = logit_margins(logits)
    targets = torch.from_numpy(cost.argmin(axis=1).astype(np.int64))
    for group in groups:
        index = group.numpy()
        targets[group] = torch.from_numpy(assign_group(cost[index]))
    return targets
