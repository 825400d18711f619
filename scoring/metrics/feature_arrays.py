"""Boundary checks shared by the feature-space metrics: (N, D) float64 arrays, equal widths, a usable seed.

The newer metrics (Vendi, sliced Wasserstein, RBF MMD, FLD, the N-extrapolations) all take features as
numpy arrays or tensors; this is the one place that turns them into finite float64 ``(N, D)`` arrays and
says, in one line, what was wrong.
"""

from __future__ import annotations

import numpy as np

from isgame.scoring.errors import InvalidInputError


def as_feature_array(values: object, *, name: str, min_rows: int = 2) -> np.ndarray:
    """``values`` as a finite float64 (N, D) array with N >= ``min_rows``; a tensor is detached and moved to CPU."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < min_rows or array.shape[1] < 1:
        raise InvalidInputError(f"{name}: expected features of shape (N, D) with N >= {min_rows}, got shape "
                                f"{array.shape}; pass one row per sample")
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{name}: features contain NaN or inf; drop or fix those rows")
    return array


def check_same_width(first: np.ndarray, second: np.ndarray, names: tuple[str, str]) -> None:
    """Both (N, D) arrays have the same D, or one line saying which differ."""
    if first.shape[1] != second.shape[1]:
        raise InvalidInputError(f"feature dimensions differ: {names[0]} has {first.shape[1]}, {names[1]} has "
                                f"{second.shape[1]}; compute both with the same classifier")
