"""Rich tables of probe results for the terminal."""

from __future__ import annotations

from rich import box
from rich.table import Table

from probes.commands import ProbeReport


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=True)
    return table


def memorization_table(report: ProbeReport) -> Table:
    table = _table("memorisation: IS cannot see copies; C_T and authenticity can",
                   ["generator", "IS", "I bits", "C_T px", "C_T feat", "authentic", "near-copies", "median d ratio"])
    for g in report.result.generators:
        table.add_row(g.name, f"{g.is_mean:.3f}", f"{g.mutual_information_bits:.3f}", f"{g.ct_statistic:.2f}",
                      f"{g.ct_statistic_features:.2f}", f"{g.authenticity:.3f}", f"{g.near_copy_fraction:.3f}",
                      f"{g.median_distance_ratio:.3f}")
    return table


def noise_table(report: ProbeReport) -> Table:
    r = report.result
    table = _table(f"noise baselines (log2 K = {r.max_entropy_bits:.3f} bits)",
                   ["input", "N", "E[H(y|x)] bits", "H(y) bits", "I bits", "mean top-1", "IS"])
    for row in r.rows:
        table.add_row(row.name, str(row.n), f"{row.conditional_entropy_bits:.4f}", f"{row.marginal_entropy_bits:.4f}",
                      f"{row.mutual_information_bits:.4f}", f"{row.mean_max_probability:.4f}", f"{row.inception_score:.4f}")
    table.caption = ("Published (Barratt & Sharma 2018, Inception v3, log2 1000 = 9.97 bits; not measured here): "
                     "E[H(y|x)] CIFAR-10 4.664, noise 6.512, ImageNet validation 1.97 bits")
    return table


def sensitivity_table(report: ProbeReport) -> Table:
    r = report.result
    table = _table("sensitivity: what moves the IS", ["what", "on", "min IS", "max IS", "spread %"])
    for sweep in r.splits:
        values = sweep.is_unshuffled + sweep.is_shuffled
        table.add_row("splits 1..100", sweep.dataset, f"{min(values):.3f}", f"{max(values):.3f}", f"{sweep.spread_percent:.1f}")
    count = r.sample_count
    table.add_row("N 500..50,000", f"synthetic (exact {count.exact_is:.1f})", f"{min(count.inception_scores):.3f}",
                  f"{max(count.inception_scores):.3f}", "-")
    for spread in r.weights:
        values = spread.scores.values()
        table.add_row("weights", spread.samples, f"{min(values):.3f}", f"{max(values):.3f}", f"{spread.spread_percent:.2f}")
    for spread in r.preprocessing:
        values = spread.scores.values()
        table.add_row("preprocessing", spread.samples.split(",")[0], f"{min(values):.3f}", f"{max(values):.3f}",
                      f"{spread.spread_percent:.2f}")
    table.caption = (f"synthetic K = 1000: 10 splits of 5,000 give IS {count.is_with_5000_per_split:.1f} against an exact "
                     f"{count.exact_is:.1f}; published weights spread (Inception v3, Torch vs Keras): 11.5%")
    return table


def domain_table(report: ProbeReport) -> Table:
    r = report.result
    table = _table("domain mismatch: a digit classifier on photographs",
                   ["images", "N", "IS", "mean top-1", f"top-1 >= {r.confidence_threshold}", "E[H(y|x)] bits", "H(y) bits"])
    for row in r.rows:
        table.add_row(row.name, str(row.n), f"{row.inception_score:.3f}", f"{row.mean_max_probability:.3f}",
                      f"{100 * row.fraction_confident:.1f}%", f"{row.conditional_entropy_bits:.3f}", f"{row.marginal_entropy_bits:.3f}")
    return table


PROBE_TABLES = {"memorization": memorization_table, "noise": noise_table, "sensitivity": sensitivity_table,
                "domain": domain_table}


def matrix_table(report: ProbeReport) -> Table:
    """Values per game and metric; a trailing ✗ marks a game that fools the metric."""
    r = report.result
    short = {"precision": "prec.", "recall": "rec.", "density": "dens.", "coverage": "cov.", "authenticity": "auth."}
    table = _table("robustness matrix (✗: scores at least as well as held-out real data)",
                   ["game"] + [short.get(m, m) for m in r.metrics])
    for game in r.games:
        table.add_row(game[:24], *[f"{r.cells[game][m].value:.3g}" + ("✗" if r.cells[game][m].fooled and game != r.games[0] else "")
                                   for m in r.metrics])
    return table
