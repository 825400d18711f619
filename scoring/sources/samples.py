"""Where samples come from: one loader for folders, zips, arrays, tensor files and built-in sources.

:func:`open_images` resolves a SOURCE string to an :class:`ImageSource` whose ``batches``
yield float32 images (B, C, H, W) in [0, 1], and whose ``notes`` say what was decided on the
caller's behalf (files skipped, a value range detected, values clipped, ``n`` capped):

* a folder of images at any depth (PNG, JPEG, WEBP, BMP, TIFF, GIF's first frame; grey, RGB,
  RGBA, palette; mixed sizes), in sorted relative-path order; other files are skipped and
  counted (:mod:`isgame.scoring.sources.image_files`);
* a ``.zip`` of images, members read on demand in sorted name order, never extracted;
* ``.npy`` / ``.npz`` / ``.pt`` / ``.pth``: uint8 or float images (N, H, W), (N, C, H, W) or
  (N, H, W, C); float values 0-1 or 0-255 (``value_range``, detected by default)
  (:mod:`isgame.scoring.sources.image_arrays`). ``.npy`` rows are read on demand (resident memory stays
  one batch); ``FILE.npz:KEY`` / ``FILE.pt:KEY`` picks an array, otherwise the only one or
  ``images``; nothing is unpickled (``allow_pickle=False``, ``weights_only=True``);
* ``digits:train`` / ``digits:test``: the fixed split of :mod:`scoring.digits_data`;
* ``noise:uniform`` / ``noise:gaussian``: ``n`` seeded images of ``image_size``
  (Gaussian: mean 0.5, std 0.25, clipped to [0, 1]).

:func:`open_predictions` resolves a ``.npy`` / ``.npz`` of (N, K) logits or probabilities.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError, SourceNotFoundError, parameter
from isgame.scoring.notes import Note
from isgame.scoring.sources.fingerprint import InputFingerprint
from isgame.scoring.sources.image_arrays import (
    NUMPY_SUFFIXES,
    TORCH_SUFFIXES,
    VALUE_RANGES,
    NpyRows,
    array_header,
    array_image_source,
    load_array,
    load_tensor_file,
)
from isgame.scoring.sources.image_files import IMAGE_SUFFIXES, folder_source, read_image_file, zip_source
from isgame.scoring.sources.image_source import ImageSource

__all__ = ["BUILTIN_SOURCES", "IMAGE_SUFFIXES", "VALUE_RANGES", "ImageSource", "NpyRows", "PredictionSource", "image_sizes",
           "load_array", "noise_source", "open_images", "open_predictions", "read_image_file", "tensor_source"]

BUILTIN_SOURCES = ("digits:train", "digits:test", "noise:uniform", "noise:gaussian")
GAUSSIAN_NOISE_MEAN = 0.5
GAUSSIAN_NOISE_STD = 0.25
KEYED_SUFFIXES = (".npz", *TORCH_SUFFIXES)


def open_images(spec: str, *, n: int | None = None, seed: int = 0, image_size: tuple[int, int] = (8, 8),
                value_range: str = "auto") -> ImageSource:
    """Resolve SOURCE to an :class:`ImageSource`; ``n`` limits (or, for noise, sets) the count.

    ``value_range`` ("auto", "0-1" or "0-255") says how float arrays are scaled; other sources ignore it.
    """
    if n is not None and n < 1:
        raise InvalidInputError(f"{parameter('n')} must be >= 1, got {n}")
    if value_range not in VALUE_RANGES:
        raise InvalidInputError(f"{parameter('value_range')} must be auto, 0-1 or 0-255, got {value_range!r}")
    if spec.startswith("digits:"):
        source = _digits_source(spec)
    elif spec.startswith("noise:"):
        source = noise_source(spec.split(":", 1)[1], n=1000 if n is None else n, seed=seed, image_size=image_size)
    else:
        path, key = _split_key(spec)
        suffix = path.suffix.lower()
        if path.is_dir():
            source = folder_source(path)
        elif not path.exists():
            raise SourceNotFoundError(
                f"source {spec!r} not found; pass a folder of images, a .zip of images, a .npy/.npz/.pt array "
                f"or one of {', '.join(BUILTIN_SOURCES)}"
            )
        elif suffix in NUMPY_SUFFIXES:
            source = array_image_source(load_array(path, key), name=str(path), value_range=value_range, limit=n)
        elif suffix in TORCH_SUFFIXES:
            source = array_image_source(load_tensor_file(path, key), name=str(path), value_range=value_range, limit=n)
        elif suffix == ".zip":
            source = zip_source(path)
        else:
            raise InvalidInputError(f"{path}: unsupported file type {path.suffix!r}; pass a folder or .zip of images "
                                    "or a .npy/.npz/.pt array")
    if n is not None and n < source.num_samples:
        kept = first_files_note(spec, n)
        source = ImageSource(name=f"{source.name}[:{n}]", num_samples=n, read=source.read,
                             notes=(*source.notes, *([kept] if kept else [])),
                             fingerprint=source.fingerprint, input_range=source.input_range)
    elif n is not None and n > source.num_samples and not spec.startswith("noise:"):
        source.notes = (*source.notes, _capped_note(source.name, n, source.num_samples, "images"))
    return source


def first_files_note(spec: str, n: int, *, name: str = "n") -> Note | None:
    """A note when the first ``n`` files of a folder in sorted order (what ``n`` keeps) come from fewer of its
    subfolders than hold images: a folder with one subfolder per class then loses whole classes. None for other
    sources, flat folders, or a first ``n`` that reaches every subfolder. ``name`` is the parameter that set ``n``."""
    path, _ = _split_key(spec)
    if not path.is_dir():
        return None
    from isgame.scoring.sources.image_files import list_image_files

    files = list_image_files(path)[0]
    folders = [file.parent.relative_to(path).as_posix() for file in files]
    every, kept = list(dict.fromkeys(folders)), list(dict.fromkeys(folders[:n]))
    if len(every) < 2 or len(kept) == len(every):
        return None
    shown = ", ".join(kept[:4]) + (", ..." if len(kept) > 4 else "")
    return Note(f"{spec}: {parameter(name, n)} keeps the first {n} of its {len(files)} images in sorted order, and they "
                f"come from {len(kept)} of its {len(every)} subfolders ({shown}): with a subfolder per class, whole "
                "classes are left out")


def image_sizes(spec: str, *, value_range: str = "auto") -> set[tuple[int, int]]:
    """Every (H, W) among the images SOURCE holds, from their headers (nothing is decoded): the digits' (8, 8), an
    array's one size, each file's of a folder or zip; none for noise (made at whatever size is asked) and for a
    stats file (no images)."""
    from isgame.scoring.metrics.fid import is_statistics_file

    if spec.startswith("noise:") or is_statistics_file(spec):
        return set()
    path, _ = _split_key(spec)
    if spec.startswith("digits:") or not (path.is_dir() or path.suffix.lower() == ".zip"):
        first = open_images(spec, n=1, value_range=value_range).load_all()
        return {tuple(first.shape[-2:])}
    from isgame.scoring.sources.image_files import image_file_sizes

    open_images(spec)  # a folder without images, or a damaged zip, is refused as reading it would be
    return image_file_sizes(path)


def _capped_note(name: str, n: int, available: int, what: str) -> Note:
    return Note(f"{name}: {parameter('n', n)} asks for more than its {available} {what}; using all {available}")


def _split_key(spec: str) -> tuple[Path, str | None]:
    """``FILE.npz:KEY`` / ``FILE.pt:KEY`` -> (FILE, KEY); anything else -> (path, None)."""
    head, sep, tail = spec.rpartition(":")
    if sep and head.lower().endswith(KEYED_SUFFIXES) and not Path(spec).exists():
        return Path(head), tail
    return Path(spec), None


def _digits_source(spec: str) -> ImageSource:
    from isgame.scoring.sources.digits_data import digits_split

    part = spec.split(":", 1)[1]
    if part not in ("train", "test"):
        raise InvalidInputError(f"unknown digits part {part!r} in {spec!r}; use digits:train or digits:test")
    split = digits_split()
    images = split.train_images if part == "train" else split.test_images
    return tensor_source(spec, images)


def tensor_source(name: str, images: torch.Tensor) -> ImageSource:
    """An :class:`ImageSource` over an in-memory (N, C, H, W) float tensor in [0, 1]; its fingerprint hashes the
    tensor's bytes as rows are read."""
    fingerprint = InputFingerprint("array-bytes", array_header(images.dtype, images.shape))

    def read(start: int, stop: int) -> torch.Tensor:
        rows = images[start:stop]
        fingerprint.add_rows(start, stop, rows.contiguous().numpy())
        return rows

    return ImageSource(name=name, num_samples=images.shape[0], read=read, fingerprint=fingerprint,
                       input_range="float 0-1")


def noise_source(kind: str, *, n: int, seed: int, image_size: tuple[int, int] = (8, 8), channels: int = 1) -> ImageSource:
    """Seeded uniform or Gaussian noise images, generated batch by batch (same numbers for any batch size)."""
    if kind not in ("uniform", "gaussian"):
        raise InvalidInputError(f"unknown noise {kind!r}; use noise:uniform or noise:gaussian")
    if n < 1:
        raise InvalidInputError(f"{parameter('n')} must be >= 1, got {n}")
    shape = (channels, *image_size)
    fingerprint = InputFingerprint("array-bytes", array_header(torch.float32, (n, *shape)))

    def read(start: int, stop: int) -> torch.Tensor:
        # One generator per image keeps image i identical whatever the batch size.
        out = torch.empty((stop - start, *shape))
        for offset, index in enumerate(range(start, stop)):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
            if kind == "uniform":
                out[offset] = torch.rand(shape, generator=generator)
            else:
                out[offset] = (GAUSSIAN_NOISE_MEAN + GAUSSIAN_NOISE_STD * torch.randn(shape, generator=generator)).clamp(0, 1)
        fingerprint.add_rows(start, stop, out.numpy())
        return out

    return ImageSource(name=f"noise:{kind}", num_samples=n, read=read, fingerprint=fingerprint,
                       input_range="float 0-1")


@dataclass(frozen=True)
class PredictionSource:
    """N rows of (N, K) logits or probabilities, read in chunks from a streamed array; ``limit`` keeps the first N.

    ``notes`` say what was decided on the caller's behalf (e.g. ``n`` capped to the rows there are);
    ``fingerprint`` hashes the rows' bytes as :meth:`batches` reads them (:mod:`isgame.scoring.sources.fingerprint`).
    """

    name: str
    array: np.ndarray | NpyRows
    limit: int | None = None
    notes: tuple[str, ...] = ()
    fingerprint: InputFingerprint | None = None

    @property
    def num_samples(self) -> int:
        return self.array.shape[0] if self.limit is None else min(self.limit, self.array.shape[0])

    @property
    def num_classes(self) -> int:
        return self.array.shape[1]

    def batches(self, batch_size: int, *, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield (B, K) arrays of rows start..stop-1."""
        if batch_size < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {batch_size}")
        stop = self.num_samples if stop is None else stop
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            rows = np.ascontiguousarray(self.array[first:last])
            if self.fingerprint is not None:
                self.fingerprint.add_rows(first, last, rows)
            yield rows


def open_predictions(spec: str, *, n: int | None = None) -> PredictionSource:
    """Resolve a ``.npy`` / ``.npz`` (``FILE.npz:KEY``) of (N, K) logits or probabilities; ``n`` keeps the first n rows."""
    if n is not None and n < 1:
        raise InvalidInputError(f"{parameter('n')} must be >= 1, got {n}")
    path, key = _split_key(spec)
    if not path.exists():
        raise SourceNotFoundError(f"{spec!r} not found; with {parameter('input_kind', 'logits')}/probs pass a .npy or .npz file of shape (N, K)")
    if path.is_dir() or path.suffix.lower() not in (".npy", ".npz"):
        raise InvalidInputError(f"{spec}: with {parameter('input_kind', 'logits')}/probs, the source must be a .npy or .npz file of shape (N, K)")
    array = load_array(path, key)
    if array.ndim != 2:
        raise InvalidInputError(f"{path}: expected predictions of shape (N, K) with K >= 2, got shape {array.shape}; pass a 2-D array")
    if array.shape[1] < 2:
        raise InvalidInputError(f"{path}: expected K >= 2 classes, got shape {array.shape}; the score needs at least two classes")
    if array.shape[0] == 0:
        raise InvalidInputError(f"{path}: holds 0 rows; pass at least one sample")
    capped = n is not None and n > array.shape[0]
    return PredictionSource(name=str(path), array=array, limit=n,
                            notes=(_capped_note(str(path), n, array.shape[0], "rows"),) if capped else (),
                            fingerprint=InputFingerprint("array-bytes", array_header(array.dtype, array.shape)))
