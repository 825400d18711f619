"""The robustness matrix: every game against every metric on a domain, compared with held-out real data.

Distribution metrics run on the classifier's features against the training set, the data a generator learns
from (or against a stats file of ``isgame stats save``: FID from its mean and covariance, KID and the k-NN
metrics on its stored feature subset); C_T and authenticity run in pixel space against the training set.

Every cell carries a seeded bootstrap standard error over the game's samples, and a game **fools** a metric
unless it is significantly worse than the held-out real images: a one-sided z test at level ``alpha``
(:mod:`isgame.probes.matrix.significance`). The margin is the signed relative amount by which a game beats
(> 0) or trails (< 0) the reference.

C_T is two-sided (far below 0: copying; far above: underfitting), so it has its own rule: a game fools C_T
when it is indistinguishable from real held-out data, |C_T| < 3 (:data:`CT_BAND`, a z statistic), and its
margin is (3 - |C_T|) / 3. Its reference is fair: the held-out images are split in two seeded halves; every
game is tested against the first half, and the reference row is the second half tested against the first.
C_T is undefined (NaN, with a note) for a set none of whose k-means cells holds more than 20 samples, which
only small ``n`` can give.

FLD (Jiralerspong et al., NeurIPS 2023) needs the generator's training set and a held-out test set disjoint from
the samples, and takes them as C_T does: its mixture's bandwidths are fitted to the training images' features
(also when the domain has a stats file), every game is scored on the first held-out half's features, and the
reference row is the second half scored on the first (:func:`reference_from_halves`). The games made of
held-out images (:data:`~isgame.probes.matrix.games.HELD_OUT_GAMES`: sorted, mode-dropped, truncated or attacked held-out
images) contain that first half, and a mixture centred on its own test points rewards them (FLD far below the
reference's); their FLD cell is left empty (NaN, not counted as fooled or resisted) with a note.

Columns that read another classifier (R-IS and R-FID: an adversarially trained one; FID-b: a second,
independently trained one) are measured where the domain has one: the digits use digits-robust and
digits-b; any other domain names them (``robust_classifier``, ``second_classifier``).

Any :class:`~isgame.scoring.domains.Domain` works. The flow runs one way, a module a stage:
games (:mod:`~isgame.probes.matrix.games`) -> samples and classifier outputs (:mod:`~isgame.probes.matrix.samples`)
-> measurements (:mod:`~isgame.probes.matrix.measurements`) -> tests (:mod:`~isgame.probes.matrix.significance`)
-> verdicts (:mod:`~isgame.probes.matrix.verdicts`), collected in a :class:`~isgame.probes.matrix.result.MatrixResult`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from isgame import defaults
from isgame.probes.matrix.games import GAMES, REFERENCE_GAME
from isgame.probes.matrix.measurements import (
    FOOLED_RULES,
    HIGHER_IS_BETTER,
    MATRIX_METRICS,
    METRIC_FAMILIES,
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
from isgame.probes.matrix.significance import bootstrap_rows, bootstrap_stderr, check_test_settings, game_seed
from isgame.probes.matrix.verdicts import MatrixCell, compare, compare_two_sided, compare_with_test, row_cells
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import AUTO, Domain, as_domain
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.copy_detectors import flatten_images
from isgame.scoring.metrics.fid import fid_sample_size_curve
from isgame.scoring.runtime.threads import single_threaded

#: every column the matrix knows (:data:`~isgame.probes.matrix.measurements.MATRIX_METRICS`)
ALL_METRICS: tuple[MatrixMetric, ...] = MATRIX_METRICS
FID_CAVEAT_SIZES = (25, 50, 100, 200, 400, 540)

__all__ = ["robustness_matrix", "MatrixResult", "MatrixCell", "RobustnessMatrixDisplay", "GAMES", "REFERENCE_GAME",
           "METRICS", "HIGHER_IS_BETTER", "METRIC_FAMILIES", "FOOLED_RULES", "ALL_METRICS", "MATRIX_SAMPLES",
           "available_metrics", "auxiliary_scorers", "check_matrix_sizes", "held_out_halves", "game_outputs",
           "matrix_context", "measure_game", "reference_from_halves", "caveat_sizes", "compare", "compare_two_sided",
           "compare_with_test"]


@dataclass
class _Row:
    """One game's measurements and their standard errors."""

    measured: dict[str, Measurement] = field(default_factory=dict)
    stderrs: dict[str, float] = field(default_factory=dict)


def robustness_matrix(domain: Domain | ImageClassifier, *, n: int | None = None, seed: int = defaults.SEED,
                      games: dict | None = None, steps: int | None = None, progress: bool = False,
                      bootstrap: int = defaults.MATRIX_DRAWS, alpha: float = defaults.ALPHA,
                      metrics: list[str] | None = None, second_classifier: ImageClassifier | str | None = AUTO,
                      robust_classifier: ImageClassifier | str | None = AUTO) -> MatrixResult:
    """Play every game on ``domain`` with ``n`` samples and score it with every metric, with uncertainty.

    One game's images are held at a time (and the first ten of each, for the figure), so memory stays within
    one game's n images however many games there are; ``progress`` draws a bar over the games on stderr.

    ``n`` defaults to min(real images, :data:`MATRIX_SAMPLES`) (540 for the digits); ``steps`` is the
    gradient-step budget of the attack games (None: their defaults). ``games`` maps names to
    ``game(domain, n, seed, *, steps)`` and must hold :data:`REFERENCE_GAME`. IS uses min(10, n)
    splits and KID subsets of min(200, n) rows. ``bootstrap`` resamples per cell and the level ``alpha`` of the
    one-sided test decide "fooled"; ``metrics`` (names) restricts the columns.
    """
    domain = as_domain(domain)
    games = GAMES if games is None else games
    n = min(domain.real.shape[0], MATRIX_SAMPLES) if n is None else n
    check_matrix_sizes(domain, n)
    check_test_settings(bootstrap, alpha)
    clock = time.perf_counter()
    auxiliary = auxiliary_scorers(domain, second=second_classifier, robust=robust_classifier)
    columns = available_metrics(auxiliary, metrics)
    context = matrix_context(domain, n=n, seed=seed, auxiliary=auxiliary)
    seconds = {"setup": time.perf_counter() - clock, "games": 0.0, "metrics": 0.0, "bootstrap": 0.0}
    rows, examples = _play_and_measure(domain, context, games, columns, n=n, seed=seed, steps=steps,
                                       bootstrap=bootstrap, progress=progress, seconds=seconds)
    clock = time.perf_counter()
    reference = rows[REFERENCE_GAME]
    reference_from_halves(domain, context, reference.measured, reference.stderrs, seed=seed, bootstrap=bootstrap,
                          columns=columns)
    seconds["metrics"] += time.perf_counter() - clock
    cells = {name: row_cells(row.measured, row.stderrs, reference.measured, reference.stderrs, alpha)
             for name, row in rows.items()}
    sizes = caveat_sizes(domain.real.shape[0])
    caveat = fid_sample_size_curve(context.reference_statistics, domain.real_outputs[1].double().numpy(), sizes,
                                   seed=seed)
    return MatrixResult(games=list(rows), metrics=columns, cells=cells, n=n, seed=seed,
                        fid_sample_sizes=sizes, fid_of_real_subsets=caveat, examples=examples, domain=domain.describe(),
                        steps=steps, splits=context.splits, kid_subset_size=context.kid_subset_size,
                        notes=context.notes, ct_cells=context.ct_cells, bootstrap=bootstrap, alpha=alpha,
                        reference=distribution_reference(domain), auxiliary={r: a.label for r, a in auxiliary.items()},
                        seconds={k: round(v, 3) for k, v in seconds.items()})


def _play_and_measure(domain: Domain, context: MatrixContext, games: dict, columns: list[str], *, n: int, seed: int,
                      steps: int | None, bootstrap: int, progress: bool, seconds: dict[str, float]):
    """Each game played, measured and resampled in turn (one game's images held at a time); the rows and the
    first ten images of each game. A game the domain cannot support (mode dropping on images of one predicted
    class) is left out with a note; the reference game must be played."""
    from isgame.scoring.runtime.progress import progress_bar

    rows, examples = {}, {}
    with progress_bar("matrix games", total=len(games), batches=len(games), enabled=progress) as advance:
        for name, play in games.items():
            clock = time.perf_counter()
            try:
                batch = play(domain, n, seed, steps=steps)
            except InvalidInputError as error:
                if name == REFERENCE_GAME:
                    raise
                context.notes.append(f"{name}: not played ({error.render()})")
                advance(1)
                continue
            seconds["games"] += time.perf_counter() - clock
            rows[name] = _measured_row(domain, context, name, batch, columns, n=n, seed=seed, bootstrap=bootstrap,
                                       seconds=seconds)
            examples[name] = batch[:10].clone()
            del batch
            advance(1)
    return rows, examples


def _measured_row(domain: Domain, context: MatrixContext, name: str, batch, columns: list[str], *, n: int, seed: int,
                  bootstrap: int, seconds: dict[str, float]) -> _Row:
    """One game's measurements of ``columns`` and their bootstrap standard errors; the columns it leaves out are
    NaN on every game but the reference (whose are measured afterwards, on the second held-out half)."""
    clock, first_note = time.perf_counter(), len(context.notes)
    outputs = game_outputs(domain, batch, context.auxiliary)
    row = _Row()
    with single_threaded():
        skipped = held_out_exclusions(name, columns, context.notes)
        row.measured = measure_game(context, outputs, [m for m in columns if m not in skipped])
        context.notes[first_note:] = [f"{name}: {note}" for note in context.notes[first_note:]]
        seconds["metrics"] += time.perf_counter() - clock
        clock, resamples = time.perf_counter(), bootstrap_rows(n, bootstrap, game_seed(seed, name))
        row.stderrs = {m: v.stderr if v.stderr is not None else bootstrap_stderr(v.draw, resamples)
                       for m, v in row.measured.items()}
        context.notes.extend(f"{name}: {m} has no bootstrap standard error (fewer than 2 finite draws); "
                             "its cell is decided by the sign of the gain alone"
                             for m, se in row.stderrs.items() if not math.isfinite(se))
    seconds["bootstrap"] += time.perf_counter() - clock
    if name != REFERENCE_GAME:
        row.measured.update({m: Measurement(math.nan) for m in skipped})
        row.stderrs.update({m: math.nan for m in skipped})
    return row


def reference_from_halves(domain: Domain, context: MatrixContext, reference: dict[str, Measurement],
                          reference_stderrs: dict[str, float], *, seed: int, bootstrap: int, columns: list[str]) -> None:
    """The reference row of the columns tested against the first held-out half (C_T, FLD): held-out data tested
    against a set it contains is meaningless, so the row is the second half tested against the first. FLD's
    baseline is that of the half's size, and its standard error a bootstrap over the half's rows (the reference
    game's seed)."""
    _, reference_half = held_out_halves(domain.real.shape[0], seed)
    if "C_T" in reference:
        held_out = flatten_images(domain.real)
        reference["C_T"] = Measurement(copying_statistic(context.train_pixels, context.ct_held_out_pixels,
                                                         held_out[reference_half], seed=seed, notes=context.notes,
                                                         cells=context.ct_cells,
                                                         what="the reference (second held-out half)"), stderr=1.0)
    if "FLD" in columns:
        with single_threaded():  # as the games' FLD
            fld = fld_measurement(context, domain.real_outputs[1].double().numpy()[reference_half])
            reference["FLD"] = fld
            reference_stderrs["FLD"] = bootstrap_stderr(fld.draw, bootstrap_rows(reference_half.shape[0], bootstrap,
                                                                                   game_seed(seed, REFERENCE_GAME)))
        if not math.isfinite(reference_stderrs["FLD"]):
            context.notes.append(f"{REFERENCE_GAME}: FLD has no bootstrap standard error (fewer than 2 finite draws); "
                                 "its cells are decided by the sign of the gain alone")
    # the row in the other rows' column order (its FLD was measured last)
    ordered = in_column_order(reference)
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
