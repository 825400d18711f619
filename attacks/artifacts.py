"""Saving attacked images: an npz of the arrays and a PNG grid made with ``torchvision.utils``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from scoring.atomic_io import write_bytes_atomic


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Quantise float images in [0, 1] to the 256 levels a saved PNG keeps (as floats in [0, 1])."""
    return (images.clamp(0, 1) * 255).round() / 255


def save_images_npz(path: Path, images: torch.Tensor, **arrays: np.ndarray) -> None:
    """Write ``images`` (N, C, H, W) float32 in [0, 1] as key ``images`` plus extra arrays, atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.detach().cpu().numpy().astype(np.float32), **arrays)
    write_bytes_atomic(Path(path), buffer.getvalue())


def image_grid(images: torch.Tensor, *, nrow: int = 10, upscale: int = 4, max_images: int = 100) -> torch.Tensor:
    """A (3, H', W') grid of the first ``max_images`` images, each upscaled by nearest neighbour."""
    from torchvision.utils import make_grid

    shown = images[:max_images].detach().cpu().float()
    if upscale > 1:
        shown = torch.nn.functional.interpolate(shown, scale_factor=upscale, mode="nearest")
    return make_grid(shown, nrow=nrow, padding=2, pad_value=0.5)


def save_image_grid(path: Path, images: torch.Tensor, **grid_options) -> None:
    """Save :func:`image_grid` as a PNG, atomically."""
    from PIL import Image

    grid = image_grid(images, **grid_options)
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    write_bytes_atomic(Path(path), buffer.getvalue())
