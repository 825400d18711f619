"""The robustness matrix: every game against every metric on a domain, compared with held-out real data.

A game "fools" a metric when it scores at least as well as the held-out real images (higher
for IS, exp(I), precision, recall, density, coverage and authenticity; lower for FID and
KID, where a game within two standard errors of the reference's KID also counts, since KID is
unbiased and fluctuates around 0). Distribution metrics run on the classifier's features against the training set, the
data a generator learns from; C_T and authenticity run in pixel space against the training set.
The margin is the signed relative amount by which a game beats (> 0) or trails (< 0) the reference.

C_T is two-sided (far below 0: copying; far above: underfitting), so it has its own rule: a game
fools C_T when it is indistinguishable from real held-out data, |C_T| < 3 (:data:`CT_BAND`, a z
statistic), and its margin is (3 - |C_T|) / 3. Its reference is fair: the held-out images are
split in two seeded halves; every game is tested against the first half, and the reference row is
the second half tested against the first (real data the training set never saw, not held-out
data against itself, which is 0 by construction). C_T is undefined (NaN, with a note) for a set
none of whose k-means cells holds more than 20 samples, which only small ``n`` can give.

Any :class:`~isgame.scoring.domains.Domain` works; the built-in digits give today's numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from isgame.probes.copy_detectors import (CT_BAND, CT_CELLS, CT_GENERATED_PER_CELL, authenticity, ct_cells,
                                          data_copying_test, flatten_images)
from isgame.probes.games import GAMES, REFERENCE_GAME
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import Domain, as_domain
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.fid import fid_sample_size_curve, frechet_distance
from isgame.scoring.inception_score import inception_score
from isgame.scoring.pipeline import classify_with_features
from isgame.scoring.kid import kernel_inception_distance
from isgame.scoring.prdc import precision_recall_density_coverage

MATRIX_SAMPLES = 540  # the size of the held-out set, so every game is compared at the same N
#: True: higher is better; False: lower; None: two-sided (C_T: closest to 0 is best)
HIGHER_IS_BETTER = {"IS": True, "exp(I)": True, "FID": False, "KID": False, "precision": True, "recall": True,
                    "density": True, "coverage": True, "C_T": None, "authenticity": True}
METRICS = tuple(HIGHER_IS_BETTER)
ARROWS = {True: "↑", False: "↓", None: "→0"}
FOOLED_RULES = {metric: ("at least as high as the reference" if better else "at least as low as the reference")
                for metric, better in HIGHER_IS_BETTER.items() if better is not None} | {
    "KID": "at most the reference's KID plus two of its standard errors",
    "C_T": f"|C_T| < {CT_BAND:g}: indistinguishable from real held-out data (a z statistic; C_T <= -{CT_BAND:g} "
           f"flags copying, >= +{CT_BAND:g} underfitting); reference: one held-out half against the other",
}
KID_SUBSETS = 50
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


@dataclass(frozen=True)
class MatrixCell:
    value: float
    reference: float
    fooled: bool
    margin: float

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

    @property
    def is_digits(self) -> bool:
        return self.domain.get("name", "digits") == "digits"

    @property
    def reference_game(self) -> str:
        """The honest baseline row every other game is compared with."""
        return REFERENCE_GAME

    def resisted(self, metric: str) -> list[str]:
        return [g for g in self.games if g != REFERENCE_GAME and not self.cells[g][metric].fooled]

    def fooled_by(self, metric: str) -> list[str]:
        return [g for g in self.games if g != REFERENCE_GAME and self.cells[g][metric].fooled]

    def paragraphs(self) -> dict[str, str]:
        """One sentence per metric naming the games it resists and those that fool it."""
        out = {}
        for metric in self.metrics:
            resisted, fooled = self.resisted(metric), self.fooled_by(metric)
            direction = {True: "higher is better", False: "lower is better", None: "two-sided, |C_T| < 3 is real-like"}
            out[metric] = (f"{metric} ({direction[HIGHER_IS_BETTER[metric]]}) resists "
                           f"{len(resisted)} of {len(self.games) - 1} games: {', '.join(resisted) or 'none'}. "
                           f"Fooled by: {', '.join(fooled) or 'none'}.")
        return out

    def to_dict(self) -> dict[str, object]:
        real = "real held-out digits" if self.is_digits else "held-out real images"
        return {
            "n": self.n, "seed": self.seed, "reference_game": REFERENCE_GAME,
            "games": self.games, "metrics": self.metrics,
            "higher_is_better": {m: HIGHER_IS_BETTER[m] for m in self.metrics},
            "fooled_rules": {m: FOOLED_RULES[m] for m in self.metrics},
            "cells": {g: {m: c.to_dict() for m, c in row.items()} for g, row in self.cells.items()},
            "paragraphs": self.paragraphs(),
            "fid_sample_size_caveat": {
                "note": f"FID of random subsets of the {real} against the training set: the same "
                        "distribution, so every value above 0 is finite-N bias; compare FIDs only at equal N",
                "sizes": self.fid_sample_sizes, "fid": self.fid_of_real_subsets,
            },
            "domain": self.domain, "steps": self.steps, "splits": self.splits,
            "kid_subset_size": self.kid_subset_size, "ct_cells": self.ct_cells, "notes": list(self.notes),
        }


def metric_values(classifier: ImageClassifier, images: torch.Tensor, *, train_features: np.ndarray,
                  train_pixels: np.ndarray, held_out_pixels: np.ndarray, seed: int, splits: int = IS_SPLITS,
                  kid_subset_size: int = KID_SUBSET_SIZE, notes: list[str] | None = None,
                  cells: int = CT_CELLS) -> dict[str, float]:
    """All metrics of ``images`` (n, C, H, W) in [0, 1]: features (N_train, d) and pixels (N_train, C*H*W) of the
    training set, pixels of the held-out half C_T compares with; IS over ``splits`` parts, KID on subsets of
    ``kid_subset_size`` rows. An undefined C_T is NaN and says why in ``notes``."""
    logits, features = classify_with_features(classifier, images)
    scores = inception_score(logits, splits=splits, track_stderr=False)
    features = features.double().numpy()
    pixels = flatten_images(images)
    manifold = precision_recall_density_coverage(train_features, features)
    kid = kernel_inception_distance(train_features, features, subsets=KID_SUBSETS, subset_size=kid_subset_size,
                                    seed=seed)
    return {
        "IS": scores.is_mean,
        "exp(I)": scores.improved_is,
        "FID": frechet_distance(train_features, features),
        "KID": kid.mean,
        "KID_stderr": kid.stderr,
        "precision": manifold.precision,
        "recall": manifold.recall,
        "density": manifold.density,
        "coverage": manifold.coverage,
        "C_T": copying_statistic(train_pixels, held_out_pixels, pixels, seed=seed, notes=notes, cells=cells),
        "authenticity": authenticity(train_pixels, pixels),
    }


def copying_statistic(train: np.ndarray, held_out: np.ndarray, generated: np.ndarray, *, seed: int,
                      notes: list[str] | None = None, what: str = "the samples", cells: int = CT_CELLS) -> float:
    """C_T of ``generated`` (M, D) against ``held_out`` (pixels, as ``train``) with ``cells`` k-means cells, or NaN
    (and a note) when no cell holds enough of its samples: possible only for small sets, where C_T is undefined."""
    try:
        return data_copying_test(train, held_out, generated, cells=cells, seed=seed).ct_statistic
    except InvalidInputError as error:
        if not str(error).startswith("no cell holds more than"):
            raise
        if notes is not None:
            notes.append(f"C_T of {what} is undefined (NaN): no k-means cell holds more than "
                         f"{CT_GENERATED_PER_CELL} of its {generated.shape[0]} samples and a held-out image; more "
                         f"samples (n) and real images define it")
        return math.nan


def compare(value: float, reference: float, higher_is_better: bool, *, tolerance: float = 0.0) -> MatrixCell:
    """Fooled iff the game is at least as good as the reference, less ``tolerance``; margin relative to |reference|."""
    gain = value - reference if higher_is_better else reference - value
    scale = abs(reference) if abs(reference) > 1e-9 else 1.0
    return MatrixCell(value=value, reference=reference, fooled=gain >= -tolerance, margin=gain / scale)


def compare_two_sided(value: float, reference: float, band: float = CT_BAND) -> MatrixCell:
    """C_T's rule: fooled iff |value| < band (indistinguishable from real data); margin (band - |value|) / band."""
    return MatrixCell(value=value, reference=reference, fooled=abs(value) < band, margin=(band - abs(value)) / band)


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


def robustness_matrix(domain: Domain | ImageClassifier, *, n: int | None = None, seed: int = 0,
                      games: dict | None = None, steps: int | None = None, progress: bool = False) -> MatrixResult:
    """Play every game on ``domain`` with ``n`` samples and score it with every metric.

    One game's images are held at a time (and the first ten of each, for the figure), so memory stays within
    one game's n images however many games there are; ``progress`` draws a bar over the games on stderr.

    ``n`` defaults to min(real images, :data:`MATRIX_SAMPLES`) (540 for the digits); ``steps`` is the
    gradient-step budget of the attack games (None: their defaults). ``games`` maps names to
    ``game(domain, n, seed, *, steps)`` and must hold :data:`REFERENCE_GAME`. IS uses min(10, n)
    splits and KID subsets of min(200, n) rows.
    """
    domain = as_domain(domain)
    games = GAMES if games is None else games
    n = min(domain.real.shape[0], MATRIX_SAMPLES) if n is None else n
    check_matrix_sizes(domain, n)
    classifier, splits, kid_subset_size = domain.classifier, min(IS_SPLITS, n), min(KID_SUBSET_SIZE, n)
    # Fewer k-means cells on a small domain, so that a cell can hold enough samples for C_T (digits: always 10).
    cell_count = ct_cells(min(n, domain.real.shape[0] // 2), is_digits=domain.is_digits)
    train_features = domain.train_outputs[1].double().numpy()
    train_pixels, held_out_pixels = flatten_images(domain.train), flatten_images(domain.real)
    ct_half, reference_half = held_out_halves(held_out_pixels.shape[0], seed)
    from isgame.scoring.progress import progress_bar

    values, notes, examples = {}, [], {}
    with progress_bar("matrix games", total=len(games), batches=len(games), enabled=progress) as advance:
        for name, play in games.items():
            batch, game_notes = play(domain, n, seed, steps=steps), []
            values[name] = metric_values(classifier, batch, train_features=train_features, train_pixels=train_pixels,
                                         held_out_pixels=held_out_pixels[ct_half], seed=seed, splits=splits,
                                         kid_subset_size=kid_subset_size, notes=game_notes, cells=cell_count)
            notes.extend(f"{name}: {note}" for note in game_notes)
            examples[name] = batch[:10].clone()
            del batch
            advance(1)
    reference = values[REFERENCE_GAME]
    # C_T of held-out data against a set it contains is meaningless: the reference row is the other half.
    reference["C_T"] = copying_statistic(train_pixels, held_out_pixels[ct_half], held_out_pixels[reference_half],
                                         seed=seed, notes=notes, what="the reference (second held-out half)",
                                         cells=cell_count)
    held_out_features = domain.real_outputs[1].double().numpy()
    sizes = caveat_sizes(domain.real.shape[0])
    caveat = fid_sample_size_curve(train_features, held_out_features, sizes, seed=seed)
    # KID is unbiased and fluctuates around 0 for the reference's own distribution: a game within two
    # standard errors of the reference's KID is not distinguishable from real data, so it fools KID.
    tolerances = {m: 0.0 for m in METRICS} | {"KID": 2 * reference["KID_stderr"]}
    cells = {name: {m: compare_two_sided(v[m], reference[m]) if HIGHER_IS_BETTER[m] is None else
                    compare(v[m], reference[m], HIGHER_IS_BETTER[m], tolerance=tolerances[m]) for m in METRICS}
             for name, v in values.items()}
    return MatrixResult(games=list(games), metrics=list(METRICS), cells=cells, n=n, seed=seed,
                        fid_sample_sizes=sizes, fid_of_real_subsets=caveat,
                        examples=examples, domain=domain.describe(),
                        steps=steps, splits=splits, kid_subset_size=kid_subset_size, notes=notes, ct_cells=cell_count)


def caveat_sizes(real: int) -> list[int]:
    """:data:`FID_CAVEAT_SIZES` up to the ``real`` images there are, and ``real`` itself (the digits: 25..540)."""
    sizes = [size for size in FID_CAVEAT_SIZES if size <= real]
    return sizes if real in sizes else [*sizes, real]


class RobustnessMatrixDisplay:
    """Heatmap of games x metrics: red where the game fools the metric, blue where the metric resists;
    colour depth is the margin (clipped to ±100%); each cell shows the value."""

    def __init__(self, result: MatrixResult) -> None:
        self.result = result


    def plot(self, *, ax=None) -> "RobustnessMatrixDisplay":
        import matplotlib.pyplot as plt

        r = self.result
        if ax is None:
            _, ax = plt.subplots(figsize=(13, 6.5))
        margins = np.array([[np.clip(r.cells[g][m].margin, -1, 1) for m in r.metrics] for g in r.games])
        fooled = np.array([[r.cells[g][m].fooled for m in r.metrics] for g in r.games])
        # Fooled cells are shown red (0.5..1 on the colormap), resisted cells blue (0..0.5).
        shade = np.where(fooled, 0.55 + 0.45 * np.abs(margins), 0.45 - 0.45 * np.abs(margins))
        ax.imshow(shade, cmap="coolwarm", vmin=0, vmax=1, aspect="auto")
        for i, game in enumerate(r.games):
            for j, metric in enumerate(r.metrics):
                cell = r.cells[game][metric]
                text = f"{cell.value:.3g}" + (" ✗" if cell.fooled and game != REFERENCE_GAME else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(r.metrics)), [f"{m} {ARROWS[HIGHER_IS_BETTER[m]]}" for m in r.metrics], fontsize=8)
        ax.set_yticks(range(len(r.games)), r.games, fontsize=8)
        title = "Robustness matrix: red ✗ = the game scores at least as well as held-out real data"
        if not r.is_digits:
            title += f" ({r.domain.get('classifier', {}).get('name', 'classifier')}, n = {r.n})"
        ax.set_title(title)
        self.ax_, self.figure_ = ax, ax.figure
        return self
