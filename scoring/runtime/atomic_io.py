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


def json_ready(payload: object) -> object:
    """``payload`` with every NaN or infinite float replaced by None (JSON's null), at any depth.

    A std over one split, or the standard error of one KID subset, is undefined: JSON says null rather
    than the non-standard NaN that strict parsers refuse.
    """
    import math

    if isinstance(payload, float) and not math.isfinite(payload):
        return None
    if isinstance(payload, dict):
        return {key: json_ready(value) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [json_ready(value) for value in payload]
    return payload


def json_text(payload: object) -> str:
    """Indented JSON of :func:`json_ready` ``payload``, with a final newline."""
    return json.dumps(json_ready(payload), indent=2, allow_nan=False) + "\n"


def write_json_atomic(path: Path, payload: object) -> None:
    """Write ``payload`` as indented JSON (undefined floats as null) atomically."""
    write_text_atomic(path, json_text(payload))
