"""Figures and image files on disk: the one place that switches matplotlib to a file backend and saves
figures, image grids (``torchvision.utils.make_grid``'s layout) and image arrays, each atomically.

Displays (``SomethingDisplay(...).plot()``) live beside their results and draw on whatever backend
is active; the application saves them through :func:`save_display`, which needs no display server.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from isgame.scoring.plotting import image_grid  # re-exported: the app saves what the displays draw
from isgame.scoring.runtime.atomic_io import write_bytes_atomic


def use_file_backend() -> None:
    """Draw off-screen (Agg): reports are written on machines without a display."""
    import matplotlib

    matplotlib.use("Agg")


def save_figure_atomic(figure, path: Path, *, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())


def close_figure(figure) -> None:
    """Release a matplotlib figure once saved."""
    import matplotlib.pyplot as plt

    plt.close(figure)


def save_display(display, path: Path) -> str:
    """Save a display's figure as PNG atomically, close it, and return the file name."""
    save_figure_atomic(display.figure_, path)
    close_figure(display.figure_)
    return Path(path).name


def save_images_npz(path: Path, images: torch.Tensor, **arrays: np.ndarray) -> None:
    """Write ``images`` (N, C, H, W) float32 in [0, 1] as key ``images`` plus extra arrays, atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.detach().cpu().numpy().astype(np.float32), **arrays)
    write_bytes_atomic(Path(path), buffer.getvalue())


def save_image_grid(path: Path, images: torch.Tensor, **grid_options) -> None:
    """Save :func:`image_grid` as a PNG, atomically."""
    from PIL import Image

    grid = image_grid(images, **grid_options)
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    write_bytes_atomic(Path(path), buffer.getvalue())
