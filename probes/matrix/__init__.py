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

Any :class:`~isgame.scoring.domains.Domain` works; the built-in digits give today's numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from isgame.scoring.metrics.copy_detectors import CT_BAND, CT_CELLS, ct_cells, flatten_images
from isgame.probes.matrix.games import GAME_FAMILIES, GAMES, HELD_OUT_GAMES, REFERENCE_GAME
from isgame.probes.matrix.measurements import (MATRIX_METRICS, MEASURES, AuxiliaryScorer, GameOutputs,
                                          MatrixContext, MatrixMetric, Measurement, copying_statistic,
                                          fld_measurement)
from isgame.probes.matrix.significance import (DEFAULT_ALPHA, DEFAULT_DRAWS, bootstrap_rows, bootstrap_stderr,
                                               check_test_settings, game_seed, one_sided_test)
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import Domain, as_domain
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.fid import features_to_statistics, fid_sample_size_curve
from isgame.scoring.pipeline import classify_with_features
from isgame.scoring.runtime.threads import single_threaded

MATRIX_SAMPLES = 540  # the size of the held-out set, so every game is compared at the same N
ALL_METRICS: tuple[MatrixMetric, ...] = MATRIX_METRICS
#: True: higher is better; False: lower; None: two-sided (C_T: closest to 0 is best)
HIGHER_IS_BETTER = {metric.name: metric.higher_is_better for metric in ALL_METRICS}
METRICS = tuple(HIGHER_IS_BETTER)
METRIC_FAMILIES = {metric.name: metric.family for metric in ALL_METRICS}
ARROWS = {True: "↑", False: "↓", None: "→0"}
FOOLED_RULES = {metric.name: metric.rule for metric in ALL_METRICS}
KID_SUBSET_SIZE = 200
IS_SPLITS = 10
FID_CAVEAT_SIZES = (25, 50, 100, 200, 400, 540)
#: the largest k of the k-NN radii precision_recall_density_coverage takes (density and coverage)
PRDC_NEAREST_K = 5
#: the fewest samples a game is played with: the k-NN radii need k + 1 other rows. C_T is defined only where a
#: k-means cell holds more than 20 samples (CT_GENERATED_PER_CELL); below that it is NaN, with a note.
MIN_MATRIX_SAMPLES = PRDC_NEAREST_K + 2
#: the fewest real images: two C_T halves of at least MIN_MATRIX_SAMPLES each
MIN_REAL_IMAGES = 2 * MIN_MATRIX_SAMPLES
AUTO = "auto"
#: columns whose reference row is measured only on the second held-out half (:func:`reference_from_halves`), so the
#: reference game does not measure them on its own samples first (C_T is measured there with authenticity)
REFERENCE_FROM_HALVES_ONLY = ("FLD",)


@dataclass(frozen=True)
class MatrixCell:
    """A game's value of one metric against the reference row's; ``stderr`` its bootstrap standard error (C_T: 1,
    a z statistic); ``z`` and ``p_value`` the one-sided test of the gain (NaN for C_T, which has its band)."""

    value: float
    reference: float
    fooled: bool
    margin: float
    stderr: float = math.nan
    reference_stderr: float = math.nan
    z: float = math.nan
    p_value: float = math.nan

    def to_dict(self) -> dict[str, object]:
        return dict(vars(self))


@dataclass(frozen=True)
class MatrixResult:
    games: list[str]
    metrics: list[str]
    cells: dict[str, dict[str, MatrixCell]]
    n: int
    seed: int
    fid_sample_sizes: list[int] = field(default_factory=list)
    fid_of_real_subsets: list[float] = field(default_factory=list)
    examples: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    domain: dict[str, object] = field(default_factory=dict)
    steps: int | None = None
    splits: int = IS_SPLITS
    kid_subset_size: int = KID_SUBSET_SIZE
    ct_cells: int = CT_CELLS
    notes: list[str] = field(default_factory=list)
    bootstrap: int = DEFAULT_DRAWS
    alpha: float = DEFAULT_ALPHA
    reference: str = "the training images' features"
    auxiliary: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def is_digits(self) -> bool:
        return self.domain.get("name", "digits") == "digits"

    @property
    def reference_game(self) -> str:
        """The honest baseline row every other game is compared with."""
        return REFERENCE_GAME

    def resisted(self, metric: str) -> list[str]:
        """The games ``metric`` resists; an empty cell (NaN: not measured or undefined) is neither."""
        return [g for g in self.games if g != REFERENCE_GAME and not self.cells[g][metric].fooled
                and math.isfinite(self.cells[g][metric].value)]

    def fooled_by(self, metric: str) -> list[str]:
        return [g for g in self.games if g != REFERENCE_GAME and self.cells[g][metric].fooled]

    def unfooled_metrics(self) -> list[str]:
        """The metrics that resist every game: none fools them, and each was measured on every game (FLD on the
        games made of held-out images is not, so it cannot be listed however the other games come out)."""
        games = len(self.games) - 1
        return [metric for metric in self.metrics if len(self.resisted(metric)) == games]

    def paragraphs(self) -> dict[str, str]:
        """One sentence per metric naming the games it resists and those that fool it."""
        out = {}
        for metric in self.metrics:
            resisted, fooled = self.resisted(metric), self.fooled_by(metric)
            direction = {True: "higher is better", False: "lower is better", None: "two-sided, |C_T| < 3 is real-like"}
            out[metric] = (f"{metric} ({direction[HIGHER_IS_BETTER[metric]]}) resists "
                           f"{len(resisted)} of {len(self.games) - 1} games: {', '.join(resisted) or 'none'}. "
                           f"Fooled by: {', '.join(fooled) or 'none'}."
                           + (f" Not measured on: {', '.join(empty)}." if (empty := [
                               g for g in self.games if g != REFERENCE_GAME and g not in resisted + fooled]) else ""))
        return out

    def to_dict(self) -> dict[str, object]:
        real = "real held-out digits" if self.is_digits else "held-out real images"
        return {
            "n": self.n, "seed": self.seed, "reference_game": REFERENCE_GAME,
            "games": self.games, "metrics": self.metrics,
            "higher_is_better": {m: HIGHER_IS_BETTER[m] for m in self.metrics},
            "fooled_rules": {m: FOOLED_RULES[m] for m in self.metrics},
            "families": {m: METRIC_FAMILIES[m] for m in self.metrics},
            "game_families": {g: GAME_FAMILIES.get(g, "other") for g in self.games},
            "descriptions": {metric.name: metric.description for metric in ALL_METRICS if metric.name in self.metrics},
            "test": {"kind": "one-sided z test of the gain over the reference, bootstrap standard errors "
                             "(C_T: its |C_T| < 3 band)", "alpha": self.alpha, "bootstrap_draws": self.bootstrap,
                     "fooled": "not significantly worse than the reference at level alpha (before isgame 0.2: at "
                               "least as good as the reference; KID: within two of its standard errors)"},
            "cells": {g: {m: c.to_dict() for m, c in row.items()} for g, row in self.cells.items()},
            "paragraphs": self.paragraphs(),
            "unfooled_metrics": self.unfooled_metrics(),
            "fid_sample_size_caveat": {
                "note": f"FID of random subsets of the {real} against the training set: the same "
                        "distribution, so every value above 0 is finite-N bias; compare FIDs only at equal N",
                "sizes": self.fid_sample_sizes, "fid": self.fid_of_real_subsets,
            },
            "domain": self.domain, "steps": self.steps, "splits": self.splits,
            "kid_subset_size": self.kid_subset_size, "ct_cells": self.ct_cells, "notes": list(self.notes),
            "distribution_reference": self.reference, "auxiliary_classifiers": self.auxiliary,
            "seconds": self.seconds,
        }


def compare(value: float, reference: float, higher_is_better: bool, *, tolerance: float = 0.0) -> MatrixCell:
    """Fooled iff the game is at least as good as the reference, less ``tolerance``; margin relative to |reference|
    (the rule without uncertainty; the matrix itself uses :func:`compare_with_test`)."""
    gain = value - reference if higher_is_better else reference - value
    scale = abs(reference) if abs(reference) > 1e-9 else 1.0
    return MatrixCell(value=value, reference=reference, fooled=gain >= -tolerance, margin=gain / scale)


def compare_with_test(value: Measurement, reference: Measurement, higher_is_better: bool, *, stderr: float,
                      reference_stderr: float, alpha: float) -> MatrixCell:
    """The matrix's rule: fooled unless significantly worse than the reference (one-sided, level ``alpha``)."""
    test = one_sided_test(value.value, reference.value, higher_is_better, stderr, reference_stderr, alpha=alpha)
    scale = abs(reference.value) if abs(reference.value) > 1e-9 else 1.0
    return MatrixCell(value=value.value, reference=reference.value, fooled=test.fooled, margin=test.gain / scale,
                      stderr=stderr, reference_stderr=reference_stderr, z=test.z, p_value=test.p_value)


def compare_two_sided(value: float, reference: float, band: float = CT_BAND) -> MatrixCell:
    """C_T's rule: fooled iff |value| < band (indistinguishable from real data); margin (band - |value|) / band."""
    return MatrixCell(value=value, reference=reference, fooled=abs(value) < band, margin=(band - abs(value)) / band,
                      stderr=1.0, reference_stderr=1.0)


def held_out_halves(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of two seeded, disjoint halves of ``count`` held-out rows (C_T's test set and its reference)."""
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[: count // 2]), np.sort(order[count // 2:])


def check_matrix_sizes(domain: Domain, n: int) -> None:
    """Refuse, in one line, a domain or ``n`` too small for the matrix's k-NN metrics and C_T, or ``n`` beyond the
    real (or training) images there are."""
    domain.require_real(MIN_REAL_IMAGES, f"the robustness matrix (k-NN radii with k = {PRDC_NEAREST_K}, and C_T's two "
                                         f"held-out halves of at least {MIN_MATRIX_SAMPLES} images each)")
    real, train = domain.real.shape[0], domain.train.shape[0]
    if train < max(CT_CELLS, PRDC_NEAREST_K + 2):
        raise InvalidInputError(f"the robustness matrix needs at least {max(CT_CELLS, PRDC_NEAREST_K + 2)} training "
                                f"images (C_T's {CT_CELLS} k-means cells), but {parameter('train')} "
                                f"{domain.train_source} gives {train}; pass more training images")
    if isinstance(n, bool) or not isinstance(n, int) or not MIN_MATRIX_SAMPLES <= n <= min(real, train):
        raise InvalidInputError(f"{parameter('n')} must be an integer in {MIN_MATRIX_SAMPLES}..{min(real, train)} (at "
                                f"most the {real} real and {train} training images; the k-NN radii need k + 2 = "
                                f"{MIN_MATRIX_SAMPLES}), got {n!r}")


def auxiliary_scorers(domain: Domain, *, second: ImageClassifier | str | None = AUTO,
                      robust: ImageClassifier | str | None = AUTO) -> dict[str, AuxiliaryScorer]:
    """The other classifiers the matrix scores with: "second" (FID-b) and "robust" (R-IS, R-FID). ``auto``: the
    digits' digits-b (digits for digits-b itself) and digits-robust; none on another domain. A name is loaded
    with :func:`~isgame.scoring.classifiers.load_classifier`; None leaves the columns out."""
    scorers = {}
    for role, choice in (("second", second), ("robust", robust)):
        classifier = resolve_auxiliary(domain, role, choice)
        if classifier is None:
            continue
        features = classify_with_features(classifier, domain.train)[1]
        scorers[role] = AuxiliaryScorer(label=choice if isinstance(choice, str) and choice != AUTO else classifier.name,
                                        classifier=classifier, train_statistics=features_to_statistics(features))
    return scorers


def resolve_auxiliary(domain: Domain, role: str, choice: ImageClassifier | str | None = AUTO) -> ImageClassifier | None:
    """The "second" or "robust" classifier of ``domain``: ``choice`` itself, loaded when a spec, or for ``auto`` the
    digits' digits-b (digits for digits-b) and digits-robust, and none on another domain."""
    from isgame.scoring.classifiers import load_classifier

    choice = auxiliary_spec(role, choice, own=domain.classifier_name, digits=domain.is_digits)
    if choice is None or isinstance(choice, ImageClassifier):
        return choice
    return load_classifier(choice, device=domain.classifier.device)


def auxiliary_spec(role: str, choice: ImageClassifier | str | None = AUTO, *, own: str,
                   digits: bool) -> ImageClassifier | str | None:
    """What ``choice`` of the "second" or "robust" classifier names, before loading: ``auto`` is, where the images
    are digits (``digits``), digits-b (digits when ``own``, the main classifier, is digits-b) and digits-robust,
    and None elsewhere; any other choice is itself."""
    from isgame.scoring.classifiers.digits import SHIPPED_DIGITS_WEIGHTS

    if not (isinstance(choice, str) and choice == AUTO):
        return choice
    if not digits:
        return None
    if role == "second":
        return "digits" if own == "digits-b" else "digits-b"
    return "digits-robust" if "digits-robust" in SHIPPED_DIGITS_WEIGHTS and own != "digits-robust" else None


def matrix_context(domain: Domain, *, n: int, seed: int, auxiliary: dict[str, AuxiliaryScorer]) -> MatrixContext:
    """The reference of every game on ``domain``: the stats file's subset and moments where the domain has one,
    else the training images' features; IS splits min(10, n), KID subsets min(200, n), C_T cells for n."""
    stats = getattr(domain, "reference_stats", None)
    if stats is None:
        reference_features = domain.train_outputs[1].double().numpy()
        reference_statistics = features_to_statistics(reference_features)
    else:
        reference_features = np.asarray(stats.features_subset, np.float64)
        reference_statistics = stats.statistics
    held_out_pixels = flatten_images(domain.real)
    ct_half, _ = held_out_halves(held_out_pixels.shape[0], seed)
    real_features = domain.real_outputs[1].double().numpy()
    return MatrixContext(seed=seed, splits=min(IS_SPLITS, n), kid_subset_size=min(KID_SUBSET_SIZE, n),
                         # Fewer k-means cells on a small domain, so that a cell can hold enough samples for C_T.
                         ct_cells=ct_cells(min(n, domain.real.shape[0] // 2), is_digits=domain.is_digits),
                         reference_features=reference_features, reference_statistics=reference_statistics,
                         train_pixels=flatten_images(domain.train), ct_held_out_pixels=held_out_pixels[ct_half],
                         auxiliary=auxiliary, train_images=domain.train,
                         fld_train=domain.train_outputs[1].double().numpy(), fld_test=real_features[ct_half])


def game_outputs(domain: Domain, images: torch.Tensor, auxiliary: dict[str, AuxiliaryScorer]) -> GameOutputs:
    """One forward pass per classifier over a game's images (n, C, H, W)."""
    outputs = {}
    for role, classifier in (("main", domain.classifier), *((r, a.classifier) for r, a in auxiliary.items())):
        logits, features = classify_with_features(classifier, images)
        outputs[role] = (logits, features.double().numpy())
    return GameOutputs(images=images, pixels=flatten_images(images), outputs=outputs)


def measure_game(context: MatrixContext, game: GameOutputs, metrics: list[str]) -> dict[str, Measurement]:
    """Every measurement of ``metrics`` on one game (see :data:`~isgame.probes.matrix.measurements.MEASURES`)."""
    out = {}
    for names, _, measure in MEASURES:
        if set(names) & set(metrics):
            out.update({name: m for name, m in measure(context, game).items() if name in metrics})
    return out


def _metric_key(name: str) -> str:
    """Case, spaces, dashes and underscores ignored: FID-b, fid_b and "fid b" name one column."""
    return "".join(ch for ch in name.lower() if ch not in " -_")


def available_metrics(auxiliary: dict[str, AuxiliaryScorer], metrics: list[str] | None = None) -> list[str]:
    """The columns the matrix can fill: all (or those of ``metrics``, spelled in any case) whose auxiliary
    classifier is there; a requested column whose classifier is missing is refused in one line."""
    known = [metric.name for metric in ALL_METRICS if metric.needs is None or metric.needs in auxiliary]
    if metrics is None:
        return known
    by_key = {_metric_key(m.name): m for m in ALL_METRICS}
    unknown = [m for m in metrics if _metric_key(m) not in by_key]
    if unknown:
        raise InvalidInputError(f"{parameter('metrics')}: unknown {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    wanted = {by_key[_metric_key(m)].name for m in metrics}
    missing = [m for m in ALL_METRICS if m.name in wanted and m.name not in known]
    if missing:
        role = missing[0].needs
        raise InvalidInputError(f"{parameter('metrics')}: {', '.join(m.name for m in missing)} need a {role} classifier, "
                                f"which this domain has none of; pass {parameter(f'{role}_classifier')}")
    return [m for m in known if m in wanted]


def robustness_matrix(domain: Domain | ImageClassifier, *, n: int | None = None, seed: int = 0,
                      games: dict | None = None, steps: int | None = None, progress: bool = False,
                      bootstrap: int = DEFAULT_DRAWS, alpha: float = DEFAULT_ALPHA, metrics: list[str] | None = None,
                      second_classifier: ImageClassifier | str | None = AUTO,
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
    import time

    from isgame.scoring.runtime.progress import progress_bar

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
    measured, stderrs, examples = {}, {}, {}
    with progress_bar("matrix games", total=len(games), batches=len(games), enabled=progress) as advance:
        for name, play in games.items():
            clock = time.perf_counter()
            try:
                batch = play(domain, n, seed, steps=steps)
            except InvalidInputError as error:
                if name == REFERENCE_GAME:
                    raise
                # A game the domain cannot support (mode dropping on images of one predicted class) is left out.
                context.notes.append(f"{name}: not played ({error.render()})")
                advance(1)
                continue
            seconds["games"] += time.perf_counter() - clock
            clock, first_note = time.perf_counter(), len(context.notes)
            outputs = game_outputs(domain, batch, auxiliary)
            with single_threaded():
                # The reference row's FLD is measured on the second held-out half, after the games (not here too).
                skipped = held_out_exclusions(name, columns, context.notes)
                measured[name] = measure_game(context, outputs, [m for m in columns if m not in skipped])
                context.notes[first_note:] = [f"{name}: {note}" for note in context.notes[first_note:]]
                seconds["metrics"] += time.perf_counter() - clock
                clock, rows = time.perf_counter(), bootstrap_rows(n, bootstrap, game_seed(seed, name))
                stderrs[name] = {m: v.stderr if v.stderr is not None else bootstrap_stderr(v.draw, rows)
                                 for m, v in measured[name].items()}
                context.notes.extend(f"{name}: {m} has no bootstrap standard error (fewer than 2 finite draws); "
                                     "its cell is decided by the sign of the gain alone"
                                     for m, se in stderrs[name].items() if not math.isfinite(se))
            seconds["bootstrap"] += time.perf_counter() - clock
            if name != REFERENCE_GAME:
                measured[name].update({m: Measurement(math.nan) for m in skipped})
                stderrs[name].update({m: math.nan for m in skipped})
            examples[name] = batch[:10].clone()
            del batch
            advance(1)
    clock = time.perf_counter()
    reference_from_halves(domain, context, measured[REFERENCE_GAME], stderrs[REFERENCE_GAME], seed=seed,
                          bootstrap=bootstrap, columns=columns)
    seconds["metrics"] += time.perf_counter() - clock
    cells = {name: _row_cells(values, stderrs[name], measured[REFERENCE_GAME], stderrs[REFERENCE_GAME], alpha)
             for name, values in measured.items()}
    sizes = caveat_sizes(domain.real.shape[0])
    caveat = fid_sample_size_curve(context.reference_statistics, domain.real_outputs[1].double().numpy(), sizes,
                                   seed=seed)
    reference = ("the training images' features" if getattr(domain, "reference_stats", None) is None else
                 f"stored statistics ({domain.reference_stats_source}): FID and FID∞ against their mean and "
                 "covariance; KID, RBF-MMD, SWD and the k-NN metrics against their feature subset; R-FID, FID-b, "
                 "FLD (bandwidths fitted to the training images' features) and the pixel metrics still against the "
                 "training images")
    return MatrixResult(games=list(measured), metrics=columns, cells=cells, n=n, seed=seed,
                        fid_sample_sizes=sizes, fid_of_real_subsets=caveat, examples=examples, domain=domain.describe(),
                        steps=steps, splits=context.splits, kid_subset_size=context.kid_subset_size,
                        notes=context.notes, ct_cells=context.ct_cells, bootstrap=bootstrap, alpha=alpha,
                        reference=reference, auxiliary={role: a.label for role, a in auxiliary.items()},
                        seconds={k: round(v, 3) for k, v in seconds.items()})


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
    ordered = {m: reference[m] for names, _, _ in MEASURES for m in names if m in reference}
    reference.clear()
    reference.update(ordered)


def held_out_exclusions(game: str, columns: list[str], notes: list[str]) -> list[str]:
    """The columns of ``columns`` not measured on ``game``: on the reference row, those measured on the second
    held-out half afterwards (:func:`reference_from_halves`); on a game made of held-out images, FLD, whose test
    set those images contain (a note says so; the caller prefixes the game's name)."""
    if game == REFERENCE_GAME:
        return [m for m in columns if m in REFERENCE_FROM_HALVES_ONLY]
    if game in HELD_OUT_GAMES and "FLD" in columns:
        notes.append("FLD not measured: the game's samples are held-out images, which include the held-out "
                     "half FLD is scored on, and a mixture centred on its own test points rewards them")
        return ["FLD"]
    return []


def _row_cells(values: dict[str, Measurement], stderrs: dict[str, float], reference: dict[str, Measurement],
               reference_stderrs: dict[str, float], alpha: float) -> dict[str, MatrixCell]:
    cells = {}
    for metric, value in values.items():
        if HIGHER_IS_BETTER[metric] is None:
            cells[metric] = compare_two_sided(value.value, reference[metric].value)
        else:
            cells[metric] = compare_with_test(value, reference[metric], HIGHER_IS_BETTER[metric],
                                              stderr=stderrs[metric], reference_stderr=reference_stderrs[metric],
                                              alpha=alpha)
    return cells


def caveat_sizes(real: int) -> list[int]:
    """:data:`FID_CAVEAT_SIZES` up to the ``real`` images there are, and ``real`` itself (the digits: 25..540)."""
    sizes = [size for size in FID_CAVEAT_SIZES if size <= real]
    return sizes if real in sizes else [*sizes, real]


class RobustnessMatrixDisplay:
    """Heatmap of games x metrics, rows and columns grouped by family (thin lines between families): red where the
    game fools the metric (not significantly worse than held-out real data), blue where the metric resists;
    colour depth is the margin (clipped to ±100%); each cell shows the value and, where the bootstrap gives
    one, its standard error."""

    def __init__(self, result: MatrixResult) -> None:
        self.result = result

    def plot(self, *, ax=None) -> "RobustnessMatrixDisplay":
        import matplotlib.pyplot as plt

        r = self.result
        if ax is None:
            _, ax = plt.subplots(figsize=(max(13, 1.05 * len(r.metrics) + 3), max(6.5, 0.55 * len(r.games) + 2)))
        margins = np.array([[np.clip(np.nan_to_num(r.cells[g][m].margin), -1, 1) for m in r.metrics] for g in r.games])
        fooled = np.array([[r.cells[g][m].fooled for m in r.metrics] for g in r.games])
        # Fooled cells are shown red (0.5..1 on the colormap), resisted cells blue (0..0.5).
        shade = np.where(fooled, 0.55 + 0.45 * np.abs(margins), 0.45 - 0.45 * np.abs(margins))
        for i, game in enumerate(r.games):
            for j, metric in enumerate(r.metrics):
                cell = r.cells[game][metric]
                if not math.isfinite(cell.value):
                    shade[i, j] = 0.5  # the colormap's neutral middle: neither fooled nor resisted
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=6, color="#555555")
                    continue
                text = f"{cell.value:.3g}" + (" ✗" if cell.fooled and game != REFERENCE_GAME else "")
                if math.isfinite(cell.stderr) and HIGHER_IS_BETTER[metric] is not None:
                    text += f"\n±{cell.stderr:.2g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=6)
        ax.imshow(shade, cmap="coolwarm", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(r.metrics)), [f"{m} {ARROWS[HIGHER_IS_BETTER[m]]}" for m in r.metrics], fontsize=8,
                      rotation=40, ha="right")
        ax.set_yticks(range(len(r.games)), [f"{g}  [{GAME_FAMILIES.get(g, 'other')}]" for g in r.games], fontsize=8)
        for boundary in _family_boundaries([METRIC_FAMILIES[m] for m in r.metrics]):
            ax.axvline(boundary - 0.5, color="black", linewidth=1.2)
        for boundary in _family_boundaries([GAME_FAMILIES.get(g, "other") for g in r.games]):
            ax.axhline(boundary - 0.5, color="black", linewidth=1.2)
        title = (f"Robustness matrix: red ✗ = not significantly worse than held-out real data (one-sided, "
                 f"α = {r.alpha:g}, {r.bootstrap} bootstrap draws)")
        if not r.is_digits:
            title += f"\n{r.domain.get('classifier', {}).get('name', 'classifier')}, n = {r.n}"
        ax.set_title(title, fontsize=10)
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _family_boundaries(families: list[str]) -> list[int]:
    """Positions where the family changes along an axis (for the separating lines)."""
    return [i for i in range(1, len(families)) if families[i] != families[i - 1]]
