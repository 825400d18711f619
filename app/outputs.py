"""Where commands write: a fresh run folder under ``outputs/``, or the folder the user named.

Under torchrun, ranks other than 0 write into private scratch folders instead: every rank runs
the same code, and rank 0's files are the report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


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
    from isgame.scoring.errors import InvalidInputError, parameter
    from isgame.scoring.runtime.distributed import current_group

    folder = Path(out) if out is not None else new_run_dir(outputs_root, label=label)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{parameter('out', folder)} exists and is not a folder; choose another path")
    if not current_group().is_main:
        return _scratch_dir(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInputError(f"cannot create {parameter('out', folder)} ({error.strerror}); choose a writable path") from None
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


