"""The robustness matrix's result: every cell's value and verdict, the settings that made them, and the heatmap."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from isgame import defaults
from isgame.probes.matrix.games import GAME_FAMILIES, REFERENCE_GAME
from isgame.probes.matrix.measurements import (
    FOOLED_RULES,
    HIGHER_IS_BETTER,
    IS_SPLITS,
    KID_SUBSET_SIZE,
    MATRIX_METRICS,
    METRIC_FAMILIES,
)
from isgame.probes.matrix.verdicts import MatrixCell
from isgame.scoring.metrics.copy_detectors import CT_CELLS
from isgame.scoring.plotting import Display

ARROWS = {True: "↑", False: "↓", None: "→0"}


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
    bootstrap: int = defaults.MATRIX_DRAWS
    alpha: float = defaults.ALPHA
    reference: str = "the training images' features"
    auxiliary: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

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
        real = f"held-out {self.domain.get('noun', 'real images')}"
        return {
            "n": self.n, "seed": self.seed, "reference_game": REFERENCE_GAME,
            "games": self.games, "metrics": self.metrics,
            "higher_is_better": {m: HIGHER_IS_BETTER[m] for m in self.metrics},
            "fooled_rules": {m: FOOLED_RULES[m] for m in self.metrics},
            "families": {m: METRIC_FAMILIES[m] for m in self.metrics},
            "game_families": {g: GAME_FAMILIES.get(g, "other") for g in self.games},
            "descriptions": {metric.name: metric.description for metric in MATRIX_METRICS if metric.name in self.metrics},
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



class RobustnessMatrixDisplay(Display):
    """Heatmap of games x metrics, rows and columns grouped by family (thin lines between families): red where the
    game fools the metric (not significantly worse than held-out real data), blue where the metric resists;
    colour depth is the margin (clipped to ±100%); each cell shows the value and, where the bootstrap gives
    one, its standard error."""

    def figure_size(self) -> tuple[float, float]:
        return max(13, 1.05 * len(self.result.metrics) + 3), max(6.5, 0.55 * len(self.result.games) + 2)

    def draw(self, ax) -> None:
        r = self.result
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
        title += f"\n{r.domain.get('classifier', {}).get('name', 'classifier')}, n = {r.n}"
        ax.set_title(title, fontsize=10)


def _family_boundaries(families: list[str]) -> list[int]:
    """Positions where the family changes along an axis (for the separating lines)."""
    return [i for i in range(1, len(families)) if families[i] != families[i - 1]]
