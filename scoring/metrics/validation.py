"""Input checks at the library boundary, in the manner of scikit-learn's ``check_array``.

Each check validates once and raises :class:`~scoring.errors.InvalidInputError` (bad value)
or :class:`~scoring.errors.InvalidTypeError` (bad type) with a one-line message.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError, InvalidTypeError, parameter

PredictionKind = Literal["logits", "probs"]

#: Rows of probabilities must sum to 1 within this absolute tolerance.
PROBABILITY_SUM_ATOL = 1e-4
#: Float image values at most this far outside [0, 1] (after scaling) are rounding, and are clipped.
IMAGE_RANGE_ATOL = 1e-4


def as_float64_tensor(values: object, *, name: str) -> torch.Tensor:
    """Convert a numpy array or tensor of real numbers to a float64 CPU tensor.

    Raises InvalidTypeError for object, string, boolean or complex data.
    """
    check_real_array(values, name=name)
    if isinstance(values, torch.Tensor):
        return values.detach().to(device="cpu", dtype=torch.float64)
    return torch.from_numpy(np.array(values, dtype=np.float64))  # a writable copy (memory maps are read-only)


def check_real_array(values: object, *, name: str) -> None:
    """Require a numpy array or tensor of real numbers (not object, string, boolean or complex data)."""
    if isinstance(values, torch.Tensor):
        if values.is_complex() or values.dtype == torch.bool:
            raise InvalidTypeError(f"{name}: expected real numbers, got dtype {values.dtype}; pass float logits or probabilities")
    elif isinstance(values, np.ndarray):
        if values.dtype.kind not in "fiu":
            raise InvalidTypeError(
                f"{name}: expected a numeric array, got dtype {values.dtype}; save logits or probabilities as float32/float64"
            )
    else:
        raise InvalidTypeError(f"{name}: expected a numpy array or torch tensor, got {type(values).__name__}")


def first_bad_row(mask: torch.Tensor) -> int:
    """Index of the first True row of a (N,) or (N, K) boolean mask."""
    rows = mask.reshape(mask.shape[0], -1).any(dim=1)
    return int(torch.nonzero(rows)[0, 0])


def check_predictions(
    values: object,
    *,
    kind: PredictionKind,
    name: str = "predictions",
    row_offset: int = 0,
    atol: float = PROBABILITY_SUM_ATOL,
) -> torch.Tensor:
    """Validate logits or probabilities of shape (N, K) and return them as float64.

    ``row_offset`` is added to row numbers in messages so that a streamed batch reports
    the global row. Probabilities are renormalised exactly (divided by their row sum)
    after the tolerance check, so that they agree with the logits they came from.
    """
    prediction_shape(values, kind=kind, name=name)
    tensor = as_float64_tensor(values, name=name)
    nonfinite = ~torch.isfinite(tensor)
    if nonfinite.any():
        row = first_bad_row(nonfinite)
        bad = tensor[row][nonfinite[row]][0].item()
        raise InvalidInputError(
            f"{name}: row {row + row_offset} contains {bad} (NaN or inf); remove or fix that sample before scoring"
        )
    if kind == "probs":
        negative = tensor < 0
        if negative.any():
            row = first_bad_row(negative)
            raise InvalidInputError(
                f"{name}: row {row + row_offset} has a negative probability ({tensor[row].min().item():.3g}); "
                f"pass probabilities in [0, 1], or use {parameter('kind', 'logits')}"
            )
        sums = tensor.sum(dim=1)
        off = (sums - 1.0).abs() > atol
        if off.any():
            row = first_bad_row(off)
            raise InvalidInputError(
                f"{name}: row {row + row_offset} sums to {sums[row].item():.6g}, not 1 within {atol:g}; "
                f"pass softmax outputs, or use {parameter('kind', 'logits')} for unnormalised scores"
            )
        tensor = tensor / sums.unsqueeze(1)
    return tensor


def prediction_shape(values: object, *, kind: PredictionKind, name: str = "predictions") -> tuple[int, int]:
    """(N, K) of logits or probabilities after checking their kind, type and shape; the values are not read."""
    if kind not in ("logits", "probs"):
        raise InvalidInputError(f"kind must be 'logits' or 'probs', got {kind!r}")
    check_real_array(values, name=name)
    if values.ndim != 2:
        raise InvalidInputError(
            f"{name}: expected {kind} of shape (N, K) with K >= 2, got shape {tuple(values.shape)}; pass a 2-D array"
        )
    n, k = values.shape
    if k < 2:
        raise InvalidInputError(f"{name}: expected K >= 2 classes, got shape {(n, k)}; the score needs at least two classes")
    if n == 0:
        raise InvalidInputError(f"{name}: got 0 rows; pass at least one sample")
    return int(n), int(k)


def check_splits(n: int, splits: int) -> None:
    """Require 1 <= splits <= n."""
    if isinstance(splits, bool) or not isinstance(splits, int):
        raise InvalidTypeError(f"splits must be an integer, got {type(splits).__name__}")
    if splits < 1:
        raise InvalidInputError(f"splits must be >= 1, got {splits}")
    if n < splits:
        raise InvalidInputError(f"N = {n} samples is fewer than splits = {splits}; use {parameter('splits', max(n, 1))} or fewer, or pass more samples")


def check_images(images: object, *, name: str = "images", row_offset: int = 0, atol: float = IMAGE_RANGE_ATOL) -> torch.Tensor:
    """Validate float images (N, C, H, W) in [0, 1] with C in {1, 3, 4}; return them as a float tensor.

    Values at most ``atol`` outside [0, 1] (float rounding, e.g. 1 + 1.2e-7) are clipped into it;
    anything further out is refused with the image's real min and max.
    """
    if not isinstance(images, torch.Tensor):
        raise InvalidTypeError(f"{name}: expected a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise InvalidTypeError(f"{name}: expected float images in [0, 1], got dtype {images.dtype}; divide uint8 images by 255")
    if images.ndim != 4:
        raise InvalidInputError(f"{name}: expected images of shape (N, C, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] not in (1, 3, 4):
        raise InvalidInputError(
            f"{name}: expected 1, 3 or 4 channels at axis 1 of (N, C, H, W), got shape {tuple(images.shape)}; "
            "channels-last arrays must be uint8 (N, H, W, C)"
        )
    nonfinite = ~torch.isfinite(images)
    if nonfinite.any():
        raise InvalidInputError(f"{name}: image {first_bad_row(nonfinite) + row_offset} contains NaN or inf; fix that image")
    outside = (images < -atol) | (images > 1 + atol)
    if outside.any():
        row = first_bad_row(outside)
        raise InvalidInputError(out_of_range_message(
            name, row + row_offset, images[row].min().item(), images[row].max().item(), atol=atol))
    if (images < 0).any() or (images > 1).any():
        images = images.clamp(0, 1)
    return images


def out_of_range_message(name: str, row: int, low: float, high: float, *, atol: float = IMAGE_RANGE_ATOL,
                         peak: float = 1.0, hint: str = "") -> str:
    """``NAME: image ROW has values in [LOW, HIGH], expected [0, PEAK] (within ATOL); ...`` with enough digits to see why."""
    fix = "rescale float images to [0, 1]"
    if peak == 1 and -1 - atol <= low < -atol and high <= 1 + atol:
        fix = "images in [-1, 1] (a tanh output) map to [0, 1] with (x + 1) / 2"
    return (f"{name}: image {row} has values in [{low:.6g}, {high:.6g}], expected [0, {peak:g}] "
            f"within {atol * peak:g}{hint}; {fix}")
