"""Rich tables of score reports for the terminal."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.table import Table

from scoring.pipeline import ScoreReport


def make_console(*, stderr: bool) -> Console:
    """A console that keeps tables readable when output is piped (120 columns instead of 80)."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, width=None if probe.is_terminal else 120)


def score_table(reports: list[ScoreReport], *, title: str = "Inception Score") -> Table:
    """One row per report: N, K, splits, IS ± std, exp(I), I in bits ± s.e., H(y) and E[H(y|x)] in bits."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("source", no_wrap=True)
    for column in ("N", "K", "splits", "IS ± std", "exp(I)", "I bits ± s.e.", "H(y) bits", "H(y|x) bits"):
        table.add_column(column, justify="right", no_wrap=True)
    for report in reports:
        r = report.result
        stderr = r.mutual_information_stderr_bits
        mi = f"{r.mutual_information_bits:.4f}" + (f" ± {stderr:.4f}" if math.isfinite(stderr) else "")
        table.add_row(
            report.source, str(r.n), str(r.num_classes), str(r.splits), f"{r.is_mean:.4f} ± {r.is_std:.4f}",
            f"{r.improved_is:.4f}", mi, f"{r.marginal_entropy_bits:.4f}", f"{r.conditional_entropy_bits:.4f}",
        )
    return table
