"""Where samples come from: one loader for folders, arrays and built-in sources.

:func:`open_images` resolves a SOURCE string to an :class:`ImageSource` whose ``batches``
yield float32 images (B, C, H, W) in [0, 1]:

* a folder of PNG/JPEG images (grey, RGB, RGBA, palette; mixed sizes): read one at a time,
  so memory is one batch; PIL's decompression-bomb guard stays on;
* ``.npy`` / ``.npz``: uint8 (N, H, W) or (N, H, W, C), or float (N, C, H, W) in [0, 1];
  ``.npy`` rows are read on demand (resident memory stays one batch); ``FILE.npz:KEY`` picks an array, otherwise the only one or
  ``images``; nothing is unpickled (``allow_pickle=False``);
* ``digits:train`` / ``digits:test``: the fixed split of :mod:`scoring.digits_data`;
* ``noise:uniform`` / ``noise:gaussian``: ``n`` seeded images of ``image_size``
  (Gaussian: mean 0.5, std 0.25, clipped to [0, 1]).

:func:`open_predictions` resolves a ``.npy`` / ``.npz`` of (N, K) logits or probabilities.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError, InvalidTypeError, SourceNotFoundError, parameter
from isgame.scoring.validation import check_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BUILTIN_SOURCES = ("digits:train", "digits:test", "noise:uniform", "noise:gaussian")
GAUSSIAN_NOISE_MEAN = 0.5
GAUSSIAN_NOISE_STD = 0.25


@dataclass
class ImageSource:
    """N images that can be read batch by batch.

    ``read(start, stop)`` returns a list of (C, H, W) float32 tensors or one stacked
    (B, C, H, W) tensor. ``conform`` (e.g. a classifier's single-image preprocessing) is
    applied per image when a batch mixes sizes or channel counts.
    """

    name: str
    num_samples: int
    read: Callable[[int, int], torch.Tensor | list[torch.Tensor]]

    def batches(
        self, batch_size: int, *, conform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        start: int = 0, stop: int | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield (B, C, H, W) float32 batches in [0, 1] of images start..stop-1, in order."""
        if batch_size < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {batch_size}")
        stop = self.num_samples if stop is None else stop
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            chunk = self.read(first, last)
            if isinstance(chunk, list):
                chunk = _stack_images(chunk, conform, where=f"{self.name} (images {first}..{last - 1})")
            yield chunk

    def load_all(self, *, conform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """All images as one (N, C, H, W) tensor; for small sources only."""
        return torch.cat(list(self.batches(max(self.num_samples, 1), conform=conform)))


def _stack_images(images: list[torch.Tensor], conform, *, where: str) -> torch.Tensor:
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) == 1:
        return torch.stack(images)
    if conform is None:
        raise InvalidInputError(
            f"{where}: images differ in size or channels ({', '.join(str(s) for s in sorted(shapes)[:3])}); "
            "score them with a classifier, which resizes them, or resize them first"
        )
    return torch.cat([conform(image.unsqueeze(0)) for image in images])


def open_images(spec: str, *, n: int | None = None, seed: int = 0, image_size: tuple[int, int] = (8, 8)) -> ImageSource:
    """Resolve SOURCE to an :class:`ImageSource`; ``n`` limits (or, for noise, sets) the count."""
    if n is not None and n < 1:
        raise InvalidInputError(f"{parameter('n')} must be >= 1, got {n}")
    if spec.startswith("digits:"):
        source = _digits_source(spec)
    elif spec.startswith("noise:"):
        source = noise_source(spec.split(":", 1)[1], n=1000 if n is None else n, seed=seed, image_size=image_size)
    else:
        path, key = _split_key(spec)
        if path.is_dir():
            source = _folder_source(path)
        elif not path.exists():
            raise SourceNotFoundError(
                f"source {spec!r} not found; pass a folder of images, a .npy/.npz file or one of {', '.join(BUILTIN_SOURCES)}"
            )
        elif path.suffix.lower() in (".npy", ".npz"):
            source = _array_image_source(path, key)
        else:
            raise InvalidInputError(f"{path}: unsupported file type {path.suffix!r}; pass a folder of PNG/JPEG images or a .npy/.npz array")
    if n is not None and n < source.num_samples:
        source = ImageSource(name=f"{source.name}[:{n}]", num_samples=n, read=source.read)
    return source


def _split_key(spec: str) -> tuple[Path, str | None]:
    """``FILE.npz:KEY`` -> (FILE.npz, KEY); anything else -> (path, None)."""
    head, sep, tail = spec.rpartition(":")
    if sep and head.lower().endswith(".npz") and not Path(spec).exists():
        return Path(head), tail
    return Path(spec), None


def _digits_source(spec: str) -> ImageSource:
    from isgame.scoring.digits_data import digits_split

    part = spec.split(":", 1)[1]
    if part not in ("train", "test"):
        raise InvalidInputError(f"unknown digits part {part!r} in {spec!r}; use digits:train or digits:test")
    split = digits_split()
    images = split.train_images if part == "train" else split.test_images
    return tensor_source(spec, images)


def tensor_source(name: str, images: torch.Tensor) -> ImageSource:
    """An :class:`ImageSource` over an in-memory (N, C, H, W) float tensor in [0, 1]."""
    return ImageSource(name=name, num_samples=images.shape[0], read=lambda a, b: images[a:b])


def noise_source(kind: str, *, n: int, seed: int, image_size: tuple[int, int] = (8, 8), channels: int = 1) -> ImageSource:
    """Seeded uniform or Gaussian noise images, generated batch by batch (same numbers for any batch size)."""
    if kind not in ("uniform", "gaussian"):
        raise InvalidInputError(f"unknown noise {kind!r}; use noise:uniform or noise:gaussian")
    if n < 1:
        raise InvalidInputError(f"{parameter('n')} must be >= 1, got {n}")
    shape = (channels, *image_size)

    def read(start: int, stop: int) -> torch.Tensor:
        # One generator per image keeps image i identical whatever the batch size.
        out = torch.empty((stop - start, *shape))
        for offset, index in enumerate(range(start, stop)):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
            if kind == "uniform":
                out[offset] = torch.rand(shape, generator=generator)
            else:
                out[offset] = (GAUSSIAN_NOISE_MEAN + GAUSSIAN_NOISE_STD * torch.randn(shape, generator=generator)).clamp(0, 1)
        return out

    return ImageSource(name=f"noise:{kind}", num_samples=n, read=read)


def _folder_source(folder: Path) -> ImageSource:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidInputError(f"{folder}: no PNG or JPEG images found; put .png/.jpg files in the folder")

    def read(start: int, stop: int) -> list[torch.Tensor]:
        return [read_image_file(path) for path in files[start:stop]]

    return ImageSource(name=str(folder), num_samples=len(files), read=read)


def read_image_file(path: Path) -> torch.Tensor:
    """One image file as a float32 (C, H, W) tensor in [0, 1]; C = 1 (grey), 3 (RGB) or 4 (RGBA)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif mode in ("LA", "PA"):
                image = image.convert("RGBA")
            elif mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                array = np.asarray(image, dtype=np.float64)
                peak = 65535.0 if mode.startswith("I;16") else max(float(array.max()), 1.0)
                return torch.from_numpy((array / peak).clip(0, 1).astype(np.float32))[None]
            elif mode not in ("L", "RGB", "RGBA"):
                image = image.convert("RGB")
            array = np.asarray(image, dtype=np.uint8)
    except Image.DecompressionBombError as error:
        raise InvalidInputError(f"{path}: refused as a possible decompression bomb ({error}); shrink the image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InvalidInputError(f"{path}: not a readable image ({type(error).__name__}: {error}); remove or re-save it") from None
    tensor = torch.from_numpy(array.astype(np.float32) / 255.0)
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


class NpyRows:
    """Rows of a C-ordered ``.npy`` file, read on demand with seek + read.

    Unlike ``mmap_mode="r"``, pages read are not kept mapped, so resident memory stays one
    chunk however large the file (touched pages of a memory map count in RSS).
    Supports ``len``, ``.shape``, ``.dtype``, ``.ndim`` and slicing ``rows[a:b]`` with step 1.
    """

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(stream)
            self.offset = stream.tell()
        if dtype.hasobject:
            raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
        if fortran_order and len(shape) > 1:
            raise ValueError("Fortran-ordered arrays are not streamed; save with numpy.save(np.ascontiguousarray(a))")
        self.path, self.shape, self.dtype = path, tuple(shape), dtype
        self.row_items = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        expected = self.offset + int(np.prod(shape)) * dtype.itemsize
        if path.stat().st_size < expected:
            raise EOFError(f"file is {path.stat().st_size} bytes, header promises {expected}")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("NpyRows supports contiguous slices only")
        start, stop, _ = index.indices(self.shape[0])
        count = max(stop - start, 0)
        with open(self.path, "rb") as stream:
            stream.seek(self.offset + start * self.row_items * self.dtype.itemsize)
            data = np.fromfile(stream, dtype=self.dtype, count=count * self.row_items)
        return data.reshape((count, *self.shape[1:]))


def load_array(path: Path, key: str | None = None) -> np.ndarray | NpyRows:
    """A numeric array from .npy (streamed by :class:`NpyRows`) or .npz (in memory), never unpickling anything."""
    try:
        if path.suffix.lower() == ".npy":
            array = NpyRows(path)
        else:
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if key is None:
                    if len(names) == 1:
                        key = names[0]
                    elif "images" in names:
                        key = "images"
                    else:
                        raise InvalidInputError(
                            f"{path}: holds several arrays ({', '.join(names[:5])}); pick one as {path}:NAME"
                        )
                if key not in names:
                    raise InvalidInputError(f"{path}: no array named {key!r}; it holds {', '.join(names[:5]) or 'none'}")
                array = archive[key]
    except ValueError as error:
        if "pickle" in str(error).lower() or "object" in str(error).lower():
            raise InvalidTypeError(
                f"{path}: holds pickled objects, which are never loaded; save a plain numeric array with numpy.save"
            ) from None
        raise InvalidInputError(f"{path}: not a valid numpy file ({error}); re-save it with numpy.save or numpy.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise InvalidInputError(f"{path}: corrupt or truncated numpy file ({type(error).__name__}); re-save it") from None
    if array.dtype.kind not in "fiub":
        raise InvalidTypeError(f"{path}: expected numbers, got dtype {array.dtype}; save a uint8 or float array")
    return array


def _array_image_source(path: Path, key: str | None) -> ImageSource:
    array = load_array(path, key)
    shape = array.shape
    if array.dtype == np.uint8:
        if array.ndim == 3:
            layout = "NHW"
        elif array.ndim == 4 and shape[3] in (1, 3, 4):
            layout = "NHWC"
        else:
            raise InvalidInputError(
                f"{path}: uint8 images must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got {shape}"
            )
    elif array.dtype.kind == "f":
        if array.ndim != 4 or shape[1] not in (1, 3, 4):
            raise InvalidInputError(
                f"{path}: float images must have shape (N, C, H, W) with C in 1, 3, 4 and values in [0, 1]; got {shape}"
            )
        layout = "NCHW"
    else:
        raise InvalidTypeError(f"{path}: images must be uint8 or float, got dtype {array.dtype}; convert them")
    if shape[0] == 0:
        raise InvalidInputError(f"{path}: holds 0 images; pass a non-empty array")

    def read(start: int, stop: int) -> torch.Tensor:
        chunk = np.asarray(array[start:stop])
        if layout == "NHW":
            tensor = torch.from_numpy(chunk.astype(np.float32) / 255.0)[:, None]
        elif layout == "NHWC":
            tensor = torch.from_numpy(chunk.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
        else:
            tensor = torch.from_numpy(chunk.astype(np.float32))
            check_images(tensor, name=str(path), row_offset=start)
        return tensor

    return ImageSource(name=str(path), num_samples=shape[0], read=read)


@dataclass(frozen=True)
class PredictionSource:
    """N rows of (N, K) logits or probabilities, read in chunks from a streamed array; ``limit`` keeps the first N."""

    name: str
    array: np.ndarray | NpyRows
    limit: int | None = None

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
            yield np.asarray(self.array[first : min(first + batch_size, stop)])


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
    return PredictionSource(name=str(path), array=array, limit=n)
