"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel, over subsets.

k(x, y) = (x . y / d + 1)^3 for features in R^d. For subsets X (m rows) and Y (m rows),
MMD^2_u = [sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)] / (m (m - 1)) - 2 mean_{i, j} k(x_i, y_j).
KID is the mean over ``subsets`` random subset pairs. Unbiased: it can be negative.

Conventions, as torch-fidelity 0.4's ``metric_kid.py`` (``kid_features_to_metric``):

* defaults 100 subsets of 1000 rows (torch-fidelity's ``kid_subsets`` / ``kid_subset_size``); the subset
  size is capped by the smaller N here, where torch-fidelity refuses N < subset size;
* each subset pair is drawn without replacement by ``np.random.RandomState(seed).choice``, first side then
  second, so the same features and seed give torch-fidelity's subsets and value;
* ``std`` is ``np.std`` of the subset values with ddof 0 (torch-fidelity; torchmetrics' KID too);
  ``stderr`` is the standard error of the mean, std with ddof 1 over sqrt(subsets).

When both sets hold at most ``subset_size`` rows, every subset is a permutation of both whole sets and the
unbiased MMD^2 does not see row order: KID is one value (``whole_sets``, ``subsets`` = 1) with no std or stderr
(NaN; null in JSON), where 100 identical subsets would report a std of pure round-off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from isgame import defaults
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.results import FieldsAsDict

KID_SUBSETS, KID_SUBSET_SIZE = defaults.KID_SUBSETS, defaults.KID_SUBSET_SIZE
STD_DDOF = 0


@dataclass(frozen=True)
class KidResult(FieldsAsDict):
    mean: float
    std: float
    subsets: int
    subset_size: int
    stderr: float = math.nan
    std_ddof: int = STD_DDOF
    #: both sets were no larger than the subset size: one value over the whole sets, no spread
    whole_sets: bool = False

    def to_dict(self) -> dict[str, object]:
        whole = ({"note": f"both sets hold at most {self.subset_size} rows, so every subset is the whole of both: "
                          "one value, no std"} if self.whole_sets else {})
        return {**super().to_dict(), "std_convention": f"std over subsets with ddof {self.std_ddof}, as torch-fidelity; "
                                                "stderr = std with ddof 1 / sqrt(subsets)", **whole}


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(x y^T / d + 1)^3 for (m, d) and (n, d) arrays; shape (m, n).

    The cube is two products: numpy's ``** 3`` calls pow per entry, which cost the robustness matrix's KID most
    of its time; the products agree with it to a few ulp (the references' agreement tests hold at 1e-10)."""
    kernel = x @ y.T / x.shape[1] + 1.0
    return kernel * kernel * kernel


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between equal-size (m, d) sets under the cubic polynomial kernel."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def _as_features(features: object, name: str) -> np.ndarray:
    array = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise InvalidInputError(f"{name}: expected features of shape (N, d) with N >= 2, got shape {array.shape}")
    return array


def kernel_inception_distance(features_1: object, features_2: object, *, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> KidResult:
    """KID between two (N, d) feature sets; subsets of ``min(subset_size, N_1, N_2)`` rows without replacement (one
    value over the whole sets when both hold at most ``subset_size`` rows)."""
    first, second = _as_features(features_1, "first"), _as_features(features_2, "second")
    if first.shape[1] != second.shape[1]:
        raise InvalidInputError(f"feature dimensions differ: {first.shape[1]} vs {second.shape[1]}; "
                                "compute both with the same classifier")
    if subsets < 1:
        raise InvalidInputError(f"{parameter('subsets')} must be >= 1, got {subsets}")
    if subset_size < 2:
        raise InvalidInputError(f"{parameter('subset_size')} must be >= 2, got {subset_size}")
    size = min(subset_size, first.shape[0], second.shape[0])
    if size == first.shape[0] == second.shape[0]:
        return KidResult(mean=unbiased_mmd2(first, second), std=math.nan, subsets=1, subset_size=size,
                         whole_sets=True)
    rng = np.random.RandomState(seed)
    values = np.zeros(subsets)
    for i in range(subsets):
        rows_1 = rng.choice(first.shape[0], size, replace=False)
        rows_2 = rng.choice(second.shape[0], size, replace=False)
        values[i] = unbiased_mmd2(first[rows_1], second[rows_2])
    stderr = float(np.std(values, ddof=1) / math.sqrt(subsets)) if subsets > 1 else math.nan
    return KidResult(mean=float(np.mean(values)), std=float(np.std(values, ddof=STD_DDOF)), subsets=subsets,
                     subset_size=size, stderr=stderr)
