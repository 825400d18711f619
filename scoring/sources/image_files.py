"""Image files: decoding one file, and sources over a folder tree or a ``.zip`` of images.

Both read one image at a time (memory is one batch) in a stable order: the sorted relative
paths (folders) or member names (zips), compared as strings, as ``sorted(glob(...))`` does in
torch-fidelity and clean-fid. Files whose suffix is not an image's are skipped and counted in a
note; so are hidden files and folders (names starting with ``.``, and macOS's ``__MACOSX``),
which ``glob`` skips too. Nothing is extracted to disk; PIL's decompression-bomb guard stays on.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.notes import Note
from isgame.scoring.sources.fingerprint import InputFingerprint
from isgame.scoring.sources.image_source import ImageSource

#: Suffixes read as images (case-insensitive). GIF, TIFF and WEBP give their first frame.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: A zip member larger than this once decompressed is refused (a zip bomb's signature), in bytes.
MAX_ZIP_MEMBER_BYTES = 256 * 2**20
#: Folder and member names never read: macOS's resource forks in zips.
IGNORED_FOLDERS = ("__MACOSX",)


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _is_hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") or part in IGNORED_FOLDERS for part in parts)


def read_image_file(path: Path) -> torch.Tensor:
    """One image file as a float32 (C, H, W) tensor in [0, 1]; C = 1 (grey), 3 (RGB) or 4 (RGBA)."""
    return decode_image(path, where=str(path))


def decode_image(file: Path | BinaryIO, *, where: str) -> torch.Tensor:
    """Decode a PNG, JPEG, WEBP, BMP, TIFF or GIF (first frame) to a float32 (C, H, W) tensor in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image.load()  # the first frame of an animated GIF / WEBP or a multi-page TIFF
            mode = image.mode
            if mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif mode in ("LA", "PA"):
                image = image.convert("RGBA")
            elif mode == "1":
                image = image.convert("L")
            elif mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                array = np.asarray(image, dtype=np.float64)
                peak = 65535.0 if mode.startswith("I;16") else max(float(array.max()), 1.0)
                return torch.from_numpy((array / peak).clip(0, 1).astype(np.float32))[None]
            elif mode not in ("L", "RGB", "RGBA"):
                image = image.convert("RGB")
            array = np.asarray(image, dtype=np.uint8)
    except Image.DecompressionBombError as error:
        raise InvalidInputError(f"{where}: refused as a possible decompression bomb ({error}); shrink the image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidInputError(f"{where}: not a readable image ({type(error).__name__}: {error}); remove or re-save it") from None
    tensor = torch.from_numpy(array.astype(np.float32) / 255.0)
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def _skipped_note(where: object, skipped: Counter, hidden: int) -> list[Note]:
    """``where: skipped 3 files that are not images (2 .txt, 1 .json)`` and the hidden entries, if any."""
    notes = []
    total = sum(skipped.values())
    if total:
        kinds = ", ".join(f"{count} {suffix or 'without suffix'}" for suffix, count in skipped.most_common(4))
        more = ", ..." if len(skipped) > 4 else ""
        notes.append(Note(f"{where}: skipped {total} file{'s' * (total != 1)} that {'are' if total != 1 else 'is'} "
                          f"not an image ({kinds}{more}); images are {', '.join(IMAGE_SUFFIXES)}"))
    if hidden:
        notes.append(Note(f"{where}: skipped {hidden} hidden entr{'ies' if hidden != 1 else 'y'} (names starting "
                          "with '.' or __MACOSX), as glob does"))
    return notes


def list_image_files(folder: Path) -> tuple[list[Path], Counter, int]:
    """Image files under ``folder`` at any depth, sorted by relative path; the skipped suffixes; hidden entries skipped."""
    found: list[tuple[str, Path]] = []
    skipped: Counter = Counter()
    hidden = 0
    for directory, folders, files in os.walk(folder):
        hidden += sum(1 for name in folders if _is_hidden((name,)))
        folders[:] = [name for name in folders if not _is_hidden((name,))]
        for name in files:
            if _is_hidden((name,)):
                hidden += 1
            elif is_image_name(name):
                path = Path(directory, name)
                found.append((path.relative_to(folder).as_posix(), path))
            else:
                skipped[Path(name).suffix.lower()] += 1
    found.sort(key=lambda item: item[0])
    return [path for _, path in found], skipped, hidden


def folder_source(folder: Path) -> ImageSource:
    """Every image under ``folder``, subfolders included (a class-per-folder layout works), in sorted order."""
    files, skipped, hidden = list_image_files(folder)
    if not files:
        raise InvalidInputError(
            f"{folder}: no images found at any depth ({sum(skipped.values())} other files); "
            f"put {', '.join(IMAGE_SUFFIXES)} files in the folder or its subfolders"
        )

    fingerprint = InputFingerprint("files")

    def read(start: int, stop: int) -> list[torch.Tensor]:
        # Each file is read once: the bytes feed the fingerprint and then the decoder.
        contents = [(path.relative_to(folder).as_posix(), _read_bytes(path)) for path in files[start:stop]]
        fingerprint.add_files(start, contents)
        return [decode_image(io.BytesIO(data), where=str(path)) for path, (_, data) in zip(files[start:stop], contents)]

    return ImageSource(name=str(folder), num_samples=len(files), read=read, notes=tuple(_skipped_note(folder, skipped, hidden)),
                       fingerprint=fingerprint, input_range="image files, 0-255 per channel (16-bit: 0-65535)")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InvalidInputError(f"{path}: cannot read this file ({error.strerror}); check its permissions") from None


def zip_source(path: Path) -> ImageSource:
    """The image members of a ``.zip``, sorted by name and read on demand (never extracted to disk)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise InvalidInputError(f"{path}: not a readable zip archive ({type(error).__name__}: {error}); re-create it") from None
    members, skipped, hidden = [], Counter(), 0
    for info in infos:
        if info.is_dir():
            continue
        parts = PurePosixPath(info.filename).parts
        if _is_hidden(parts):
            hidden += 1
        elif is_image_name(info.filename):
            members.append(info)
        else:
            skipped[PurePosixPath(info.filename).suffix.lower()] += 1
    if not members:
        raise InvalidInputError(f"{path}: no images among its {len(infos)} members; zip {', '.join(IMAGE_SUFFIXES)} files")
    members.sort(key=lambda info: info.filename)
    fingerprint = InputFingerprint("files")

    def read(start: int, stop: int) -> list[torch.Tensor]:
        # A handle per batch, closed with it: nothing stays open between batches, and a forked worker never
        # shares its parent's file offset.
        with zipfile.ZipFile(path) as archive:
            contents = [(info.filename, _read_member(archive, info, where=f"{path}:{info.filename}"))
                        for info in members[start:stop]]
        fingerprint.add_files(start, contents)
        return [decode_image(io.BytesIO(data), where=f"{path}:{name}") for name, data in contents]

    return ImageSource(name=str(path), num_samples=len(members), read=read, notes=tuple(_skipped_note(path, skipped, hidden)),
                       fingerprint=fingerprint, input_range="image files, 0-255 per channel (16-bit: 0-65535)")


def image_file_sizes(path: Path) -> set[tuple[int, int]]:
    """Every (H, W) among the image files of a folder (any depth) or the image members of a ``.zip``, read from
    their headers; a file that is no readable image is refused as reading it would be."""
    from PIL import Image, UnidentifiedImageError

    def size_of(file, where: str) -> tuple[int, int]:
        try:
            with Image.open(file) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
            raise InvalidInputError(f"{where}: not a readable image ({type(error).__name__}: {error}); remove or "
                                    "re-save it") from None
        return height, width

    if path.is_dir():
        return {size_of(file, str(file)) for file in list_image_files(path)[0]}
    with zipfile.ZipFile(path) as archive:
        return {size_of(io.BytesIO(_read_member(archive, info, where=f"{path}:{info.filename}")),
                        f"{path}:{info.filename}")
                for info in archive.infolist()
                if not info.is_dir() and is_image_name(info.filename)
                and not _is_hidden(PurePosixPath(info.filename).parts)}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, where: str) -> bytes:
    """The decompressed bytes of one member, refusing a zip bomb."""
    if info.file_size > MAX_ZIP_MEMBER_BYTES:
        raise InvalidInputError(f"{where}: {info.file_size} bytes once decompressed, more than "
                                f"{MAX_ZIP_MEMBER_BYTES} allowed for one image; remove it from the zip")
    try:
        with archive.open(info) as member:
            data = member.read(MAX_ZIP_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, OSError, EOFError) as error:
        raise InvalidInputError(f"{where}: cannot read this zip member ({type(error).__name__}: {error}); re-create the zip") from None
    if len(data) > MAX_ZIP_MEMBER_BYTES:
        raise InvalidInputError(f"{where}: decompresses to more than {MAX_ZIP_MEMBER_BYTES} bytes; remove it from the zip")
    return data
