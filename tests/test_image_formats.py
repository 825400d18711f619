"""Image files beyond PNG/JPEG, zips streamed member by member, and .pt / .pth tensor files."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from isgame.scoring.errors import InvalidInputError, InvalidTypeError
from isgame.scoring.sources.samples import open_images


def reference(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C) -> float64 (C, H, W) / 255, computed independently of the loader."""
    chw = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(chw.astype(np.float64) / 255.0)


RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
GREY = RNG.integers(0, 256, size=(8, 8), dtype=np.uint8)


@pytest.mark.parametrize("name,array,options", [
    ("x.webp", RGB, {"lossless": True}),
    ("x.bmp", RGB, {}),
    ("x.tif", RGB, {}),
    ("x.tiff", GREY, {}),
    ("x.BMP", GREY, {}),
])
def test_lossless_formats_read_back_exactly(tmp_path, name, array, options):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(array).save(tmp_path / "imgs" / name, **options)
    loaded = open_images(str(tmp_path / "imgs")).load_all()[0].double()
    assert torch.allclose(loaded, reference(array), atol=1e-7)


def test_gif_gives_its_first_frame(tmp_path):
    (tmp_path / "imgs").mkdir()
    first, second = Image.fromarray(GREY), Image.fromarray(255 - GREY)
    first.save(tmp_path / "imgs" / "anim.gif", save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(tmp_path / "imgs" / "anim.gif") as check:
        assert check.n_frames == 2
    loaded = open_images(str(tmp_path / "imgs")).load_all()[0].double()
    # A grey GIF has a 256-level grey palette, so frame 0 reads back exactly (converted to RGB).
    assert loaded.shape == (3, 8, 8)
    assert torch.allclose(loaded, reference(GREY).expand(3, 8, 8), atol=1e-7)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture()
def image_zip(tmp_path):
    """Five grey PNGs stored under shuffled names in two folders, plus two members that are not images."""
    names = ["b/2.png", "a.png", "b/1.png", "c.png", "a/0.png"]
    path = tmp_path / "images.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, png_bytes(np.full((8, 8), int(name[-5]) if name[-5].isdigit() else ord(name[0]), np.uint8)))
        archive.writestr("labels.csv", "a,1\n")
        archive.writestr("README", "hello")
        archive.writestr("__MACOSX/._a.png", b"resource fork")
    return path


def test_zip_is_read_in_sorted_member_order_and_skips_non_images(image_zip):
    source = open_images(str(image_zip))
    # sorted names, by hand: a.png < a/0.png < b/1.png < b/2.png < c.png
    expected = [ord("a"), 0, 1, 2, ord("c")]
    assert source.num_samples == 5
    assert (source.load_all()[:, 0, 0, 0] * 255).round().tolist() == [float(v) for v in expected]
    assert any("skipped 2 files that are not an image" in note for note in source.notes), source.notes
    assert any("skipped 1 hidden entry" in note for note in source.notes), source.notes


def test_zip_members_are_read_on_demand_and_never_extracted(image_zip, monkeypatch):
    opened = []
    original_open = zipfile.ZipFile.open

    def recording_open(self, name, *args, **kwargs):
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return original_open(self, name, *args, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("a zip member was extracted to disk")

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    monkeypatch.setattr(zipfile.ZipFile, "extract", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", refuse)
    batches = open_images(str(image_zip)).batches(2)
    next(batches)
    assert opened == ["a.png", "a/0.png"]
    list(batches)
    assert opened == ["a.png", "a/0.png", "b/1.png", "b/2.png", "c.png"]


def test_a_zip_without_images_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "docs.zip", "w") as archive:
        archive.writestr("notes.txt", "nothing to see")
    with pytest.raises(InvalidInputError, match="no images among its 1 members"):
        open_images(str(tmp_path / "docs.zip"))


UINT8_NCHW = RNG.integers(0, 256, size=(6, 3, 8, 8), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_a_saved_uint8_tensor_in_torch_fidelity_layout(tmp_path, suffix):
    path = tmp_path / f"images{suffix}"
    torch.save(torch.from_numpy(UINT8_NCHW), path)
    loaded = open_images(str(path)).load_all().double()
    assert torch.allclose(loaded, torch.from_numpy(UINT8_NCHW.astype(np.float64) / 255.0), atol=1e-7)


def test_a_dict_of_tensors_gives_images_or_the_key_asked_for(tmp_path):
    floats = torch.from_numpy(UINT8_NCHW.astype(np.float32) / 255.0)
    torch.save({"images": floats, "labels": torch.arange(6)}, tmp_path / "d.pt")
    torch.save({"samples": floats}, tmp_path / "one.pt")
    torch.save({"real": floats, "fake": 1 - floats}, tmp_path / "two.pt")
    assert torch.equal(open_images(str(tmp_path / "d.pt")).load_all(), floats)
    assert torch.equal(open_images(str(tmp_path / "one.pt")).load_all(), floats)
    assert torch.allclose(open_images(f"{tmp_path / 'two.pt'}:fake").load_all(), 1 - floats)
    with pytest.raises(InvalidInputError, match=r"several tensors \(real, fake\); pick one with .*two.pt:real"):
        open_images(str(tmp_path / "two.pt"))
    with pytest.raises(InvalidInputError, match="no tensor named 'nope'"):
        open_images(f"{tmp_path / 'two.pt'}:nope")


def test_tensor_files_refuse_what_is_not_images(tmp_path):
    torch.save([torch.zeros(2, 1, 8, 8)], tmp_path / "list.pt")
    torch.save(torch.zeros(2, 1, 8, 8, dtype=torch.int64), tmp_path / "int.pt")
    with pytest.raises(InvalidTypeError, match="holds a list, expected a tensor or a dict of tensors"):
        open_images(str(tmp_path / "list.pt"))
    with pytest.raises(InvalidTypeError, match="uint8 or float, got dtype torch.int64"):
        open_images(str(tmp_path / "int.pt"))


def test_half_precision_tensors_are_read_as_float32(tmp_path):
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.save(images.to(torch.bfloat16), tmp_path / "bf16.pt")
    loaded = open_images(str(tmp_path / "bf16.pt")).load_all()
    assert loaded.dtype == torch.float32
    assert torch.equal(loaded, images.to(torch.bfloat16).float())
