"""How images are prepared for a classifier, and the variants that move the score.

The resize filter, antialiasing and uint8 rounding change the IS of the same images (Parmar et
al., CVPR 2022: resizing with different libraries moves FID by up to 7.4). The variants here are
the ones the sensitivity probe sweeps and ``check_claim`` recomputes a claim under.
"""

from __future__ import annotations

import torch

#: label -> the ``load_classifier`` options of that resize
RESIZE_VARIANTS: dict[str, dict[str, object]] = {
    "nearest": {"interpolation": "nearest", "antialias": False},
    "bilinear, antialias": {"interpolation": "bilinear", "antialias": True},
    "bilinear, no antialias": {"interpolation": "bilinear", "antialias": False},
    "bicubic, antialias": {"interpolation": "bicubic", "antialias": True},
    "bicubic, no antialias": {"interpolation": "bicubic", "antialias": False},
}


def quantise_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Round float images in [0, 1] to the 256 levels a saved PNG keeps (still floats in [0, 1])."""
    return (images.clamp(0, 1) * 255).round() / 255
