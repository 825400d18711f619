"""Image grids: torchvision's make_grid layout, without importing torchvision."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torchvision.utils import make_grid

from isgame.scoring.plotting import image_grid, tile_images


@pytest.mark.parametrize("count, channels, nrow", [(1, 1, 10), (2, 3, 10), (7, 1, 3), (10, 3, 10), (23, 1, 10),
                                                   (100, 1, 10), (5, 3, 8)])
def test_tiles_match_torchvision_make_grid_pixel_for_pixel(count, channels, nrow):
    images = torch.rand(count, channels, 9, 7, generator=torch.Generator().manual_seed(count))
    ours = tile_images(images, nrow=nrow, padding=2, pad_value=0.5)
    assert torch.equal(ours, make_grid(images, nrow=nrow, padding=2, pad_value=0.5))


def test_image_grid_upscales_then_tiles_as_make_grid():
    digits = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    upscaled = torch.nn.functional.interpolate(digits, scale_factor=4, mode="nearest")
    assert torch.equal(image_grid(digits), make_grid(upscaled, nrow=10, padding=2, pad_value=0.5))
    assert image_grid(digits).shape == (3, 2 + 2 * 34, 2 + 10 * 34)


def test_saving_a_grid_does_not_import_torchvision(tmp_path):
    """torchvision's import pulls in torch._dynamo (2.8 s here); a digits grid does not need it."""
    program = textwrap.dedent(f"""
        import sys
        import torch
        from isgame.app.figures import save_image_grid
        save_image_grid({str(tmp_path / "grid.png")!r}, torch.rand(15, 1, 8, 8))
        print("torchvision" in sys.modules)
    """)
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "False"
    from PIL import Image

    with Image.open(tmp_path / "grid.png") as saved:
        assert saved.size == (2 + 10 * 34, 2 + 2 * 34)
