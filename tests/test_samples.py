"""The samples loader: folders of mixed images, numpy arrays, built-in sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from isgame.scoring.digits_data import digits_split
from isgame.scoring.errors import InvalidInputError, InvalidTypeError, SourceNotFoundError
from isgame.scoring.pipeline import score_images
from isgame.scoring.samples import open_images, open_predictions


def write_mixed_folder(folder, digit_images):
    """The same digits saved as grey, RGB, RGBA and palette PNGs and a JPEG, at several sizes."""
    folder.mkdir()
    for i, image in enumerate(digit_images):
        grey = Image.fromarray((image[0].numpy() * 255).round().astype(np.uint8), mode="L")
        size = (8, 8) if i % 2 == 0 else (24, 24)
        grey = grey.resize(size, Image.NEAREST)
        mode = ["L", "RGB", "RGBA", "P"][i % 4]
        converted = grey.convert(mode)
        converted.save(folder / f"{i:03d}.png")
    grey.convert("RGB").save(folder / "zz.jpg", quality=95)


def test_folder_of_mixed_modes_and_sizes(tmp_path, digits_classifier):
    split = digits_split()
    write_mixed_folder(tmp_path / "imgs", split.test_images[:40])
    source = open_images(str(tmp_path / "imgs"))
    assert source.num_samples == 41
    report = score_images(source, digits_classifier, splits=2, batch_size=16, progress=False)
    assert report.result.n == 41
    # Lossless 8x8 grey PNGs read back exactly.
    first = next(source.batches(1))
    assert torch.allclose(first, (split.test_images[:1] * 255).round() / 255, atol=1e-6)


def test_folder_without_a_classifier_refuses_mixed_sizes(tmp_path):
    write_mixed_folder(tmp_path / "imgs", digits_split().test_images[:4])
    with pytest.raises(InvalidInputError, match="differ in size"):
        list(open_images(str(tmp_path / "imgs")).batches(8))


@pytest.mark.parametrize("layout", ["NHW", "NHWC1", "NHWC3", "NCHW-float"])
def test_arrays_in_every_layout_give_the_same_images(tmp_path, layout):
    images = digits_split().test_images[:30]
    uint8 = (images[:, 0].numpy() * 255).round().astype(np.uint8)
    array = {
        "NHW": uint8,
        "NHWC1": uint8[..., None],
        "NHWC3": np.repeat(uint8[..., None], 3, axis=3),
        "NCHW-float": (uint8[:, None] / 255.0).astype(np.float32),
    }[layout]
    path = tmp_path / "x.npy"
    np.save(path, array)
    loaded = open_images(str(path)).load_all()
    assert torch.allclose(loaded[:, :1], torch.from_numpy(uint8[:, None] / 255.0).float(), atol=1e-6)


def test_npz_key_selection(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=np.zeros((3, 8, 8), np.uint8), labels=np.arange(3))
    assert open_images(str(path)).num_samples == 3
    assert open_images(f"{path}:images").num_samples == 3
    np.savez(tmp_path / "y.npz", a=np.zeros((3, 8, 8), np.uint8), b=np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(InvalidInputError, match="several arrays"):
        open_images(str(tmp_path / "y.npz"))


def test_noise_is_seeded_and_independent_of_batch_size():
    a = open_images("noise:uniform", n=50, seed=3)
    whole = a.load_all()
    pieces = torch.cat(list(a.batches(7)))
    assert torch.equal(whole, pieces)
    assert not torch.equal(whole, open_images("noise:uniform", n=50, seed=4).load_all())
    gaussian = open_images("noise:gaussian", n=200, seed=0).load_all()
    assert 0.0 <= float(gaussian.min()) and float(gaussian.max()) <= 1.0
    assert float(gaussian.mean()) == pytest.approx(0.5, abs=0.02)


def test_builtin_digits_sources():
    assert open_images("digits:train").num_samples == digits_split().train_images.shape[0]
    assert open_images("digits:test", n=10).num_samples == 10
    with pytest.raises(InvalidInputError, match="digits:train or digits:test"):
        open_images("digits:valid")


def test_pickled_and_object_arrays_are_never_loaded(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npy"
    np.save(path, np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidTypeError, match="pickled objects"):
        open_images(str(path))
    with pytest.raises(InvalidTypeError, match="pickled objects"):
        open_predictions(str(path))
    assert not marker.exists()


def test_missing_and_unsupported_sources(tmp_path):
    with pytest.raises(SourceNotFoundError, match="not found"):
        open_images(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no PNG or JPEG"):
        open_images(str(tmp_path / "empty"))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="unsupported file type"):
        open_images(str(tmp_path / "a.txt"))
