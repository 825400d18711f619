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


#: figures are saved at twice the CSS pixel density (96 px an inch) and shown at half their pixel width, sharp on
#: high-density screens: a point of text is then 4/3 CSS px, so 7 pt is 9.3 px
FIGURE_DPI = 192
#: PNG pixels per CSS pixel of a saved figure (an image grid without text is shown pixel for pixel)
PIXEL_RATIO = 2
#: the report's content width in CSS px: report_html's page is at most this wide, so a wider figure is shrunk
REPORT_CONTENT_WIDTH = 1200
#: the PNG text chunk that carries the figure's smallest font size, in points, for the report to read back
MIN_TEXT_KEY = "isgame-min-text-pt"


def smallest_text_points(figure) -> float | None:
    """The smallest font size, in points, of any visible, non-empty text of ``figure`` (None: it has none)."""
    from matplotlib.text import Text

    sizes = [text.get_fontsize() for text in figure.findobj(Text)
             if text.get_visible() and text.get_text().strip() and _drawn(text)]
    return min(sizes) if sizes else None


def _drawn(text) -> bool:
    """Whether a text is drawn: an axis's tick labels outside its view limits are artists that never are."""
    axes = text.axes
    if axes is None or not hasattr(text, "get_position"):
        return True
    for axis, index in ((axes.xaxis, 0), (axes.yaxis, 1)):
        if text in axis.get_ticklabels(which="both"):
            low, high = sorted(axis.get_view_interval())
            position = text.get_position()[index]
            return low - 1e-9 * (high - low) <= position <= high + 1e-9 * (high - low)
    return True


def save_figure_atomic(figure, path: Path, *, dpi: int = FIGURE_DPI) -> None:
    """Save a matplotlib figure as PNG atomically, its smallest font size in the PNG's text chunk
    :data:`MIN_TEXT_KEY` (see :func:`figure_layout`)."""
    smallest = smallest_text_points(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight",
                   metadata={} if smallest is None else {MIN_TEXT_KEY: f"{smallest:g}"})
    write_bytes_atomic(path, buffer.getvalue())


def figure_layout(path: Path, *, content_width: int = REPORT_CONTENT_WIDTH) -> dict[str, object]:
    """How the report shows the PNG at ``path``: its pixel size, its displayed width in CSS px (a saved figure at
    1/:data:`PIXEL_RATIO` of its pixels, an image grid pixel for pixel, either at most ``content_width``) and
    the smallest text at that width, ``min_text_px``: font pt x dpi/72 pixels in the PNG, x displayed/PNG width
    (None for an image without text)."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        points = image.text.get(MIN_TEXT_KEY) if hasattr(image, "text") else None
        dpi = float((image.info.get("dpi") or (FIGURE_DPI,))[0])
    ratio = 1 if points is None else PIXEL_RATIO
    displayed = min(width / ratio, content_width)
    min_text = None if points is None else float(points) * dpi / 72 * displayed / width
    return {"png_width": width, "png_height": height, "displayed_width": round(displayed, 1),
            "min_text_px": None if min_text is None else round(min_text, 2)}


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
