"""Rich tables of every command's result, for the terminal."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table

if TYPE_CHECKING:  # annotations only: importing the commands would pull scikit-learn and foolbox into `isgame score`
    from isgame.app.attack_commands import BoundedReport, InflateReport, ToyReport
    from isgame.app.metrics_command import MetricsResult
    from isgame.app.probe_commands import ProbeReport
    from isgame.app.robustness_command import RobustnessReport
    from isgame.scoring.pipeline import ScoreReport


def make_console(*, stderr: bool) -> Console:
    """A console that keeps tables readable when output is piped (120 columns instead of 80)."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, width=None if probe.is_terminal else 120)


#: the longest a path is shown in a table cell; the full path is in the JSON
PATH_LABEL_WIDTH = 36
#: the narrowest a label column (the first, which may wrap) is counted as when a table is folded to fit
LABEL_FLOOR = 16


def short_path(text: str, width: int = PATH_LABEL_WIDTH) -> str:
    """``text`` as at most ``width`` characters: a longer path keeps its tail, from a folder boundary where one
    falls in the second half, behind "…" (the file name is what tells two runs apart)."""
    if len(text) <= width:
        return text
    tail = text[len(text) - (width - 1):]
    cut = tail.find("/")
    if 0 <= cut < len(tail) // 2:
        tail = tail[cut:]
    return "…" + tail


class FoldingTable(Table):
    """A rich table that never cuts a number. Rich fits a table too wide for the console by cutting its no_wrap
    columns with "…"; this one first lets its label column (the first, which wraps) narrow to
    :data:`LABEL_FLOOR`, and when that is not enough shows its columns as several tables that each fit, the
    label column repeated in each (the title above the first, the caption below them all)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        parts = self._column_groups(console, options)
        if len(parts) == 1:
            yield from super().__rich_console__(console, options)
            return
        for index, columns in enumerate(parts):
            yield self._part(columns, first=index == 0)
        if self.caption:  # under the last part, as wide as the console rather than that part
            yield console.render_str(self.caption, style=self.caption_style or "table.caption") \
                if isinstance(self.caption, str) else self.caption

    def _column_groups(self, console: Console, options: ConsoleOptions) -> list[list[int]]:
        """Indices of the columns of each table shown: one group when every column fits whole."""
        wide = options.update_width(10_000)
        widths = []
        for index, column in enumerate(self.columns):
            natural = max([Measurement.get(console, wide, _renderable(console, cell)).maximum
                           for cell in [column.header, *column._cells]], default=0)
            shrinkable = not column.no_wrap and index == 0
            widths.append(min(natural, LABEL_FLOOR) if shrinkable else natural)
            widths[-1] += self._get_padding_width(index)
        edges, divider = (2 if self.box and self.show_edge else 0), (1 if self.box else 0)
        groups, current = [], [0]
        for index in range(1, len(self.columns)):
            candidate = current + [index]
            if current != [0] and sum(widths[i] for i in candidate) + edges + divider * (len(candidate) - 1) \
                    > options.max_width:
                groups.append(current)
                candidate = [0, index]
            current = candidate
        return groups + [current]

    def _part(self, indices: list[int], *, first: bool) -> Table:
        part = Table(title=self.title if first else None, box=self.box,
                     show_edge=self.show_edge, padding=self.padding, pad_edge=self.pad_edge,
                     title_style=self.title_style, caption_style=self.caption_style, header_style=self.header_style)
        for index in indices:
            part.columns.append(dataclasses.replace(self.columns[index], _cells=list(self.columns[index]._cells),
                                                    _index=len(part.columns)))
        part.rows = list(self.rows)
        return part


def _renderable(console: Console, cell):
    return console.render_str(cell) if isinstance(cell, str) else cell


def score_table(reports: list[ScoreReport], *, title: str = "Inception Score") -> Table:
    """One row per report: N, K, splits, IS ± std, exp(I), I in bits ± s.e., H(y) and E[H(y|x)] in bits. A long
    source path is shown by its tail (:func:`short_path`)."""
    table = FoldingTable(title=title, box=box.SIMPLE_HEAD)
    table.add_column("source", overflow="fold")
    for column in ("N", "K", "splits", "IS ± std", "exp(I)", "I bits ± s.e.", "H(y) bits", "H(y|x) bits"):
        table.add_column(column, justify="right", no_wrap=True)
    for report in reports:
        r = report.result
        stderr = r.mutual_information_stderr_bits
        mi = f"{r.mutual_information_bits:.4f}" + (f" ± {stderr:.4f}" if math.isfinite(stderr) else "")
        table.add_row(
            short_path(report.source), str(r.n), str(r.num_classes), str(r.splits), f"{r.is_mean:.4f} ± {r.is_std:.4f}",
            f"{r.improved_is:.4f}", mi, f"{r.marginal_entropy_bits:.4f}", f"{r.conditional_entropy_bits:.4f}",
        )
    return table


def dialect_table_view(table) -> Table:
    """One row per dialect: IS, std in its convention, splits and rows used; the source and classifier in the
    title, the spread (and the uint8 truncation's re-runs) in the caption.

    ``table`` is a :class:`~scoring.dialects.DialectReport` or a bare :class:`~scoring.dialects.DialectTable`.
    """
    from rich.markup import escape

    title = "Inception Score in each implementation's dialect (same logits)"
    source, classifier = getattr(table, "source", None), getattr(table, "classifier", None)
    if source is not None:
        scored_by = (f"{classifier['name']} (weights sha256 {str(classifier.get('weights_sha256') or '-')[:12]})"
                     if classifier else "no classifier: logits as given")
        title = f"{title}\n{escape(source)}, N = {table.to_dict().get('n', '?')}, {escape(scored_by)}"
    view = FoldingTable(title=title, box=box.SIMPLE_HEAD)
    for column in ("dialect", "IS", "std", "splits", "rows used", "std convention"):
        view.add_column(column, justify="left" if column in ("dialect", "std convention") else "right", no_wrap=True)
    for s in table.scores:
        view.add_row(s.dialect, f"{s.is_mean:.4f}", "-" if math.isnan(s.is_std) else f"{s.is_std:.4f}", str(s.splits),
                     str(s.rows_used), s.std_convention)
    caption = []
    if len(table.scores) > 1:
        caption.append(f"spread across dialects: {table.spread_percent:.2f}% of the mean")
    truncation = getattr(table, "extra", {}).get("uint8_truncation")
    if truncation is not None:
        caption.append(f"torchmetrics: float images truncated to uint8; {truncation['images_rerun']} of them changed "
                       "and ran through the network again")
    if caption:
        view.caption = "\n".join(caption)
    return view


def inflate_table(report: InflateReport) -> Table:
    """Initial and final IS per run, against K and the real held-out IS."""
    r = report.result
    table = FoldingTable(title=f"inflate: n = {r.n} {report.noise} noise, K = {r.num_classes}, real held-out IS = "
                  f"{'not measured (no real images)' if report.real_is is None else f'{report.real_is:.4f}'}",
                  box=box.SIMPLE_HEAD)
    for column in ("run", "steps", "to .999K", "seconds", "f+b/n", "start IS", "final IS", "IS / K", "uint8 IS", "H(y|x) bits"):
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
    for name, run in {r.optimizer: r, **report.comparison}.items():
        reached = run.steps_to_fraction_of_k(0.999)
        table.add_row(name, str(run.steps), "-" if reached is None else str(reached), f"{run.seconds:.2f}",
                      f"{run.gradient_evaluations_per_sample:.2f}",
                      f"{run.initial_is:.4f}", f"{run.final_is:.4f}", f"{run.final_is / run.num_classes:.5f}",
                      f"{run.final_is_uint8:.4f}", f"{run.final_conditional_entropy_bits:.2e}")
    return table


def bounded_table(report: BoundedReport) -> Table:
    """Per norm and ε: the attack's score (the strategy that won most splits), beside own-class and cycling-target
    PGD (foolbox); exp(I), labels changed, mean L2 distance. The thresholds (bracketed by bisection) and the
    ceilings in the caption."""
    first = report.sweeps[0]
    table = FoldingTable(title=f"ε-bounded IS ascent ({first.strategy}) on {short_path(report.source)}, "
                         f"{first.protocol.describe()}",
                  box=box.SIMPLE_HEAD)
    for column in ("norm", "ε × 255", "IS", "won by", "own-class PGD", "cycling PGD", "exp(I)", "labels changed",
                   "mean L2"):
        table.add_column(column, justify="left" if column == "won by" else "right", no_wrap=True)
    captions = []
    for sweep in report.sweeps:
        cycling, own_class = sweep.cycling or [None] * len(sweep.scores), sweep.baseline or [None] * len(sweep.scores)
        for s, own, cyc in zip(sweep.scores, own_class, cycling):
            table.add_row(sweep.norm, f"{s.epsilon * 255:.3g}", f"{s.is_mean:.4f}", s.strategy,
                          "-" if own is None else f"{own.is_mean:.4f}",
                          "-" if cyc is None else f"{cyc.is_mean:.4f}", f"{s.improved_is:.4f}",
                          f"{100 * s.labels_changed:.1f}%", f"{s.mean_l2_distance:.4f}")
        thresholds = "; ".join(f"+{name}% {_fmt_search(search)}" for name, search in sweep.thresholds.items())
        captions.append(f"{sweep.norm}: clean IS {sweep.clean_score:.4f}; {thresholds}; "
                        f"{sweep.ceiling.labels_kept:.4f} with every image certain of its current class, "
                        f"{sweep.ceiling.labels_changed:.4f} at most with labels changing")
    table.caption = "\n".join(captions)
    return table


def _fmt_search(search) -> str:
    """"at ε = 6.73/255 (bracket 5.66-6.73)" or "not reached on the grid"."""
    if search.epsilon is None:
        return "not reached on the grid"
    low, high = search.bracket
    return f"at ε = {high * 255:.3g}/255 (bracket {low * 255:.3g}-{high * 255:.3g})"


def toy_table(report: ToyReport) -> Table:
    """IS per generator, integrated and Monte Carlo."""
    table = FoldingTable(title=f"1-D counter-example (K = 2), Monte Carlo n = {report.result.n}", box=box.SIMPLE_HEAD)
    for column in ("generator", "IS (integrated)", "IS (Monte Carlo)", "± s.e.", "p(y=1)", "E[H(y|x)] nats"):
        table.add_column(column, justify="left" if column == "generator" else "right", no_wrap=True)
    for g in report.result.generators:
        table.add_row(g.name, f"{g.inception_score:.6f}", f"{g.inception_score_mc:.6f}", f"{g.mc_stderr:.2e}",
                      f"{g.marginal_class1:.4f}", f"{g.conditional_entropy_nats:.4f}")
    return table


def _table(title: str, columns: list[str]) -> Table:
    table = FoldingTable(title=title, box=box.SIMPLE_HEAD)
    for i, column in enumerate(columns):
        # the label column wraps (never a number); the numbers never do, and FoldingTable keeps them whole
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i > 0, overflow="fold")
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
                      f"{row.mutual_information_bits:.4f}", f"{row.mean_max_probability:.4f}", f"{row.is_mean:.4f}")
    table.caption = ("Published (Barratt & Sharma 2018, Inception v3, log2 1000 = 9.97 bits; not measured here): "
                     "E[H(y|x)] CIFAR-10 4.664, noise 6.512, ImageNet validation 1.97 bits")
    return table


def sensitivity_table(report: ProbeReport) -> Table:
    r = report.result
    table = _table("sensitivity: what moves the IS", ["what", "on", "min IS", "max IS", "spread %"])
    for sweep in r.splits:
        values = sweep.is_unshuffled + sweep.is_shuffled
        table.add_row(f"splits {min(sweep.split_counts)}..{max(sweep.split_counts)}", sweep.dataset, f"{min(values):.3f}", f"{max(values):.3f}", f"{sweep.spread_percent:.1f}")
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
    for spread in r.jpeg:
        values = spread.scores.values()
        table.add_row("JPEG quality", spread.samples.split(",")[0], f"{min(values):.3f}", f"{max(values):.3f}",
                      f"{spread.spread_percent:.2f}")
    table.caption = (f"synthetic K = 1000: 10 splits of 5,000 give IS {count.is_with_5000_per_split:.1f} against an exact "
                     f"{count.exact_is:.1f}; published weights spread (Inception v3, Torch vs Keras): 11.5%")
    return table


def domain_table(report: ProbeReport) -> Table:
    r = report.result
    table = _table("domain mismatch: a digit classifier on photographs" if report.result.rows[0].name == "held-out digits"
                   else "domain mismatch: the classifier on images outside its domain",
                   ["images", "N", "IS", "mean top-1", f"top-1 >= {r.confidence_threshold}", "E[H(y|x)] bits", "H(y) bits"])
    for row in r.rows:
        table.add_row(row.name, str(row.n), f"{row.is_mean:.3f}", f"{row.mean_max_probability:.3f}",
                      f"{100 * row.fraction_confident:.1f}%", f"{row.conditional_entropy_bits:.3f}", f"{row.marginal_entropy_bits:.3f}")
    return table


PROBE_TABLES = {"memorization": memorization_table, "noise": noise_table, "sensitivity": sensitivity_table,
                "domain": domain_table}


#: metric columns per terminal table: the matrix's 20 columns are shown as a few tables of at most this many
MATRIX_TABLE_COLUMNS = 7


#: the mark a matrix cell carries in the terminal for its verdict (rich markup)
VERDICT_MARKS = {"missed": " [bold red]✗[/]", "false_alarm": " [yellow]![/]", "not_applicable": " [dim]·[/]"}


def matrix_table(report: ProbeReport):
    """Values per game and metric, in tables of at most :data:`MATRIX_TABLE_COLUMNS` metrics (a rich Group); each
    value is marked by its verdict: ✗ missed (a game in the metric's scope that it does not flag), ! false alarm,
    · not applicable; an unmarked value is detected, no alarm or the reference."""
    from rich.console import Group

    r = report.result
    short = {"precision": "prec.", "recall": "rec.", "density": "dens.", "coverage": "cov.", "authenticity": "auth."}
    tables = []
    for start in range(0, len(r.metrics), MATRIX_TABLE_COLUMNS):
        metrics = r.metrics[start:start + MATRIX_TABLE_COLUMNS]
        part = f" ({start // MATRIX_TABLE_COLUMNS + 1}/{math.ceil(len(r.metrics) / MATRIX_TABLE_COLUMNS)})"
        table = _table(f"robustness matrix{part if len(r.metrics) > MATRIX_TABLE_COLUMNS else ''} (✗ missed, ! false "
                       f"alarm, · not in the metric's scope; Holm within each column, α = {r.alpha:g})",
                       ["game"] + [short.get(m, m) for m in metrics])
        for game in r.games:
            table.add_row(game, *[_matrix_value(r.cells[game][m]) for m in metrics])
        tables.append(table)
    return Group(*tables)


def _matrix_value(cell) -> str:
    value = "n/a" if math.isnan(cell.value) else f"{cell.value:.3g}"
    return value + VERDICT_MARKS.get(cell.verdict, "")


def matrix_confusion_table(result) -> Table:
    """Per metric: what it claims, and how many games it detected, missed and falsely flagged."""
    table = _table("verdicts per metric", ["metric", "claims", "detected", "missed", "false alarms", "no alarm",
                                           "not in scope", "undecided"])
    from isgame.probes.matrix.measurements import METRIC_SCOPES

    for metric, counts in result.confusion().items():
        table.add_row(metric, ", ".join(METRIC_SCOPES[metric]), str(counts["detected"]),
                      str(counts["missed"]), str(counts["false_alarm"]), str(counts["no_alarm"]),
                      str(counts["not_applicable"]), str(counts["undecided"]))
    return table


def matrix_summary_lines(result) -> list[str]:
    """Below the matrix's table: one paragraph per metric, then the FID of real subsets at each N (its finite-N
    bias), for a :class:`~isgame.probes.matrix.MatrixResult`."""
    caveat = ", ".join(f"N={size}: {value:.2f}" for size, value in zip(result.fid_sample_sizes,
                                                                     result.fid_of_real_subsets))
    unfooled = ", ".join(result.unfooled_metrics()) or "none"
    return [*result.paragraphs().values(),
            f"Metrics that detect every game in their scope: {unfooled}.",
            f"FID of real held-out subsets against the training set (finite-N bias): {caveat}"]


def check_lines(result) -> list[str]:
    """``isgame check``'s verdict in rich markup: the verdict and the protocol's figure, then each answer with its
    reasons, for a :class:`~isgame.probes.claim.CheckResult`."""
    from rich.markup import escape

    protocol = result.protocol
    lines = [f"[bold]verdict: {result.verdict}[/bold] (claimed {result.claimed:g} ± {result.claimed_std:g}; "
             f"{escape(protocol['dialect'])} with {protocol['splits']} splits over N = {protocol['n']}: "
             f"{protocol['is_mean']:.4f} ± {protocol['tolerance']:.4f}; every convention {result.spread[0]:.4f} "
             f"to {result.spread[1]:.4f})"]
    for answer, yes, reasons in (("reproduced", result.reproduced, result.reproduced_reasons),
                                 ("meaningful", result.meaningful, result.meaningful_reasons)):
        lines.append(f"  {answer}: {'yes' if yes else 'no'}")
        lines.extend(f"    - {escape(reason)}" for reason in reasons)
    return lines


def _undefined(value: object) -> bool:
    """A figure the result leaves undefined (None, or NaN: a std of one value)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _format_value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def metrics_table(result: MetricsResult) -> Table:
    """One row per metric: its headline values; the sample counts and classifier in the title."""
    real = f"{result.real} (stored statistics)" if result.real_is_statistics else f"{result.real} (N = {result.n_real})"
    train = "" if result.train is None else f"; train {result.train} (N = {result.n_train})"
    space = "logits (it returns no features)" if result.classifier.get("features_are_logits") else "features"
    table = _table(f"{result.fake} (N = {result.n_fake}) against {real}{train}, on {result.feature_dim}-d "
                   f"{result.classifier.get('name', '')} {space}", ["metric", "value", "details"])
    from isgame.app.metrics_command import METRICS

    for name, values in result.values.items():
        headline = METRICS[name].headline if name in METRICS else ()
        shown = " | ".join(f"{key} {_format_value(values[key])}" for key in headline
                           if key in values and not _undefined(values[key]))
        details = ""
        if name == "kid" and values.get("whole_sets"):
            details = f"N = {values['subset_size']} each, within one subset: one value over both whole sets, no std"
        elif name == "kid":
            details = f"{values['subsets']} subsets of {values['subset_size']}, std ddof {values['std_ddof']}"
        elif name == "ct":
            details = (f"features, REAL held out; {values['cells_used']} of {values['cells']} cells; "
                       f"|C_T| < {values['band']:g} real-like"
                       + (f"; cells without held-out samples: {values['cells_without_held_out']}"
                          if values["cells_without_held_out"] else ""))
        elif name == "authenticity":
            details = "features (isgame check: pixels)"
        elif name == "fid":
            details = "compare only at equal N"
        elif name == "fid-b":
            details = f"on {values.get('classifier')} features; compare only at equal N"
        table.add_row(name, shown, details)
    return table


def _short(value: object) -> str:
    """A provenance value in a table cell: hashes cut to 12 hex digits, dicts to their differing gist."""
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if k != "network_input")
    return str(value)


def compare_table(comparison) -> Table:
    """One row per differing protocol field: A, B, how far it alone moves IS, and how that was found."""
    from rich.markup import escape

    table = Table(title=f"compare: IS {comparison.is_a:.4f} (A) against {comparison.is_b:.4f} (B)", box=box.SIMPLE_HEAD)
    for column in ("field", "A", "B", "moves IS by", "how"):
        table.add_column(column, justify="right" if column == "moves IS by" else "left", overflow="fold")
    for difference in comparison.differences:
        allowance = "unbounded" if difference.allowance is None else f"{difference.allowance:.4f}"
        table.add_row(difference.field, escape(_short(difference.a)), escape(_short(difference.b)), allowance,
                      escape(difference.how))
    if not comparison.differences:
        table.add_row("(none)", "", "", "0", "same protocol and inputs")
    table.caption = escape(
        f"B - A = {comparison.difference:+.4f}; allowed by the protocol: "
        f"{'unbounded' if comparison.allowance is None else f'{comparison.allowance:.4f}'}; standard error "
        f"{comparison.standard_error:.4f}" + ("" if comparison.z is None else f" (z = {comparison.z:+.2f})")
        + f"\n{comparison.verdict}")
    return table


def robustness_table(report: RobustnessReport) -> Table:
    """The leaderboard: per metric and source, the ε that fools it (in 1/255 steps; "> ε_max" when none of the
    grid's does), how the sets were attacked (white-box through its own loss, or transfer), and its value at ε = 0,
    at the largest ε and on held-out real data; the FID attack's transfer to FID-b and the wavelet distance below."""
    r = report.result
    table = _table(f"leaderboard: the L∞ ε that fools each metric (n = {r.n}, {r.steps} PGD steps per ε, one-sided "
                   f"test at α = {r.alpha:g})",
                   ["metric", "source", "ε to fool", "attack", "at ε = 0", f"at {_epsilon_255(max(r.epsilons))}",
                    "held-out real"])
    for entry in [*r.entries, *r.transfers]:
        applicable = bool(entry.grid)
        table.add_row(entry.metric, entry.source, entry.epsilon_label(), entry.attack,
                      _value(entry.clean_value) if applicable else "-",
                      _value(entry.grid[-1].value) if applicable else "-", _value(entry.reference_value))
    table.caption = ("ε to fool: the smallest ε whose attacked set the matrix's test no longer flags (grid, then "
                     f"{r.bisection_steps} bisection steps); transfer rows judge another metric's attack's sets")
    return table


def _value(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _epsilon_255(epsilon: float) -> str:
    from isgame.probes.leaderboard_result import epsilon_label

    return epsilon_label(epsilon)
