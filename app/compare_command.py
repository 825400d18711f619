"""``isgame compare``: read two saved score results (and optionally a table of every dialect) and compare them.

The comparison itself is :func:`isgame.scoring.compare.compare_results`; this module knows the commands' JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from isgame.scoring.compare import Comparison, ScoredResult, compare_results
from isgame.scoring.errors import InvalidInputError, SourceNotFoundError, parameter


def read_result(path: str | Path, *, role: str = "a") -> ScoredResult:
    """Read a saved JSON result of ``isgame score``; refuse others in one line."""
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"{parameter(role, path)} not found; pass the saved JSON result of isgame score")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInputError(f"{path}: not JSON ({type(error).__name__}); pass the saved JSON result of isgame score")
    if not isinstance(data, dict) or "provenance" not in data:
        raise InvalidInputError(f"{path}: holds no provenance block; score again with this version of isgame and save "
                                "its JSON result (older results and other commands' JSON cannot be compared)")
    provenance = data["provenance"]
    if "is_mean" in data:
        return ScoredResult(path=str(path), is_mean=float(data["is_mean"]), is_std=float(data["is_std"]),
                            splits=int(data["splits"]), n=int(data["n"]), improved_is=data.get("improved_is"),
                            mi_stderr_nats=data.get("mutual_information_stderr_nats"),
                            class_counts=data.get("class_counts"), provenance=provenance,
                            sample_order=data.get("sample_order"))
    dialects = data.get("dialects")
    if isinstance(dialects, list) and len(dialects) == 1:
        score = dialects[0]
        return ScoredResult(path=str(path), is_mean=float(score["is_mean"]), is_std=float(score["is_std"]),
                            splits=int(score["splits"]), n=int(score["rows_used"]), improved_is=None,
                            mi_stderr_nats=None, class_counts=None, provenance=provenance, sample_order=None)
    raise InvalidInputError(f"{path}: not a single IS result ({'a table of every dialect' if dialects else 'no is_mean'});"
                            f" compare two isgame score results (a table of every dialect serves as "
                            f"{parameter('dialect_spread')})")


def read_dialect_spread(path: str | Path) -> float:
    """``spread_percent`` of an ``isgame score --dialect all`` JSON."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SourceNotFoundError(f"{parameter('dialect_spread', path)} not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError, OSError) as error:
        raise InvalidInputError(f"{parameter('dialect_spread', path)}: not JSON ({type(error).__name__})") from None
    if not isinstance(data, dict) or len(data.get("dialects") or []) < 2 or "spread_percent" not in data:
        raise InvalidInputError(f"{parameter('dialect_spread', path)} is not a table of every dialect; save the JSON "
                                "result of isgame score on the samples in dialect all")
    return float(data["spread_percent"])


def compare_files(a: str | Path, b: str | Path, *, dialect_spread: str | Path | None = None) -> Comparison:
    """:func:`compare_results` of two ``isgame score --json`` files; ``dialect_spread`` a ``--dialect all`` JSON."""
    spread = None if dialect_spread is None else read_dialect_spread(dialect_spread)
    return compare_results(read_result(a, role="a"), read_result(b, role="b"), dialect_spread=spread)
