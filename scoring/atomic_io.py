"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A reader (or an interrupted run) sees either the old file or the complete new one,
never a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, payload: object) -> None:
    """Write ``payload`` as indented JSON (NaN refused) atomically."""
    write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def save_figure_atomic(figure, path: Path, *, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    write_bytes_atomic(path, buffer.getvalue())


def new_run_dir(root: Path, *, label: str = "") -> Path:
    """``root/<UTC timestamp>[-label]``, with a numeric suffix if that folder exists (not created here)."""
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + (f"-{label}" if label else "")
    candidate = Path(root) / stamp
    suffix = 2
    while candidate.exists():
        candidate = Path(root) / f"{stamp}-{suffix}"
        suffix += 1
    return candidate


def prepare_out_dir(out: Path | None, *, outputs_root: Path = Path("outputs"), label: str = "") -> Path:
    """The folder a command writes into: ``out`` if given, else a new run folder; created here."""
    from scoring.errors import InvalidInputError

    from scoring.distributed import current_group

    folder = Path(out) if out is not None else new_run_dir(outputs_root, label=label)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"--out {folder} exists and is not a folder; choose another path")
    if not current_group().is_main:
        return _scratch_dir(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInputError(f"cannot create --out {folder} ({error.strerror}); choose a writable path") from None
    return folder


_SCRATCH_DIRS: dict[Path, Path] = {}


def _scratch_dir(requested: Path) -> Path:
    """Where a torchrun rank other than 0 writes instead of ``requested``: every rank runs the same code, and
    rank 0's files are the report. One private temporary folder per requested folder (the audit's sections
    share its folder), removed when the process exits.
    """
    import atexit
    import shutil

    key = requested.resolve()
    if key in _SCRATCH_DIRS.values():  # a section handed the scratch folder it was given (the audit's)
        return key
    if key not in _SCRATCH_DIRS:
        _SCRATCH_DIRS[key] = Path(tempfile.mkdtemp(prefix="isgame-rank-")).resolve()
        atexit.register(shutil.rmtree, _SCRATCH_DIRS[key], ignore_errors=True)
    return _SCRATCH_DIRS[key]


def close_figure(figure) -> None:
    """Release a matplotlib figure once saved."""
    import matplotlib.pyplot as plt

    plt.close(figure)
