"""Arrays of images: ``.npy`` (streamed), ``.npz`` and ``.pt`` / ``.pth`` tensor files, in any common layout.

Layouts, decided from the shape alone (:func:`image_layout`):

* (N, H, W): grey;
* (N, C, H, W) with C in 1, 3, 4 and H, W > 4: torch-fidelity's uint8 layout, and torch's;
* (N, H, W, C) with C in 1, 3, 4 and H, W > 4: numpy / PIL's layout;
* smaller images: wherever a channel count can sit; if both ends can (e.g. (N, 4, 4, 4)), uint8 is read
  as (N, H, W, C) and float as (N, C, H, W), and a note says so.

Values: uint8 is 0-255. Float arrays are 0-1 or 0-255 (``value_range``); ``"auto"`` reads the
array once (in chunks) and takes 0-255 when its largest value exceeds
:data:`AUTO_RANGE_THRESHOLD`, and a note states the decision. Values within
:data:`~isgame.scoring.metrics.validation.IMAGE_RANGE_ATOL` of the range (after scaling) are clipped and
counted in a note; anything further out, NaN or inf is refused before any image is scored.

Nothing is unpickled: ``numpy.load(allow_pickle=False)``, ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError, InvalidTypeError, IsgameError, parameter
from isgame.scoring.metrics.validation import IMAGE_RANGE_ATOL, out_of_range_message
from isgame.scoring.notes import Note
from isgame.scoring.sources.fingerprint import InputFingerprint
from isgame.scoring.sources.image_source import ImageSource

NUMPY_SUFFIXES = (".npy", ".npz")
TORCH_SUFFIXES = (".pt", ".pth")
#: ``value_range`` choices: detect, [0, 1], or [0, 255] (float arrays only; uint8 is always 0-255).
VALUE_RANGES = ("auto", "0-1", "0-255")
#: With ``value_range="auto"``, a float array whose largest value exceeds this is read as 0-255.
AUTO_RANGE_THRESHOLD = 1.5
CHANNEL_COUNTS = (1, 3, 4)
#: torch-fidelity's rule: a channel axis is unambiguous when both image sides exceed 4.
MIN_UNAMBIGUOUS_SIDE = 5
#: Bytes read at a time when scanning a float array for its range (resident memory stays about this).
SCAN_CHUNK_BYTES = 32 * 2**20


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


def _pick(path: Path, names: list[str], key: str | None, what: str) -> str:
    """The member to read: ``key`` if given, else the only one, else ``images``; one line naming the choices otherwise."""
    if key is not None:
        if key not in names:
            raise InvalidInputError(f"{path}: no {what} named {key!r}; it holds {', '.join(names[:5]) or 'none'}")
        return key
    if len(names) == 1:
        return names[0]
    if "images" in names:
        return "images"
    if not names:
        raise InvalidInputError(f"{path}: holds no {what}s; save the images with numpy.save or torch.save")
    more = ", ..." if len(names) > 5 else ""
    raise InvalidInputError(f"{path}: holds several {what}s ({', '.join(names[:5])}{more}); "
                            f"pick one with {path}:{names[0]}")


def load_array(path: Path, key: str | None = None) -> np.ndarray | NpyRows:
    """A numeric array from .npy (streamed by :class:`NpyRows`) or .npz (in memory), never unpickling anything."""
    try:
        if path.suffix.lower() == ".npy":
            array = NpyRows(path)
        else:
            with np.load(path, allow_pickle=False) as archive:
                array = archive[_pick(path, list(archive.files), key, "array")]
    except IsgameError:
        raise
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


def load_tensor_file(path: Path, key: str | None = None) -> np.ndarray:
    """The image tensor of a ``.pt`` / ``.pth`` file (a tensor, or a dict holding one tensor or ``images``), in memory.

    Loaded with ``torch.load(weights_only=True)``: tensors and plain containers only, nothing executed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols; the outcome is what matters
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InvalidTypeError(f"{path}: holds pickled objects other than tensors, which are never loaded; "
                               "save the images with torch.save(tensor, PATH)") from None
    except Exception as error:  # torch.load raises KeyError, RuntimeError, ... on files that are not its own
        raise InvalidInputError(f"{path}: not a readable torch file ({type(error).__name__}); "
                                "save the images with torch.save(tensor, PATH)") from None
    if isinstance(loaded, torch.Tensor):
        if key is not None:
            raise InvalidInputError(f"{path}: holds one tensor, not a dict; drop :{key}")
        tensor = loaded
    elif isinstance(loaded, dict):
        tensors = {str(name): value for name, value in loaded.items() if isinstance(value, torch.Tensor)}
        tensor = tensors[_pick(path, list(tensors), key, "tensor")]
    else:
        raise InvalidTypeError(f"{path}: holds a {type(loaded).__name__}, expected a tensor or a dict of tensors; "
                               "save the images with torch.save(tensor, PATH)")
    tensor = tensor.detach().cpu()
    if tensor.is_complex() or tensor.dtype == torch.bool or not (tensor.is_floating_point() or tensor.dtype == torch.uint8):
        raise InvalidTypeError(f"{path}: images must be uint8 or float, got dtype {tensor.dtype}; convert them")
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()  # numpy has no bfloat16
    return tensor.contiguous().numpy()


def image_layout(shape: tuple[int, ...], *, floating: bool) -> tuple[str, str | None]:
    """``("NHW" | "NCHW" | "NHWC", why)`` from the shape; ``why`` is set when the shape allowed both 4-D layouts."""
    if len(shape) == 3:
        return "NHW", None
    if len(shape) != 4:
        raise InvalidInputError(f"expected images of shape (N, H, W), (N, C, H, W) or (N, H, W, C) with C in 1, 3, 4; "
                                f"got {tuple(shape)}")
    channels_first = shape[1] in CHANNEL_COUNTS and min(shape[2], shape[3]) >= MIN_UNAMBIGUOUS_SIDE
    channels_last = shape[3] in CHANNEL_COUNTS and min(shape[1], shape[2]) >= MIN_UNAMBIGUOUS_SIDE
    if channels_first:  # channels_last would need shape[3] <= 4 < MIN_UNAMBIGUOUS_SIDE: never both
        return "NCHW", None
    if channels_last:
        return "NHWC", None
    first_possible, last_possible = shape[1] in CHANNEL_COUNTS, shape[3] in CHANNEL_COUNTS
    if first_possible and last_possible:
        layout = "NCHW" if floating else "NHWC"
        sides = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
        channels = shape[1] if layout == "NCHW" else shape[3]
        return layout, (f"shape {tuple(shape)} could be (N, C, H, W) or (N, H, W, C); read as {_LAYOUT_NAMES[layout]} "
                        f"({sides[0]}x{sides[1]} images with {channels} channels), the default for "
                        f"{'float' if floating else 'uint8'} arrays; transpose it if that is wrong")
    if first_possible:
        return "NCHW", None
    if last_possible:
        return "NHWC", None
    raise InvalidInputError(f"expected images of shape (N, H, W), (N, C, H, W) or (N, H, W, C) with C in 1, 3, 4; "
                            f"got {tuple(shape)}")


_LAYOUT_NAMES = {"NHW": "(N, H, W)", "NCHW": "(N, C, H, W)", "NHWC": "(N, H, W, C)"}


@dataclass
class RangeScan:
    """What one pass over a float array found: extremes, the first non-finite row, and per candidate peak
    (1 or 255) the values above it and the first image outside it by more than the tolerance."""

    low: float = math.inf
    high: float = -math.inf
    nonfinite_row: int | None = None
    below_zero: int = 0
    above: dict[float, int] = field(default_factory=lambda: {1.0: 0, 255.0: 0})
    first_outside: dict[float, tuple[int, float, float] | None] = field(default_factory=lambda: {1.0: None, 255.0: None})


def scan_float_range(array: np.ndarray | NpyRows, rows: int, *, atol: float = IMAGE_RANGE_ATOL) -> RangeScan:
    """Read rows 0..rows-1 of a float array in chunks of about :data:`SCAN_CHUNK_BYTES` and collect a :class:`RangeScan`."""
    scan = RangeScan()
    row_bytes = max(int(np.prod(array.shape[1:])) * array.dtype.itemsize, 1)
    step = max(1, SCAN_CHUNK_BYTES // row_bytes)
    for first in range(0, rows, step):
        chunk = np.asarray(array[first : min(first + step, rows)])
        flat = chunk.reshape(chunk.shape[0], -1)
        finite = np.isfinite(flat).all(axis=1)
        if not finite.all():
            scan.nonfinite_row = first + int(np.argmin(finite))
            return scan
        row_low, row_high = flat.min(axis=1).astype(np.float64), flat.max(axis=1).astype(np.float64)
        scan.low, scan.high = min(scan.low, float(row_low.min())), max(scan.high, float(row_high.max()))
        scan.below_zero += int(np.count_nonzero(flat < 0))
        for peak in scan.above:
            scan.above[peak] += int(np.count_nonzero(flat > peak))
            if scan.first_outside[peak] is None:
                outside = (row_low < -atol * peak) | (row_high > (1 + atol) * peak)
                if outside.any():
                    row = int(np.argmax(outside))
                    scan.first_outside[peak] = (first + row, float(row_low[row]), float(row_high[row]))
    return scan


def _float_peak(scan: RangeScan, *, name: str, value_range: str, atol: float) -> tuple[float, list[Note]]:
    """The peak (1 or 255) float values are divided by, after refusing NaN, inf and values out of range; notes."""
    if scan.nonfinite_row is not None:
        raise InvalidInputError(f"{name}: image {scan.nonfinite_row} contains NaN or inf; fix that image")
    notes, hint = [], ""
    if value_range == "auto":
        peak = 255.0 if scan.high > AUTO_RANGE_THRESHOLD else 1.0
        other = "0-1" if peak == 255.0 else "0-255"
        why = f"max {scan.high:.6g} {'>' if peak == 255.0 else '<='} {AUTO_RANGE_THRESHOLD:g}"
        notes.append(Note(f"{name}: float values in [{scan.low:.6g}, {scan.high:.6g}], read as 0-{peak:g} ({why}); "
                          f"pass {parameter('value_range', other)} if they are {other}"))
        hint = f" (range 0-{peak:g} detected, {why}; {parameter('value_range')} chooses)"
    else:
        peak = 255.0 if value_range == "0-255" else 1.0
    bad = scan.first_outside[peak]
    if bad is not None:
        raise InvalidInputError(out_of_range_message(name, bad[0], bad[1], bad[2], atol=atol, peak=peak, hint=hint))
    clipped = scan.below_zero + scan.above[peak]
    if clipped:
        notes.append(Note(f"{name}: clipped {clipped} value{'s' * (clipped != 1)} within {atol * peak:g} of "
                          f"[0, {peak:g}] into it (min {scan.low:.9g}, max {scan.high:.9g})"))
    return peak, notes


def array_image_source(array: np.ndarray | NpyRows, *, name: str, value_range: str = "auto",
                       limit: int | None = None, atol: float = IMAGE_RANGE_ATOL) -> ImageSource:
    """An :class:`ImageSource` over uint8 or float images in any layout of :func:`image_layout`.

    ``limit`` keeps the first ``limit`` images (only those are scanned and read). Batches are
    float32 (B, C, H, W) in [0, 1]; memory is one batch (a streamed ``.npy`` stays on disk).
    """
    if value_range not in VALUE_RANGES:
        raise InvalidInputError(f"{parameter('value_range')} must be auto, 0-1 or 0-255, got {value_range!r}")
    if array.dtype == np.uint8:
        floating = False
    elif array.dtype.kind == "f":
        floating = True
    else:
        raise InvalidTypeError(f"{name}: images must be uint8 or float, got dtype {array.dtype}; convert them")
    try:
        layout, ambiguity = image_layout(tuple(array.shape), floating=floating)
    except InvalidInputError as error:
        raise InvalidInputError(f"{name}: {error}") from None
    total = array.shape[0]
    if total == 0:
        raise InvalidInputError(f"{name}: holds 0 images; pass a non-empty array")
    rows = total if limit is None else min(limit, total)
    notes = [Note(f"{name}: {ambiguity}")] if ambiguity else []
    if floating:
        peak, range_notes = _float_peak(scan_float_range(array, rows, atol=atol), name=name, value_range=value_range, atol=atol)
        notes += range_notes
    else:
        peak = 255.0
        if value_range == "0-1":
            notes.append(Note(f"{name}: uint8 values are always read as 0-255; "
                              f"{parameter('value_range', '0-1')} applies to float arrays only"))

    fingerprint = InputFingerprint("array-bytes", array_header(array.dtype, array.shape))

    def read(start: int, stop: int) -> torch.Tensor:
        chunk = np.ascontiguousarray(array[start:stop])
        fingerprint.add_rows(start, stop, chunk)  # the bytes as stored, before any scaling
        if layout == "NHW":
            chunk = chunk[:, None]
        elif layout == "NHWC":
            chunk = chunk.transpose(0, 3, 1, 2)
        values = np.array(chunk, dtype=np.float32, order="C")  # a copy: the caller's array is never scaled in place
        if peak != 1.0:
            values /= np.float32(peak)
        if floating:
            np.clip(values, 0.0, 1.0, out=values)
        return torch.from_numpy(values)

    return ImageSource(name=name if rows == total else f"{name}[:{rows}]", num_samples=rows, read=read, notes=tuple(notes),
                       fingerprint=fingerprint, input_range=f"{'float' if floating else 'uint8'} 0-{peak:g}")


def array_header(dtype, shape) -> str:
    """What a fingerprint of array bytes hashes first: the dtype and the shape of one row (not N, which ``n``
    may cut), e.g. ``"<f4 (1, 8, 8)"``."""
    if isinstance(dtype, torch.dtype):
        dtype = torch.empty(0, dtype=dtype).numpy().dtype
    return f"{np.dtype(dtype).str} {tuple(int(d) for d in shape[1:])}"
