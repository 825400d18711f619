"""Arrays of images: layout from the shape, value range (0-1, 0-255, detected), clipping at the edge, streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import isgame.scoring.sources.image_arrays as image_arrays
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.validation import IMAGE_RANGE_ATOL, check_images
from isgame.scoring.sources.image_arrays import NpyRows, array_image_source, image_layout
from isgame.scoring.sources.samples import open_images

RNG = np.random.default_rng(3)
NHWC = RNG.integers(0, 256, size=(5, 9, 7, 3), dtype=np.uint8)  # non-square, so a wrong transpose shows
EXPECTED = torch.from_numpy(NHWC.transpose(0, 3, 1, 2).astype(np.float64) / 255.0)  # (N, C, H, W), float64


def save(tmp_path, array, name="x.npy") -> str:
    np.save(tmp_path / name, array)
    return str(tmp_path / name)


@pytest.mark.parametrize("layout", ["uint8-NHWC", "uint8-NCHW", "float32-NHWC", "float32-NCHW", "float64-NCHW-0-255"])
def test_every_layout_and_range_gives_the_same_images(tmp_path, layout):
    array = {
        "uint8-NHWC": NHWC,
        "uint8-NCHW": NHWC.transpose(0, 3, 1, 2).copy(),
        "float32-NHWC": (NHWC / 255.0).astype(np.float32),
        "float32-NCHW": (NHWC.transpose(0, 3, 1, 2) / 255.0).astype(np.float32),
        "float64-NCHW-0-255": NHWC.transpose(0, 3, 1, 2).astype(np.float64),
    }[layout]
    source = open_images(save(tmp_path, array))
    loaded = source.load_all()
    assert loaded.dtype == torch.float32 and loaded.shape == (5, 3, 9, 7)
    assert torch.allclose(loaded.double(), EXPECTED, atol=1e-7)
    if layout.startswith("float"):
        decided = "read as 0-255" if layout.endswith("0-255") else "read as 0-1"
        assert any(decided in note for note in source.notes), source.notes


@pytest.mark.parametrize("shape,floating,layout", [
    ((2, 8, 8), False, "NHW"),
    ((2, 3, 8, 8), False, "NCHW"),     # torch-fidelity's uint8 layout
    ((2, 8, 8, 3), True, "NHWC"),
    ((2, 1, 5, 5), True, "NCHW"),
    ((2, 5, 5, 4), False, "NHWC"),
    ((2, 3, 4, 2), False, "NCHW"),     # small, but only axis 1 can hold channels
    ((2, 2, 4, 3), True, "NHWC"),      # small, but only axis 3 can hold channels
])
def test_the_layout_is_decided_from_the_shape(shape, floating, layout):
    assert image_layout(shape, floating=floating) == (layout, None)


@pytest.mark.parametrize("dtype,expected", [(np.uint8, "(N, H, W, C)"), (np.float32, "(N, C, H, W)")])
def test_an_ambiguous_shape_is_read_the_dtype_default_way_and_said_so(tmp_path, dtype, expected):
    array = RNG.integers(0, 256, size=(2, 4, 3, 4)).astype(dtype)  # axis 1 and axis 3 could both be channels
    if dtype == np.float32:
        array /= 255
    source = open_images(save(tmp_path, array))
    (note,) = [note for note in source.notes if "could be" in note]
    assert f"read as {expected}" in note
    loaded = source.load_all().double()
    if dtype == np.uint8:
        torch.testing.assert_close(loaded, torch.from_numpy(array.transpose(0, 3, 1, 2) / 255.0), atol=1e-7, rtol=0)
    else:
        torch.testing.assert_close(loaded, torch.from_numpy(array.astype(np.float64)), atol=1e-7, rtol=0)


def test_value_range_can_be_forced_either_way(tmp_path):
    small = (NHWC / 255.0).astype(np.float32)
    path = save(tmp_path, small)
    forced = open_images(path, value_range="0-255").load_all().double()
    assert torch.allclose(forced, EXPECTED / 255.0, atol=1e-9)
    assert not any("read as" in note for note in open_images(path, value_range="0-1").notes)
    big = save(tmp_path, NHWC.astype(np.float32), "big.npy")
    with pytest.raises(InvalidInputError, match=r"image 0 has values in \[\d+, 25\d\], expected \[0, 1\] within 0.0001"):
        open_images(big, value_range="0-1")
    with pytest.raises(InvalidInputError, match="value_range must be auto, 0-1 or 0-255, got '0-100'"):
        open_images(big, value_range="0-100")


def test_auto_detection_threshold_is_the_largest_value_above_one_and_a_half(tmp_path):
    below = np.zeros((2, 1, 8, 8), np.float32)
    below[1, 0, 0, 0] = 1.5
    with pytest.raises(InvalidInputError, match=r"values in \[0, 1.5\].*range 0-1 detected, max 1.5 <= 1.5"):
        open_images(save(tmp_path, below))
    above = below.copy()
    above[1, 0, 0, 0] = 1.5001
    source = open_images(save(tmp_path, above, "above.npy"))
    assert any("read as 0-255 (max 1.5001 > 1.5)" in note for note in source.notes), source.notes
    assert source.load_all()[1, 0, 0, 0].item() == pytest.approx(1.5001 / 255, rel=1e-6)


def test_a_value_a_rounding_error_above_one_is_clipped_with_a_note(tmp_path):
    array = RNG.random((6, 1, 8, 8)).astype(np.float32) * 0.9 + 0.05
    array[3, 0, 2, 2] = np.float32(1 + 1.2e-7)   # what float32 arithmetic leaves after x / 255 * 255 / 255
    array[4, 0, 1, 1] = np.float32(-5e-5)
    source = open_images(save(tmp_path, array))
    loaded = source.load_all()
    assert loaded[3, 0, 2, 2].item() == 1.0 and loaded[4, 0, 1, 1].item() == 0.0
    assert torch.equal(loaded[:3], torch.from_numpy(array[:3]))
    (note,) = [note for note in source.notes if "clipped" in note]
    assert "clipped 2 values within 0.0001 of [0, 1]" in note and "max 1.00000012" in note and "min -4.99999987e-05" in note


@pytest.mark.parametrize("value,shown", [(1.00015, "1.00015"), (-0.0002, "-0.0002"), (1.2345678, "1.23457")])
def test_values_beyond_the_tolerance_are_refused_with_their_real_extremes(tmp_path, value, shown):
    array = np.full((4, 1, 8, 8), 0.5, np.float32)
    array[2, 0, 0, 0] = value
    with pytest.raises(InvalidInputError) as info:
        open_images(save(tmp_path, array), value_range="0-1")
    assert f"image 2 has values in [{shown if value < 0 else '0.5'}, {shown if value > 0 else '0.5'}]" in str(info.value)


def test_the_tolerance_scales_with_a_0_255_range(tmp_path):
    array = np.full((2, 1, 8, 8), 100.0, np.float32)
    array[0, 0, 0, 0] = 255 + 0.5 * IMAGE_RANGE_ATOL * 255    # inside 0.0255: clipped
    assert open_images(save(tmp_path, array)).load_all()[0, 0, 0, 0].item() == 1.0
    array[1, 0, 0, 0] = 255.1                                 # outside: refused
    with pytest.raises(InvalidInputError, match=r"image 1 has values in \[100, 255.1\], expected \[0, 255\] within 0.0255"):
        open_images(save(tmp_path, array, "y.npy"))


def test_tanh_outputs_get_a_hint(tmp_path):
    array = np.linspace(-1, 1, 2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    with pytest.raises(InvalidInputError, match=r"\(x \+ 1\) / 2"):
        open_images(save(tmp_path, array))


def test_check_images_clips_within_the_tolerance_and_refuses_beyond():
    images = torch.full((4, 1, 2, 2), 0.5)
    images[3, 0, 0, 0] = 1 + 1.2e-7
    checked = check_images(images)
    assert checked.max().item() == 1.0 and checked[3, 0, 0, 1].item() == 0.5
    images[1, 0, 0, 0] = 1.0002
    with pytest.raises(InvalidInputError, match=r"image 1 has values in \[0.5, 1.0002\], expected \[0, 1\] within 0.0001"):
        check_images(images)


class CountingRows:
    """Wraps an array and records how many rows each read asked for."""

    def __init__(self, array) -> None:
        self.array, self.reads = array, []
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, index: slice):
        self.reads.append((index.start, index.stop))
        return self.array[index]


def test_the_range_scan_and_the_batches_read_a_chunk_at_a_time(tmp_path, monkeypatch):
    array = RNG.random((50, 3, 8, 8)).astype(np.float32)
    row_bytes = 3 * 8 * 8 * 4
    monkeypatch.setattr(image_arrays, "SCAN_CHUNK_BYTES", 7 * row_bytes)
    np.save(tmp_path / "x.npy", array)
    rows = CountingRows(NpyRows(tmp_path / "x.npy"))
    source = array_image_source(rows, name="x", limit=30)
    assert source.num_samples == 30 and source.name == "x[:30]"
    assert max(stop - start for start, stop in rows.reads) == 7
    assert rows.reads[-1][1] == 30                            # rows beyond the limit are never scanned
    rows.reads.clear()
    batches = list(source.batches(8))
    assert rows.reads == [(0, 8), (8, 16), (16, 24), (24, 30)]
    assert torch.equal(torch.cat(batches), torch.from_numpy(array[:30]))
