"""``isgame weights``: the tables and JSON payloads of list, path, fetch and verify.

The library calls live in :mod:`isgame.scoring.classifiers.weights_registry` (list, path, verify)
and :mod:`isgame.scoring.classifiers.weights_fetch` (fetch, the only download isgame does); this
module only shapes their results for the command line.
"""

from __future__ import annotations

from rich import box
from rich.table import Table

from isgame.scoring.classifiers.weights_fetch import WeightsFetchResult
from isgame.scoring.classifiers.weights_registry import WeightsStatus, WeightsVerification, cache_dirs


def weights_listing(statuses: list[WeightsStatus]) -> dict[str, object]:
    """The JSON of ``isgame weights list``: every known file, and the folders searched in order."""
    return {"weights": [status.to_dict() for status in statuses],
            "cache_dirs": [str(folder) for folder in cache_dirs()]}


def weights_table(statuses: list[WeightsStatus]) -> Table:
    """One row per known file: name, classifier, file, SHA-256 (or its prefix, marked), and where it is."""
    table = Table(title="Known weights", box=box.SIMPLE_HEAD)
    for column in ("name", "classifier", "file", "sha256", "cached"):
        table.add_column(column, no_wrap=column != "cached")
    for status in statuses:
        entry = status.entry
        digest = f"{entry.sha256[:16]}…" if entry.sha256 else f"{entry.hash_prefix} (prefix only)"
        where = str(status.path) if status.present else "missing"
        if status.verified is not None:
            where += " (hash ok)" if status.verified else " (HASH MISMATCH)"
        table.add_row(entry.name, entry.classifier, entry.file_name, digest, where)
    return table


def fetch_summary(result: WeightsFetchResult) -> str:
    """One line saying what ``isgame weights fetch`` did."""
    checked = "SHA-256 verified" if result.hash_checked == "sha256" else "hash prefix verified (full hash unknown)"
    if not result.downloaded:
        return f"{result.file_name}: already in {result.path.parent}, {checked}; nothing downloaded"
    resumed = f", resumed after {result.resumed_from_bytes} bytes" if result.resumed_from_bytes else ""
    return f"{result.file_name}: {result.size_bytes} bytes from {result.url}{resumed}, {checked}; at {result.path}"


def verification_line(result: WeightsVerification) -> str:
    """One line: the verdict and what it means."""
    return f"{result.path}: {result.verdict}: {result.message}"
