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


def dialect_table_view(table) -> Table:
    """One row per dialect: IS, std in its convention, splits and rows used; the spread as caption."""
    view = Table(title="Inception Score in each implementation's dialect (same logits)", box=box.SIMPLE_HEAD)
    for column in ("dialect", "IS", "std", "splits", "rows used", "std convention"):
        view.add_column(column, justify="left" if column in ("dialect", "std convention") else "right", no_wrap=True)
    for s in table.scores:
        view.add_row(s.dialect, f"{s.is_mean:.4f}", "-" if math.isnan(s.is_std) else f"{s.is_std:.4f}", str(s.splits),
                     str(s.rows_used), s.std_convention)
    if len(table.scores) > 1:
        view.caption = f"spread across dialects: {table.spread_percent:.2f}% of the mean"
    return view
