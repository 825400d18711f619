"""The robustness matrix: every game against every metric on a domain, compared with held-out real data.

Distribution metrics run on the classifier's features against the training set, the data a generator learns
from (or against a stats file of ``isgame stats save``: FID from its mean and covariance, KID and the k-NN
metrics on its stored feature subset); C_T and authenticity run in pixel space against the training set.

**What each cell says.** A game declares the aspects of a generator it degrades (fidelity, diversity, novelty,
or none: real data in another order); a metric declares those it claims to measure, with its paper. A cell's
verdict (:mod:`isgame.probes.matrix.verdicts`) is ``detected`` or ``missed`` where the game degrades an aspect in
the metric's scope, ``false_alarm`` or ``no_alarm`` where it degrades nothing, and ``not_applicable`` where it
degrades only aspects outside the scope. A metric *flags* a game when a one-sided test of the difference game -
reference over half-samples finds the game worse, Holm-corrected within the column
(:mod:`isgame.probes.matrix.significance`): a sign test, so no monotone change of a metric's scale moves a
verdict. C_T, a test statistic itself, is compared with its null distribution on the domain.

**An order-neutral reference.** The real images are scored in a seeded random order (their first ``n`` a draw
stratified by predicted class), so neither a class-per-folder layout nor a first-``n`` subsample decides the
reference; only the class-sorted game sorts. The result records the order and the runs test of the stored one.

C_T's reference is fair: the held-out images are split in two seeded halves; every game is tested against the
first half, and the reference row is the second half tested against the first. FLD (Jiralerspong et al.,
NeurIPS 2023) needs a held-out test set disjoint from the samples and takes the same halves; the games made of
held-out images contain the first half, and their FLD cell is left empty with a note.

Columns that read another classifier (R-IS and R-FID: an adversarially trained one; FID-b: a second,
independently trained one) are measured where the domain has one: the digits use digits-robust and
digits-b; any other domain names them (``robust_classifier``, ``second_classifier``).

The flow runs one way, a module a stage: games (:mod:`~isgame.probes.matrix.games`) -> samples and classifier
outputs (:mod:`~isgame.probes.matrix.samples`) -> measurements (:mod:`~isgame.probes.matrix.measurements`) ->
tests (:mod:`~isgame.probes.matrix.significance`) -> verdicts (:mod:`~isgame.probes.matrix.verdicts`), collected
in a :class:`~isgame.probes.matrix.result.MatrixResult`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from isgame import defaults
from isgame.probes.matrix.games import GAMES, REFERENCE_GAME, Game, as_game
from isgame.probes.matrix.measurements import (
    FOOLED_RULES,
    HIGHER_IS_BETTER,
    MATRIX_METRICS,
    METRIC_FAMILIES,
    METRIC_SCOPES,
    METRICS,
    MatrixContext,
    MatrixMetric,
    Measurement,
    available_metrics,
    copying_statistic,
    fld_measurement,
    in_column_order,
    matrix_context,
    measure_game,
)
from isgame.probes.matrix.result import MatrixResult, RobustnessMatrixDisplay
from isgame.probes.matrix.samples import (
    MATRIX_SAMPLES,
    auxiliary_scorers,
    check_matrix_sizes,
    game_outputs,
    held_out_exclusions,
    held_out_halves,
)
from isgame.probes.matrix.significance import (
    CellTest,
    ReferenceDraws,
    check_test_settings,
    ct_null,
    draw_seed,
    holm,
    needed_draws,
    rank_p_value,
    smallest_p,
    test_cell,
)
from isgame.probes.matrix.verdicts import (
    OUT_OF_SCOPE,
    MatrixCell,
    cell,
    reference_cell,
    relation,
)
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import AUTO, Domain, as_domain
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.copy_detectors import copying_partition, ct_from_placements, flatten_images
from isgame.scoring.metrics.fid import fid_sample_size_curve
from isgame.scoring.runtime.threads import single_threaded

#: every column the matrix knows (:data:`~isgame.probes.matrix.measurements.MATRIX_METRICS`)
ALL_METRICS: tuple[MatrixMetric, ...] = MATRIX_METRICS
FID_CAVEAT_SIZES = (25, 50, 100, 200, 400, 540)
#: C_T's null distribution has at least this many draws (more where Holm's correction needs them)
CT_NULL_DRAWS = 200

__all__ = ["robustness_matrix", "MatrixResult", "MatrixCell", "RobustnessMatrixDisplay", "GAMES", "REFERENCE_GAME",
           "METRICS", "HIGHER_IS_BETTER", "METRIC_FAMILIES", "FOOLED_RULES", "ALL_METRICS", "MATRIX_SAMPLES",
           "available_metrics", "auxiliary_scorers", "check_matrix_sizes", "held_out_halves", "game_outputs",
           "matrix_context", "measure_game", "reference_from_halves", "caveat_sizes", "Game", "MatrixReference",
           "matrix_reference"]


@dataclass
class _Row:
    """One game's measurements and, per column, its test and the spread of its draws."""

    measured: dict[str, Measurement] = field(default_factory=dict)
    tests: dict[str, CellTest] = field(default_factory=dict)
    spreads: dict[str, float] = field(default_factory=dict)


@dataclass
class _Plan:
    """What the test needs before any game is played: the tested cells per column (Holm's family), the draws per
    cell, and C_T's null distribution."""

    families: dict[str, int]
    draws: dict[str, int]
    alpha: float
    ct_null: np.ndarray | None = None


def robustness_matrix(domain: Domain | ImageClassifier, *, n: int | None = None, seed: int = defaults.SEED,
                      games: dict | None = None, steps: int | None = None, progress: bool = False,
                      bootstrap: int | None = defaults.MATRIX_DRAWS, alpha: float = defaults.ALPHA,
                      metrics: list[str] | None = None, second_classifier: ImageClassifier | str | None = AUTO,
                      robust_classifier: ImageClassifier | str | None = AUTO) -> MatrixResult:
    """Play every game on ``domain`` with ``n`` samples, score it with every metric, and test each cell.

    One game's images are held at a time (and the first ten of each, for the figure), so memory stays within
    one game's n images however many games there are; ``progress`` draws a bar over the games on stderr.

    ``n`` defaults to min(real images, :data:`MATRIX_SAMPLES`) (540 for the digits); ``steps`` is the
    gradient-step budget of the attack games (None: their defaults). ``games`` maps names to :class:`Game` objects
    or ``game(domain, n, seed, *, steps)`` functions and must hold :data:`REFERENCE_GAME`. IS uses min(10, n)
    splits and KID subsets of min(200, n) rows. ``bootstrap`` is the most half-sample draws per cell (None: as
    many as Holm's correction needs in each column) and ``alpha`` the family-wise level of each column;
    ``metrics`` (names) restricts the columns.
    """
    from isgame.scoring.runtime.plugins import load_installed_plugins

    load_installed_plugins()  # installed plug-in metrics and games join the columns and rows
    domain = as_domain(domain)
    games = {name: as_game(name, game) for name, game in (GAMES if games is None else games).items()}
    n = min(domain.real.shape[0], MATRIX_SAMPLES) if n is None else n
    check_matrix_sizes(domain, n)
    check_test_settings(bootstrap, alpha)
    if REFERENCE_GAME not in games:
        raise InvalidInputError(f"the games must include the reference, {REFERENCE_GAME!r}")
    clock = time.perf_counter()
    domain = domain.in_seeded_order(seed, first=n)
    auxiliary = auxiliary_scorers(domain, second=second_classifier, robust=robust_classifier)
    columns = available_metrics(auxiliary, metrics)
    context = matrix_context(domain, n=n, seed=seed, auxiliary=auxiliary)
    plan = _test_plan(domain, context, games, columns, alpha=alpha, draws=bootstrap, seed=seed)
    seconds = {"setup": time.perf_counter() - clock, "games": 0.0, "metrics": 0.0, "tests": 0.0}
    rows, examples = _play_measure_test(domain, context, games, columns, plan, n=n, seed=seed, steps=steps,
                                        progress=progress, seconds=seconds)
    cells = _cells(rows, games, columns, plan)
    sizes = caveat_sizes(domain.real.shape[0])
    caveat = fid_sample_size_curve(context.reference_statistics, domain.real_outputs[1].double().numpy(), sizes,
                                   seed=seed)
    return MatrixResult(games=list(rows), metrics=columns, cells=cells, n=n, seed=seed,
                        fid_sample_sizes=sizes, fid_of_real_subsets=caveat, examples=examples, domain=domain.describe(),
                        steps=steps, splits=context.splits, kid_subset_size=context.kid_subset_size,
                        notes=context.notes + _draw_notes(plan, columns), ct_cells=context.ct_cells,
                        bootstrap=max(plan.draws.values(), default=0), alpha=alpha,
                        reference=distribution_reference(domain), auxiliary={r: a.label for r, a in auxiliary.items()},
                        seconds={k: round(v, 3) for k, v in seconds.items()},
                        game_declarations={name: game.to_dict() for name, game in games.items() if name in rows},
                        draws=plan.draws, holm_families=plan.families, ct_null=_ct_null_summary(plan))


def _test_plan(domain: Domain, context: MatrixContext, games: dict[str, Game], columns: list[str], *, alpha: float,
               draws: int | None, seed: int) -> _Plan:
    """Holm's family per column (the cells it tests: the games in its scope or degrading nothing), the draws that
    let p reach the family's smallest level (or ``draws``), and C_T's null distribution."""
    families = {column: sum(1 for name, game in games.items() if name != REFERENCE_GAME
                            and relation(game.degrades, METRIC_SCOPES[column]) != OUT_OF_SCOPE)
                for column in columns}
    plan = _Plan(families=families, draws={column: needed_draws(families[column], alpha) if draws is None else draws
                                           for column in columns}, alpha=alpha)
    if "C_T" in columns:
        with single_threaded():
            plan.ct_null = _ct_null(domain, context, max(CT_NULL_DRAWS, plan.draws["C_T"]), seed=seed)
        plan.draws["C_T"] = int(plan.ct_null.size)
    return plan


def _ct_null(domain: Domain, context: MatrixContext, draws: int, *, seed: int) -> np.ndarray:
    """C_T of one random half of the held-out images tested against the other, ``draws`` times: every held-out
    image placed in its cell once, so a draw is a Mann-Whitney z per cell."""
    partition = copying_partition(context.train_pixels, context.ct_cells, seed)
    cells, distances = partition.place(flatten_images(domain.real))

    def statistic(test_rows: np.ndarray, sample_rows: np.ndarray) -> float:
        try:
            return ct_from_placements(partition, cells[test_rows], distances[test_rows], cells[sample_rows],
                                      distances[sample_rows]).ct_statistic
        except InvalidInputError:  # no cell holds enough of a half: undefined for that split
            return math.nan

    return ct_null(statistic, cells.shape[0], draws, draw_seed(seed, "C_T null"))


def _play_measure_test(domain: Domain, context: MatrixContext, games: dict[str, Game], columns: list[str],
                       plan: _Plan, *, n: int, seed: int, steps: int | None, progress: bool,
                       seconds: dict[str, float]):
    """Each game played, measured and tested against the reference in turn (one game's images held at a time);
    the rows and the first ten images of each game. A game the domain cannot support (mode dropping on images of
    one predicted class) is left out with a note; the reference game is played first and must be."""
    from isgame.scoring.runtime.progress import progress_bar

    rows, examples, reference = {}, {}, None
    order = [REFERENCE_GAME, *(name for name in games if name != REFERENCE_GAME)]
    with progress_bar("matrix games", total=len(order), batches=len(order), enabled=progress) as advance:
        for name in order:
            clock = time.perf_counter()
            try:
                batch = games[name](domain, n, seed, steps=steps)
            except InvalidInputError as error:
                if name == REFERENCE_GAME:
                    raise
                context.notes.append(f"{name}: not played ({error.render()})")
                advance(1)
                continue
            seconds["games"] += time.perf_counter() - clock
            rows[name] = _measured_row(domain, context, name, batch, columns, seconds=seconds)
            if name == REFERENCE_GAME:
                reference = _reference_draws(domain, context, rows[name], columns, n=n, seed=seed, seconds=seconds)
            else:
                _test_row(rows[name], reference, rows[REFERENCE_GAME], games[name], columns, plan, domain=domain,
                          n=n, seed=seed, seconds=seconds)
            examples[name] = batch[:10].clone()
            del batch
            advance(1)
    _test_reference_row(rows[REFERENCE_GAME], reference, columns, plan)
    return rows, examples


def _measured_row(domain: Domain, context: MatrixContext, name: str, batch, columns: list[str], *,
                  seconds: dict[str, float]) -> _Row:
    """One game's measurements of ``columns``; the columns it leaves out are NaN on every game but the reference
    (whose are measured afterwards, on the second held-out half)."""
    clock, first_note = time.perf_counter(), len(context.notes)
    outputs = game_outputs(domain, batch, context.auxiliary)
    row = _Row()
    with single_threaded():
        skipped = held_out_exclusions(name, columns, context.notes)
        row.measured = measure_game(context, outputs, [m for m in columns if m not in skipped])
    context.notes[first_note:] = [f"{name}: {note}" for note in context.notes[first_note:]]
    if name != REFERENCE_GAME:
        row.measured.update({m: Measurement(math.nan) for m in skipped})
    seconds["metrics"] += time.perf_counter() - clock
    return row


def _reference_draws(domain: Domain, context: MatrixContext, row: _Row, columns: list[str], *, n: int, seed: int,
                     seconds: dict[str, float]) -> ReferenceDraws:
    """The reference row completed from the held-out halves (C_T, FLD), and its draws, shared by every game."""
    clock = time.perf_counter()
    reference_from_halves(domain, context, row.measured, {}, seed=seed, bootstrap=0, columns=columns)
    _, second_half = held_out_halves(domain.real.shape[0], seed)
    rows = {column: second_half.shape[0] if column == "FLD" else n for column in columns}
    draws = {column: m.draw for column, m in row.measured.items() if m.draw is not None}
    seconds["metrics"] += time.perf_counter() - clock
    return ReferenceDraws(draws, rows, seed, REFERENCE_GAME,
                          sizes={"FLD": max(2, min(second_half.shape[0], n) // 2)} if "FLD" in columns else None)


def _test_row(row: _Row, reference: ReferenceDraws, reference_row: _Row, game: Game, columns: list[str], plan: _Plan,
              *, domain: Domain, n: int, seed: int, seconds: dict[str, float]) -> None:
    """Each tested cell of one game: C_T against its null distribution, every other column by the sign test over
    half-samples (paired where the game's rows are the reference's)."""
    clock = time.perf_counter()
    origin = None if game.origin is None else np.asarray(game.origin(domain, n, seed))
    with single_threaded():
        for column in columns:
            measured = row.measured.get(column)
            if measured is None or math.isnan(measured.value):
                continue
            if relation(game.degrades, METRIC_SCOPES[column]) == OUT_OF_SCOPE:
                continue
            if column == "C_T":
                row.tests[column] = CellTest(gain=measured.value - reference_row.measured[column].value,
                                             p_value=rank_p_value(measured.value, plan.ct_null),
                                             draws=int(plan.ct_null.size), exceedances=0, paired=False)
                continue
            if measured.draw is None:
                continue
            pairable = origin is not None and column != "FLD"
            row.tests[column], row.spreads[column] = test_cell(
                measured.draw, reference, column, HIGHER_IS_BETTER[column], value=measured.value,
                reference_value=reference_row.measured[column].value, rows=n, most=plan.draws[column],
                alpha=plan.alpha, seed=draw_seed(seed, game.name), origin=origin if pairable else None)
    seconds["tests"] += time.perf_counter() - clock


def _test_reference_row(row: _Row, reference: ReferenceDraws, columns: list[str], plan: _Plan) -> None:
    """The spread of the reference's own draws, beside its values."""
    for column in columns:
        if reference.has(column):
            row.spreads[column] = reference.spread(column, min(plan.draws[column], 32))


def _cells(rows: dict[str, _Row], games: dict[str, Game], columns: list[str], plan: _Plan) -> dict:
    """Every cell's verdict: Holm's correction within each column over the cells it tests, then each verdict."""
    reference = rows[REFERENCE_GAME]
    cells = {name: {} for name in rows}
    for column in columns:
        p_values = {name: row.tests[column].p_value for name, row in rows.items() if column in row.tests}
        adjusted = holm(p_values, plan.alpha)
        reference_value = reference.measured[column].value
        cells[REFERENCE_GAME][column] = reference_cell(reference_value, reference.spreads.get(column, math.nan))
        for name, row in rows.items():
            if name == REFERENCE_GAME:
                continue
            test = row.tests.get(column)
            p_adjusted, flagged = adjusted.get(name, (math.nan, False))
            cells[name][column] = cell(
                row.measured[column].value, reference_value, column,
                relation_=relation(games[name].degrades, METRIC_SCOPES[column]),
                p_value=math.nan if test is None else test.p_value, p_adjusted=p_adjusted, flagged=flagged,
                draws=0 if test is None else test.draws, paired=test is not None and test.paired,
                stderr=row.spreads.get(column, math.nan), reference_stderr=reference.spreads.get(column, math.nan),
                decidable=_decidable(plan, column))
    return {name: {column: cells[name][column] for column in columns} for name in rows}


def _decidable(plan: _Plan, column: str) -> bool:
    """Whether the column's draws let a p-value reach Holm's smallest level, so that an unflagged cell means
    the metric did not flag it rather than that the test could not."""
    family = plan.families[column]
    return not family or smallest_p(plan.draws[column]) <= plan.alpha / family


def _draw_notes(plan: _Plan, columns: list[str]) -> list[str]:
    """A note per column whose draws cannot reach its smallest Holm level (too few draws asked for)."""
    notes = []
    for column in columns:
        family, draws = plan.families[column], plan.draws[column]
        if family and smallest_p(draws) > plan.alpha / family:
            notes.append(f"{column}: {draws} draws give p >= {smallest_p(draws):.3g}, above Holm's smallest level "
                         f"{plan.alpha / family:.3g} for its {family} tests: its unflagged cells are undecided, "
                         f"not missed; draw at least {needed_draws(family, plan.alpha)}")
    return notes


def _ct_null_summary(plan: _Plan) -> dict[str, object] | None:
    """C_T's null distribution on the domain, in brief: its size, spread and the band of its central 95%."""
    if plan.ct_null is None or plan.ct_null.size == 0:
        return None
    low, high = np.quantile(plan.ct_null, [0.025, 0.975])
    return {"draws": int(plan.ct_null.size), "mean": float(plan.ct_null.mean()),
            "std": float(plan.ct_null.std(ddof=1)) if plan.ct_null.size > 1 else math.nan,
            "band_95": [float(low), float(high)],
            "how": "the held-out images split into two random halves, one tested against the other"}


def reference_from_halves(domain: Domain, context: MatrixContext, reference: dict[str, Measurement],
                          reference_stderrs: dict[str, float], *, seed: int, bootstrap: int, columns: list[str]) -> None:
    """The reference row of the columns tested against the first held-out half (C_T, FLD): held-out data tested
    against a set it contains is meaningless, so the row is the second half tested against the first (FLD's
    baseline that of the half's size). ``reference_stderrs`` and ``bootstrap`` are unused (the draws are made
    by the test) and kept for callers."""
    _, reference_half = held_out_halves(domain.real.shape[0], seed)
    if "C_T" in reference:
        held_out = flatten_images(domain.real)
        reference["C_T"] = Measurement(copying_statistic(context.train_pixels, context.ct_held_out_pixels,
                                                         held_out[reference_half], seed=seed, notes=context.notes,
                                                         cells=context.ct_cells,
                                                         what="the reference (second held-out half)"), stderr=1.0)
    if "FLD" in columns:
        with single_threaded():  # as the games' FLD
            reference["FLD"] = fld_measurement(context, domain.real_outputs[1].double().numpy()[reference_half])
    ordered = in_column_order(reference)  # the row in the other rows' column order (its FLD was measured last)
    reference.clear()
    reference.update(ordered)


def distribution_reference(domain: Domain) -> str:
    """What the distribution metrics compare against: the training images' features, or a stats file."""
    if getattr(domain, "reference_stats", None) is None:
        return "the training images' features"
    return (f"stored statistics ({domain.reference_stats_source}): FID and FID∞ against their mean and "
            "covariance; KID, RBF-MMD, SWD and the k-NN metrics against their feature subset; R-FID, FID-b, "
            "FLD (bandwidths fitted to the training images' features) and the pixel metrics still against the "
            "training images")


def caveat_sizes(real: int) -> list[int]:
    """:data:`FID_CAVEAT_SIZES` up to the ``real`` images there are, and ``real`` itself (the digits: 25..540)."""
    sizes = [size for size in FID_CAVEAT_SIZES if size <= real]
    return sizes if real in sizes else [*sizes, real]


@dataclass
class MatrixReference:
    """The matrix's reference, built once, to test any image set against it as the matrix tests a game's cell.

    ``domain`` is the domain in the matrix's seeded order (its first ``n`` real images are the reference game's);
    ``context`` what every set is measured against; ``row`` the reference game's measurements (with C_T and FLD
    from the held-out halves); ``draws`` its half-sample draws, shared by every test (each draw's value is computed
    once); ``alpha`` the level of each test and ``most_draws`` the most draws a test takes.
    """

    domain: Domain
    context: MatrixContext
    columns: list[str]
    n: int
    seed: int
    alpha: float
    most_draws: int
    row: dict[str, Measurement]
    draws: ReferenceDraws
    _ct_null: np.ndarray | None = field(default=None, repr=False)

    def outputs(self, images, columns: list[str] | None = None):
        """The classifiers' outputs of (n, C, H, W) ``images`` (:class:`~isgame.probes.matrix.samples.GameOutputs`):
        every classifier's, or only those ``columns`` read (the domain's own, and the auxiliary ones they name)."""
        if columns is None:
            return game_outputs(self.domain, images, self.context.auxiliary)
        needs = {metric.needs for metric in ALL_METRICS if metric.name in columns}
        return game_outputs(self.domain, images, {role: scorer for role, scorer in self.context.auxiliary.items()
                                                  if role in needs})

    def measure(self, outputs, columns: list[str]) -> dict[str, Measurement]:
        """The measurements of ``columns`` on a set's outputs, exactly as the matrix measures a game."""
        with single_threaded():
            return measure_game(self.context, outputs, columns)

    def ct_null(self) -> np.ndarray:
        """C_T's null distribution on the domain, drawn once (as the matrix's, at least :data:`CT_NULL_DRAWS`)."""
        if self._ct_null is None:
            with single_threaded():
                self._ct_null = _ct_null(self.domain, self.context, max(CT_NULL_DRAWS, self.most_draws),
                                         seed=self.seed)
        return self._ct_null

    def judge(self, measured: Measurement, column: str, game: Game, *, name: str | None = None) -> MatrixCell:
        """The cell of a set measured ``measured`` in ``column``, played as ``game`` (its declaration decides the
        relation to the column's scope): the matrix's one-sided test against the reference's draws as a family of
        one (p compared with ``alpha``), and the matrix's verdict. ``name`` seeds the set's draws (default the
        game's name: sets of one game then share their half-samples)."""
        reference_value = self.row[column].value
        relation_ = relation(game.degrades, METRIC_SCOPES[column])
        empty = dict(p_value=math.nan, p_adjusted=math.nan, flagged=False, draws=0, paired=False, stderr=math.nan,
                     reference_stderr=math.nan)
        if math.isnan(measured.value) or relation_ == OUT_OF_SCOPE:
            return cell(measured.value, reference_value, column, relation_=relation_, **empty)
        if column == "C_T":
            null = self.ct_null()
            p_value = rank_p_value(measured.value, null)
            return cell(measured.value, reference_value, column, relation_=relation_, p_value=p_value,
                        p_adjusted=p_value, flagged=p_value <= self.alpha, draws=int(null.size), paired=False,
                        stderr=1.0, reference_stderr=1.0)
        if measured.draw is None or not self.draws.has(column):
            return cell(measured.value, reference_value, column, relation_=relation_, **empty)
        with single_threaded():
            test, spread = test_cell(measured.draw, self.draws, column, HIGHER_IS_BETTER[column],
                                     value=measured.value, reference_value=reference_value, rows=self.n,
                                     most=self.most_draws, alpha=self.alpha,
                                     seed=draw_seed(self.seed, name or game.name))
        return cell(measured.value, reference_value, column, relation_=relation_, p_value=test.p_value,
                    p_adjusted=test.p_value, flagged=test.p_value <= self.alpha, draws=test.draws, paired=False,
                    stderr=spread, reference_stderr=math.nan)


def matrix_reference(domain: Domain | ImageClassifier, *, n: int | None = None, seed: int = defaults.SEED,
                     metrics: list[str] | None = None, alpha: float = defaults.ALPHA, most_draws: int | None = None,
                     second_classifier: ImageClassifier | str | None = AUTO,
                     robust_classifier: ImageClassifier | str | None = AUTO) -> MatrixReference:
    """The reference of :func:`robustness_matrix` on ``domain`` with ``n`` samples (default as there), built once:
    the domain in its seeded order, the context, the reference game (held-out real) measured on ``metrics`` (None:
    every column the domain allows) and its draws. ``most_draws``: the most draws per test (None: the fewest that let
    p reach ``alpha`` in a family of one, :func:`needed_draws`)."""
    domain = as_domain(domain)
    n = min(domain.real.shape[0], MATRIX_SAMPLES) if n is None else n
    check_matrix_sizes(domain, n)
    check_test_settings(most_draws, alpha)
    domain = domain.in_seeded_order(seed, first=n)
    auxiliary = auxiliary_scorers(domain, second=second_classifier, robust=robust_classifier)
    columns = available_metrics(auxiliary, metrics)
    context = matrix_context(domain, n=n, seed=seed, auxiliary=auxiliary)
    seconds = {"metrics": 0.0}
    row = _measured_row(domain, context, REFERENCE_GAME, GAMES[REFERENCE_GAME](domain, n, seed), columns,
                        seconds=seconds)
    draws = _reference_draws(domain, context, row, columns, n=n, seed=seed, seconds=seconds)
    return MatrixReference(domain=domain, context=context, columns=columns, n=n, seed=seed, alpha=alpha,
                           most_draws=needed_draws(1, alpha) if most_draws is None else most_draws,
                           row=row.measured, draws=draws)
