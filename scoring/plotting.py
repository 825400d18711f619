"""Figures beside their results: the one base class every display derives from, and image grids.

Every result that has a figure has a ``SomethingDisplay`` beside it, in scikit-learn's manner:
``SomethingDisplay(result).plot(ax=None)`` makes a figure only when no axes are given, keeps ``ax_`` (one panel)
or ``axes_`` (a row of panels) and ``figure_``, and returns itself. :class:`Display` holds that set-up once; a
display says how large its figure is and draws. Displays draw on whatever matplotlib backend is active; the
application saves them (:mod:`isgame.app.figures`).
"""

from __future__ import annotations

import math

import torch


class Display:
    """Base of the displays: a subclass sets :attr:`figsize` (inches) and :attr:`panels` (axes in one row) and
    implements :meth:`draw`; :meth:`plot` makes the figure when no axes are given."""

    #: (width, height) in inches of a new figure
    figsize: tuple[float, float] = (6.5, 4.0)
    #: axes in one row: 1 gives one ``Axes`` (kept as ``ax_``), more an array (kept as ``axes_``)
    panels: int = 1
    #: rows the panels are laid out in (``panels`` a multiple of it); ``axes_`` is flat either way
    rows: int = 1
    #: keyword arguments of ``matplotlib.pyplot.subplots`` beyond the size and the panels
    subplot_options: dict = {}

    def __init__(self, result=None) -> None:
        self.result = result

    def figure_size(self) -> tuple[float, float]:
        """The size of a new figure (a display whose size follows its data overrides this)."""
        return self.figsize

    def plot(self, *, ax=None, axes=None) -> "Display":
        """Draw on ``ax`` (one panel) or ``axes`` (several), or on a new figure; returns ``self``."""
        given = ax if ax is not None else axes
        if given is None:
            import matplotlib.pyplot as plt

            _, given = plt.subplots(self.rows, self.panels // self.rows, figsize=self.figure_size(),
                                    **self.subplot_options)
            if self.rows > 1:
                given = given.ravel()
        self.draw(given)
        if self.panels == 1:
            self.ax_, self.figure_ = given, given.figure
        else:
            self.axes_, self.figure_ = given, given[0].figure
        return self

    def draw(self, axes) -> None:
        """Draw the figure on ``axes`` (an ``Axes``, or an array of :attr:`panels` of them)."""
        raise NotImplementedError


#: images are upscaled to about this many pixels a side in grids (8x8 digits 4x; 299 px Inception images not at all)
GRID_IMAGE_SIDE = 32


def image_grid(images: torch.Tensor, *, nrow: int = 10, upscale: int | None = None,
               max_images: int = 100) -> torch.Tensor:
    """A (3, H', W') grid of the first ``max_images`` images, each upscaled by nearest neighbour (``upscale``
    None: by up to 4 so that a side reaches about :data:`GRID_IMAGE_SIDE` pixels; never for large images)."""
    if upscale is None:
        upscale = max(1, min(4, GRID_IMAGE_SIDE // max(images.shape[-2:])))
    shown = images[:max_images].detach().cpu().float()
    if upscale > 1:
        shown = torch.nn.functional.interpolate(shown, scale_factor=upscale, mode="nearest")
    return tile_images(shown, nrow=nrow, padding=2, pad_value=0.5)


def tile_images(images: torch.Tensor, *, nrow: int, padding: int, pad_value: float) -> torch.Tensor:
    """(B, C, H, W) images in rows of ``nrow`` on a ``pad_value`` background, grey (C = 1) as RGB: the layout of
    ``torchvision.utils.make_grid(images, nrow, padding, pad_value=pad_value)``, pixel for pixel (a single image
    comes back unpadded, as there).

    Not make_grid itself: importing torchvision imports ``torch._dynamo`` (torchvision's ops need it), 2.8 s in
    ``python -X importtime`` here, which every digits audit and attack paid for a loop of copies. The suite checks
    equality with make_grid.
    """
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    count, channels, height, width = images.shape
    if count == 1:
        return images[0].clone()
    columns = min(nrow, count)
    rows = math.ceil(count / columns)
    grid = images.new_full((channels, (height + padding) * rows + padding, (width + padding) * columns + padding),
                           pad_value)
    for index, image in enumerate(images):
        top, left = ((height + padding) * (index // columns) + padding, (width + padding) * (index % columns) + padding)
        grid[:, top : top + height, left : left + width] = image
    return grid


