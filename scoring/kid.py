"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel, over subsets.

k(x, y) = (x . y / d + 1)^3 for features in R^d. For subsets X (m rows) and Y (m rows),
MMD^2_u = [sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)] / (m (m - 1)) - 2 mean_{i, j} k(x_i, y_j).
KID is the mean over ``subsets`` random subset pairs (seeded), with their std (ddof 1 across
subsets; torchmetrics reports ddof 0, torch-fidelity ddof 0). Unbiased: it can be negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError


@dataclass(frozen=True)
class KidResult:
    mean: float
    std: float
    subsets: int
    subset_size: int

    def to_dict(self) -> dict[str, float]:
        return dict(vars(self))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(x y^T / d + 1)^3 for (m, d) and (n, d) arrays; shape (m, n)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between equal-size (m, d) sets under the cubic polynomial kernel."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def kernel_inception_distance(features_1: object, features_2: object, *, subsets: int = 50, subset_size: int = 200,
                              seed: int = 0) -> KidResult:
    """KID between two (N, d) feature sets; subsets of ``min(subset_size, N_1, N_2)`` rows without replacement."""
    arrays = []
    for features in (features_1, features_2):
        array = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
        if array.ndim != 2 or array.shape[0] < 2:
            raise InvalidInputError(f"expected features of shape (N, d) with N >= 2, got {array.shape}")
        arrays.append(array)
    if arrays[0].shape[1] != arrays[1].shape[1]:
        raise InvalidInputError(f"feature dimensions differ: {arrays[0].shape[1]} vs {arrays[1].shape[1]}")
    if subsets < 1:
        raise InvalidInputError(f"subsets must be >= 1, got {subsets}")
    size = min(subset_size, arrays[0].shape[0], arrays[1].shape[0])
    rng = np.random.default_rng(seed)
    values = [unbiased_mmd2(arrays[0][rng.choice(arrays[0].shape[0], size, replace=False)],
                            arrays[1][rng.choice(arrays[1].shape[0], size, replace=False)]) for _ in range(subsets)]
    return KidResult(mean=float(np.mean(values)), std=float(np.std(values, ddof=1)) if subsets > 1 else 0.0,
                     subsets=subsets, subset_size=size)
