"""The robustness matrix: every game against every metric, compared with held-out real data.

A game "fools" a metric when it scores at least as well as the held-out real digits (higher
for IS, exp(I), precision, recall, density, coverage and authenticity; lower for FID and
KID, where a game within two standard errors of the reference's KID also counts, since KID is
unbiased and fluctuates around 0). Distribution metrics run on the classifier's features against the training set, the
data a generator learns from; C_T and authenticity run in pixel space against the training set.
The margin is the signed relative amount by which a game beats (> 0) or trails (< 0) the reference.

C_T is two-sided (far below 0: copying; far above: underfitting), so it has its own rule: a game
fools C_T when it is indistinguishable from real held-out data, |C_T| < 3 (:data:`CT_BAND`, a z
statistic), and its margin is (3 - |C_T|) / 3. Its reference is fair: the held-out digits are
split in two seeded halves; every game is tested against the first half, and the reference row is
the second half tested against the first (real data the training set never saw, not held-out
data against itself, which is 0 by construction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from isgame.probes.copy_detectors import CT_BAND, authenticity, data_copying_test, flatten_images
from isgame.probes.games import GAMES, REFERENCE_GAME
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.digits_data import digits_split
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
FID_CAVEAT_SIZES = (25, 50, 100, 200, 400, 540)


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
        return {
            "n": self.n, "seed": self.seed, "reference_game": REFERENCE_GAME,
            "games": self.games, "metrics": self.metrics,
            "higher_is_better": {m: HIGHER_IS_BETTER[m] for m in self.metrics},
            "fooled_rules": {m: FOOLED_RULES[m] for m in self.metrics},
            "cells": {g: {m: c.to_dict() for m, c in row.items()} for g, row in self.cells.items()},
            "paragraphs": self.paragraphs(),
            "fid_sample_size_caveat": {
                "note": "FID of random subsets of the real held-out digits against the training set: the same "
                        "distribution, so every value above 0 is finite-N bias; compare FIDs only at equal N",
                "sizes": self.fid_sample_sizes, "fid": self.fid_of_real_subsets,
            },
        }


def metric_values(classifier: ImageClassifier, images: torch.Tensor, *, train_features: np.ndarray,
                  train_pixels: np.ndarray, held_out_pixels: np.ndarray, seed: int) -> dict[str, float]:
    """All metrics of ``images`` (n, 1, 8, 8) in [0, 1]."""
    logits, features = classify_with_features(classifier, images)
    scores = inception_score(logits, splits=10, track_stderr=False)
    features = features.double().numpy()
    pixels = flatten_images(images)
    manifold = precision_recall_density_coverage(train_features, features)
    kid = kernel_inception_distance(train_features, features, subsets=KID_SUBSETS, subset_size=200, seed=seed)
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
        "C_T": data_copying_test(train_pixels, held_out_pixels, pixels, seed=seed).ct_statistic,
        "authenticity": authenticity(train_pixels, pixels),
    }


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


def robustness_matrix(classifier: ImageClassifier, *, n: int = MATRIX_SAMPLES, seed: int = 0,
                      games: dict | None = None) -> MatrixResult:
    """Play every game and score it with every metric."""
    games = GAMES if games is None else games
    split = digits_split()
    train_features = classify_with_features(classifier, split.train_images)[1].double().numpy()
    train_pixels, held_out_pixels = flatten_images(split.train_images), flatten_images(split.test_images)
    ct_half, reference_half = held_out_halves(held_out_pixels.shape[0], seed)
    images = {name: play(classifier, n, seed) for name, play in games.items()}
    values = {name: metric_values(classifier, batch, train_features=train_features, train_pixels=train_pixels,
                                  held_out_pixels=held_out_pixels[ct_half], seed=seed) for name, batch in images.items()}
    reference = values[REFERENCE_GAME]
    # C_T of held-out data against a set it contains is meaningless: the reference row is the other half.
    reference["C_T"] = data_copying_test(train_pixels, held_out_pixels[ct_half], held_out_pixels[reference_half],
                                         seed=seed).ct_statistic
    held_out_features = classify_with_features(classifier, split.test_images)[1].double().numpy()
    caveat = fid_sample_size_curve(train_features, held_out_features, FID_CAVEAT_SIZES, seed=seed)
    # KID is unbiased and fluctuates around 0 for the reference's own distribution: a game within two
    # standard errors of the reference's KID is not distinguishable from real data, so it fools KID.
    tolerances = {m: 0.0 for m in METRICS} | {"KID": 2 * reference["KID_stderr"]}
    cells = {name: {m: compare_two_sided(v[m], reference[m]) if HIGHER_IS_BETTER[m] is None else
                    compare(v[m], reference[m], HIGHER_IS_BETTER[m], tolerance=tolerances[m]) for m in METRICS}
             for name, v in values.items()}
    return MatrixResult(games=list(games), metrics=list(METRICS), cells=cells, n=n, seed=seed,
                        fid_sample_sizes=list(FID_CAVEAT_SIZES), fid_of_real_subsets=caveat,
                        examples={name: batch[:10] for name, batch in images.items()})


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
        ax.set_title("Robustness matrix: red ✗ = the game scores at least as well as held-out real data")
        self.ax_, self.figure_ = ax, ax.figure
        return self
