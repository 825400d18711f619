"""The samples loader: folders of mixed images, numpy arrays, built-in sources."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from isgame.scoring.errors import InvalidInputError, InvalidTypeError, SourceNotFoundError
from isgame.scoring.pipeline import score_images
from isgame.scoring.sources.digits_data import digits_split
from isgame.scoring.sources.samples import open_images, open_predictions


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


def test_npz_with_several_arrays_says_which_to_pick_not_to_resave(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, np.zeros((5, 8, 8), np.uint8), np.ones((5, 8, 8), np.uint8))  # arr_0 and arr_1
    with pytest.raises(InvalidInputError) as info:
        open_images(str(path))
    message = str(info.value)
    assert f"pick one with {path}:arr_0" in message
    assert "re-save" not in message and "not a valid numpy file" not in message
    assert open_images(f"{path}:arr_1").load_all().eq(1 / 255).all()


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
    with pytest.raises(InvalidInputError, match="no images found"):
        open_images(str(tmp_path / "empty"))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="unsupported file type"):
        open_images(str(tmp_path / "a.txt"))


def image_with_value(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


def test_nested_folders_are_read_in_sorted_relative_path_order(tmp_path):
    # Sorted relative paths as strings ('.' < '/' < letters, capitals first), derived by hand:
    expected = ["A.png", "a.png", "a/b/c.png", "a/z.png", "b.png", "b/a.png"]
    for value, name in enumerate(expected):
        image_with_value(tmp_path / "tree" / name, 10 * (value + 1))
    (tmp_path / "tree" / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "tree" / "labels.json").write_text("{}")
    image_with_value(tmp_path / "tree" / ".ipynb_checkpoints" / "a.png", 255)  # hidden: glob would skip it too
    source = open_images(str(tmp_path / "tree"))
    assert source.num_samples == len(expected)
    values = source.load_all()[:, 0, 0, 0] * 255
    assert values.round().tolist() == [10.0 * (i + 1) for i in range(len(expected))]
    assert any("skipped 2 files that are not an image (1 .txt, 1 .json)" in note or
               "skipped 2 files that are not an image (1 .json, 1 .txt)" in note for note in source.notes), source.notes
    assert any("skipped 1 hidden entry" in note for note in source.notes), source.notes


def test_class_per_subfolder_layout_counts_every_image(tmp_path):
    for label in range(3):
        for index in range(4):
            image_with_value(tmp_path / "data" / f"class{label}" / f"{index}.png", label)
    source = open_images(str(tmp_path / "data"))
    assert source.num_samples == 12 and source.notes == ()
    assert (source.load_all()[:, 0, 0, 0] * 255).round().tolist() == [0.0] * 4 + [1.0] * 4 + [2.0] * 4


def test_nested_folder_of_sixty_images_through_the_cli(cli, tmp_path):
    for index in range(60):
        image_with_value(tmp_path / "nested" / ("" if index < 20 else f"sub{index % 2}") / f"{index:03d}.png", index)
    result = cli("score", tmp_path / "nested", "--splits", "1", "--quiet", "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["n"] == 60 and payload["notes"] == []


def test_n_beyond_the_source_is_capped_with_a_note(cli):
    source = open_images("digits:test", n=100_000)
    assert source.num_samples == digits_split().test_images.shape[0]
    assert source.notes == (f"digits:test: n=100000 asks for more than its {source.num_samples} images; "
                            f"using all {source.num_samples}",)
    assert open_images("digits:test", n=10).notes == ()
    result = cli("score", "digits:test", "--n", "100000", "--splits", "1", "--quiet", "--json", "-")
    assert result.exit_code == 0, result.stderr
    assert f"isgame: note: digits:test: --n 100000 asks for more than its {source.num_samples} images" in result.stderr
    assert json.loads(result.stdout)["notes"] == list(source.notes)


def test_n_beyond_the_rows_of_predictions_is_capped_with_a_note(tmp_path):
    np.save(tmp_path / "logits.npy", np.zeros((7, 3), np.float32))
    predictions = open_predictions(str(tmp_path / "logits.npy"), n=50)
    assert predictions.num_samples == 7
    assert predictions.notes == (f"{tmp_path / 'logits.npy'}: n=50 asks for more than its 7 rows; using all 7",)
