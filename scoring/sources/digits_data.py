"""scikit-learn's bundled 8x8 digits, split once for the whole toolkit.

1797 images, 10 classes, pixel values 0..16 mapped to [0, 1] (1 = ink). The split is
stratified by class with ``train_test_split(test_size=0.3, random_state=0)``:
1257 training images ("the training set", which memorisation probes replay) and
540 held-out images ("real held-out samples", the reference for every score).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

DIGITS_TEST_FRACTION = 0.3
DIGITS_SPLIT_SEED = 0
DIGITS_NUM_CLASSES = 10
DIGITS_IMAGE_SIZE = (8, 8)


@dataclass(frozen=True)
class DigitsSplit:
    """Images (N, 1, 8, 8) float32 in [0, 1] and labels (N,) int64 of both parts."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def digits_split() -> DigitsSplit:
    """The fixed train / held-out split of ``sklearn.datasets.load_digits``, as fresh tensors on every call: a
    caller that writes into them (``images[:8] = 0``) changes its own copy, never the split every later score
    reads (the split is computed once; a copy of its 474 KB costs microseconds)."""
    return DigitsSplit(*(torch.from_numpy(array.copy()) for array in _split_arrays()))


@lru_cache(maxsize=1)
def _split_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels) as read-only arrays, computed once."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = (data.images.astype(np.float32) / 16.0)[:, None, :, :]
    labels = data.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=labels
    )
    arrays = tuple(np.ascontiguousarray(array) for array in (train_x, train_y, test_x, test_y))
    for array in arrays:
        array.flags.writeable = False
    return arrays
