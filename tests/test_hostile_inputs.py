"""Hostile and broken input through the CLI: each ends in one clear line, no traceback, nothing executed."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib

import numpy as np
import pytest
from helpers import assert_one_line_error
from PIL import Image


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels: a decompression bomb's signature."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


class Payload:
    """Unpickling this would create a file: proof that nothing was unpickled if the file stays absent."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def folder_with(tmp_path, name: str, data: bytes):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "a_good.png")
    (folder / name).write_bytes(data)
    return folder


def test_empty_folder(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("score", tmp_path / "empty"), "no images found")


def test_decompression_bomb_is_refused(cli, tmp_path):
    folder = folder_with(tmp_path, "bomb.png", png_claiming(20_000, 20_000))
    assert_one_line_error(cli("score", folder, "--splits", "1"), "bomb.png", "decompression bomb")


@pytest.mark.parametrize("name,data,fragment", [
    ("text.png", b"hello, I am not a PNG", "not a readable image"),
    ("truncated.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 20, "not a readable image"),
])
def test_corrupt_images(cli, tmp_path, name, data, fragment):
    assert_one_line_error(cli("score", folder_with(tmp_path, name, data), "--splits", "1"), name, fragment)


def test_truncated_arrays(cli, tmp_path):
    np.save(tmp_path / "full.npy", np.zeros((100, 10), np.float32))
    data = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    assert_one_line_error(cli("score", tmp_path / "cut.npy", "--input", "logits"), "cut.npy", "truncated")
    np.savez(tmp_path / "full.npz", images=np.zeros((10, 8, 8), np.uint8))
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    assert_one_line_error(cli("score", tmp_path / "cut.npz"), "cut.npz")


@pytest.mark.parametrize("array,options,fragment", [
    (np.zeros((5, 8, 8, 2), np.uint8), [], "C in 1, 3, 4"),
    (np.zeros((5, 2, 8, 8), np.float32), [], "C in 1, 3, 4"),
    (np.zeros((5, 8), np.uint8), [], "(N, H, W)"),
    (np.full((5, 1, 8, 8), 2.0, np.float32), ["--range", "0-1"], "image 0 has values in [2, 2], expected [0, 1]"),
    (np.full((5, 1, 8, 8), 300.0, np.float32), [], "expected [0, 255]"),
    (np.full((5, 1, 8, 8), -0.5, np.float32), [], "expected [0, 1]"),
    (np.full((5, 1, 8, 8), np.nan, np.float32), [], "NaN or inf"),
    (np.zeros((5, 8, 8), np.complex64), [], "uint8 or float"),
    (np.zeros((5, 8, 8), np.int64), [], "uint8 or float"),
])
def test_wrong_image_arrays(cli, tmp_path, array, options, fragment):
    np.save(tmp_path / "x.npy", array)
    assert_one_line_error(cli("score", tmp_path / "x.npy", "--splits", "1", *options), fragment)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_pickle_payloads_in_arrays_are_never_executed(cli, tmp_path, suffix):
    marker = tmp_path / "executed"
    payload = np.array([Payload(str(marker))], dtype=object)
    path = tmp_path / f"evil{suffix}"
    if suffix == ".npy":
        np.save(path, payload, allow_pickle=True)
    else:
        np.savez(path, images=payload)
    for input_kind in ("images", "logits"):
        assert_one_line_error(cli("score", path, "--input", input_kind), "pickled objects")
    assert not marker.exists()


def test_pickled_pt_samples_and_weights_do_not_run(cli, tmp_path):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Payload(str(marker))))
    assert_one_line_error(cli("score", evil), "evil.pt", "pickled objects other than tensors")
    assert_one_line_error(cli("score", "digits:test", "--weights", evil), "safetensors")
    assert not marker.exists()


@pytest.mark.parametrize("name,data,fragment", [
    ("garbage.pt", b"hello, I am not a torch file", "not a readable torch file"),
    ("garbage.zip", b"PK\x03\x04 but nothing after", "not a readable zip archive"),
])
def test_corrupt_tensor_and_zip_files(cli, tmp_path, name, data, fragment):
    (tmp_path / name).write_bytes(data)
    assert_one_line_error(cli("score", tmp_path / name, "--splits", "1"), name, fragment)


def zip_of(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def png_bytes(value: int, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_zip_member_too_large_once_decompressed_is_refused(cli, tmp_path, monkeypatch):
    import isgame.scoring.sources.image_files as image_files

    monkeypatch.setattr(image_files, "MAX_ZIP_MEMBER_BYTES", 1000)
    path = zip_of(tmp_path / "bomb.zip", {"a.png": png_bytes(1), "b.bmp": np.zeros(5000, np.uint8).tobytes()})
    assert_one_line_error(cli("score", path, "--splits", "1"), "bomb.zip:b.bmp", "more than 1000")


def test_zip_members_are_never_extracted_even_with_escaping_names(cli, tmp_path):
    (tmp_path / "data").mkdir()
    path = zip_of(tmp_path / "data" / "x.zip", {"../../escaped.png": png_bytes(3), "/abs.png": png_bytes(4)})
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = cli("score", path, "--splits", "1", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path.parent / "escaped.png").exists()


def test_a_corrupt_image_inside_a_zip_names_the_member(cli, tmp_path):
    path = zip_of(tmp_path / "x.zip", {"a.png": png_bytes(1), "b.png": b"not a png at all"})
    assert_one_line_error(cli("score", path, "--splits", "1"), "x.zip:b.png", "not a readable image")


@pytest.mark.parametrize("args,fragment", [
    (["score", "digits:test", "--splits", "-1"], "--splits must be >= 1"),
    (["score", "noise:uniform", "--n", "-5"], "--n must be >= 1"),
    (["score", "digits:test", "--batch-size", "-1"], "--batch-size must be >= 1"),
    (["score", "digits:test", "--splits", "100000"], "fewer than splits"),
    (["attack", "bounded", "--eps", "nan"], "finite"),
    (["attack", "inflate", "--threshold", "2"], "threshold"),
    (["attack", "inflate", "--steps", "-3"], "--steps must be >= 1"),
    (["toy", "--n", "0"], "--n must be >= 2"),
    (["check", "digits:test", "--claimed", "nan"], "--claimed"),
    (["check", "digits:test", "--claimed", "8", "--claimed-std", "-1"], "--claimed-std"),
    (["score", "digits:test", "--device", "tpu"], "is not a device"),
    (["fid", "digits:test", "digits:train", "--device", "mps"], "only CPU and CUDA devices"),
    (["matrix", "--device", "cuda:x"], "is not a device"),
])
def test_negative_or_absurd_options(cli, tmp_path, args, fragment):
    assert_one_line_error(cli(*args, *(["--out", tmp_path / "o"] if args[0] in ("attack", "toy", "check") else [])), fragment)
