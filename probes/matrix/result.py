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
    METRIC_SCOPES,
)
from isgame.probes.matrix.verdicts import VERDICTS, MatrixCell
from isgame.scoring.metrics.copy_detectors import CT_CELLS
from isgame.scoring.plotting import Display

ARROWS = {True: "↑", False: "↓", None: "→0"}
DIRECTIONS = {True: "higher is better", False: "lower is better", None: "below its null distribution flags copying"}


@dataclass(frozen=True)
class MatrixResult:
    """Every game's cells (``cells[game][metric]``), the settings and test that made them, and the verdicts' tally.

    ``draws`` is the most half-sample draws a cell of each column could take (C_T: its null distribution's size)
    and ``holm_families`` the cells each column tests; ``game_declarations`` what each game degrades."""

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
    bootstrap: int = 0
    alpha: float = defaults.ALPHA
    reference: str = "the training images' features"
    auxiliary: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    game_declarations: dict[str, dict] = field(default_factory=dict)
    draws: dict[str, int] = field(default_factory=dict)
    holm_families: dict[str, int] = field(default_factory=dict)
    ct_null: dict[str, object] | None = None

    @property
    def reference_game(self) -> str:
        """The honest baseline row every other game is compared with."""
        return REFERENCE_GAME

    def _with_verdict(self, metric: str, *verdicts: str) -> list[str]:
        return [g for g in self.games if g != REFERENCE_GAME and self.cells[g][metric].verdict in verdicts]

    def resisted(self, metric: str) -> list[str]:
        """The games in ``metric``'s scope that it detects."""
        return self._with_verdict(metric, "detected")

    def fooled_by(self, metric: str) -> list[str]:
        """The games in ``metric``'s scope that it misses (the cells whose ``fooled`` is True)."""
        return self._with_verdict(metric, "missed")

    def false_alarms(self, metric: str) -> list[str]:
        """The games that degrade nothing (real data in another order) that ``metric`` flags all the same."""
        return self._with_verdict(metric, "false_alarm")

    def confusion(self) -> dict[str, dict[str, int]]:
        """Per metric, how many of its cells got each verdict (and how many were not measured)."""
        table = {}
        for metric in self.metrics:
            verdicts = [self.cells[g][metric].verdict for g in self.games if g != REFERENCE_GAME]
            table[metric] = {**{verdict: verdicts.count(verdict) for verdict in VERDICTS},
                             "not_measured": verdicts.count(None)}
        return table

    def unfooled_metrics(self) -> list[str]:
        """The metrics no game in their scope fools: every in-scope game measured and detected, none missed."""
        return [metric for metric, counts in self.confusion().items()
                if counts["missed"] == 0 and counts["detected"] > 0 and not self._unmeasured_in_scope(metric)]

    def _unmeasured_in_scope(self, metric: str) -> list[str]:
        """The games in ``metric``'s scope (or degrading nothing) with no decided verdict: not measured, or
        undecided for too few draws."""
        return [g for g in self.games if g != REFERENCE_GAME and self.cells[g][metric].verdict in (None, "undecided")
                and self.cells[g][metric].relation != "out of scope"]

    def paragraphs(self) -> dict[str, str]:
        """One sentence per metric: what it claims, the games in its scope it detects and misses, its false alarms."""
        out = {}
        for metric in self.metrics:
            detected, missed, alarms = self.resisted(metric), self.fooled_by(metric), self.false_alarms(metric)
            scope = " and ".join(METRIC_SCOPES[metric])
            text = (f"{metric} (claims {scope}; {DIRECTIONS[HIGHER_IS_BETTER[metric]]}) detects {len(detected)} of the "
                    f"{len(detected) + len(missed)} games in its scope"
                    + (f"; misses {', '.join(missed)}" if missed else "; misses none")
                    + (f"; false alarms on {', '.join(alarms)}" if alarms else "") + ".")
            empty = self._unmeasured_in_scope(metric)
            out[metric] = text + (f" Not measured or undecided on: {', '.join(empty)}." if empty else "")
        return out

    def to_dict(self) -> dict[str, object]:
        real = f"held-out {self.domain.get('noun', 'real images')}"
        return {
            "n": self.n, "seed": self.seed, "reference_game": REFERENCE_GAME,
            "games": self.games, "metrics": self.metrics,
            "higher_is_better": {m: HIGHER_IS_BETTER[m] for m in self.metrics},
            "fooled_rules": {m: FOOLED_RULES[m] for m in self.metrics},
            "families": {m: METRIC_FAMILIES[m] for m in self.metrics},
            "scopes": {m: list(METRIC_SCOPES[m]) for m in self.metrics},
            "citations": {metric.name: metric.citation for metric in MATRIX_METRICS if metric.name in self.metrics},
            "game_families": {g: GAME_FAMILIES.get(g, "other") for g in self.games},
            "game_declarations": self.game_declarations,
            "descriptions": {metric.name: metric.description for metric in MATRIX_METRICS if metric.name in self.metrics},
            "test": self._test_description(),
            "cells": {g: {m: c.to_dict() for m, c in row.items()} for g, row in self.cells.items()},
            "confusion": self.confusion(),
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

    def _test_description(self) -> dict[str, object]:
        return {
            "kind": "one-sided sign test of the difference game - reference over half-samples drawn without "
                    "replacement (paired where the game reuses the reference's rows); Holm's correction within "
                    "each column; C_T against its null distribution on the domain",
            "alpha": self.alpha, "bootstrap_draws": self.bootstrap, "draws": self.draws,
            "families": self.holm_families,
            "smallest_p": {m: 1.0 / (draws + 1) for m, draws in self.draws.items()},
            "holm_smallest_level": {m: self.alpha / family for m, family in self.holm_families.items() if family},
            "ct_null": self.ct_null,
            "verdicts": {"detected": "the game degrades an aspect in the metric's scope, and the metric flags it",
                         "missed": "the game degrades an aspect in the metric's scope, and the metric does not flag it",
                         "false_alarm": "the game degrades nothing (real data in another order), yet the metric "
                                        "flags it",
                         "no_alarm": "the game degrades nothing, and the metric does not flag it",
                         "not_applicable": "the game degrades only aspects outside the metric's scope (not tested)",
                         "undecided": "the column had too few draws for any p-value to reach Holm's smallest "
                                      "level: the test could not flag the game, so it says nothing"},
            "fooled": "kept for scripts: true where the verdict is missed; null for a cell that was not measured",
        }


#: the colour of each verdict in the heatmap (and the report's table)
VERDICT_COLOURS = {"detected": "#9ecae1", "missed": "#fb6a4a", "false_alarm": "#fdae6b", "no_alarm": "#c7e9c0",
                   "not_applicable": "#f0f0f0", "undecided": "#fff7bc", "reference": "#ffffff", None: "#d9d9d9"}
#: the mark a cell's value carries for its verdict
VERDICT_MARKS = {"missed": " ✗", "false_alarm": " !"}


class RobustnessMatrixDisplay(Display):
    """Heatmap of games x metrics, rows and columns grouped by family (thin lines between families), each cell
    coloured by its verdict (:data:`VERDICT_COLOURS`: red missed, blue detected, orange false alarm, green no
    alarm, pale grey not applicable) and showing its value, marked ✗ where missed and ! where a false alarm."""

    def figure_size(self) -> tuple[float, float]:
        # At most 12.4 in wide: the report shows a figure at 96 CSS px an inch and no wider than its 1200 px page,
        # so nothing is shrunk and 7 pt cell values stay 9 px tall. Narrow columns are fine: values are short.
        width = min(12.4, 0.5 * len(self.result.metrics) + 3.4)
        return width, 0.3 * len(self.result.games) + 2.4

    def draw(self, ax) -> None:
        from matplotlib.colors import to_rgb
        from matplotlib.patches import Patch

        r = self.result
        colours = np.array([[to_rgb(VERDICT_COLOURS[r.cells[g][m].verdict]) for m in r.metrics] for g in r.games])
        ax.imshow(colours, aspect="auto")
        for i, game in enumerate(r.games):
            for j, metric in enumerate(r.metrics):
                cell = r.cells[game][metric]
                text = "n/a" if math.isnan(cell.value) else _compact(cell.value) + VERDICT_MARKS.get(cell.verdict, "")
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="#555555" if cell.verdict in (None, "not_applicable") else "black")
        ax.set_xticks(range(len(r.metrics)), [f"{m} {ARROWS[HIGHER_IS_BETTER[m]]}" for m in r.metrics], fontsize=8,
                      rotation=40, ha="right")
        ax.set_yticks(range(len(r.games)), [f"{g}  [{GAME_FAMILIES.get(g, 'other')}]" for g in r.games], fontsize=8)
        for boundary in _family_boundaries([METRIC_FAMILIES[m] for m in r.metrics]):
            ax.axvline(boundary - 0.5, color="black", linewidth=1.2)
        for boundary in _family_boundaries([GAME_FAMILIES.get(g, "other") for g in r.games]):
            ax.axhline(boundary - 0.5, color="black", linewidth=1.2)
        # The legend above the cells, not beside them: beside, it would widen the figure past the page.
        ax.legend(handles=[Patch(facecolor=VERDICT_COLOURS[v], edgecolor="#999999", label=v.replace("_", " "))
                           for v in VERDICTS], loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(VERDICTS),
                  fontsize=8, frameon=False)
        ax.set_title(f"Robustness matrix: each cell's verdict (one-sided test against held-out real data, Holm "
                     f"within each column, α = {r.alpha:g}); "
                     f"{r.domain.get('classifier', {}).get('name', 'classifier')}, n = {r.n}", fontsize=9, pad=22)


def _compact(value: float) -> str:
    """A cell's value in at most about 7 characters (a column is half an inch): 3 significant digits, small
    magnitudes as 2 digits and a short exponent (-0.000537 -> -5.4e-4)."""
    if value != 0 and abs(value) < 0.01:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.3g}"


def _family_boundaries(families: list[str]) -> list[int]:
    """Positions where the family changes along an axis (for the separating lines)."""
    return [i for i in range(1, len(families)) if families[i] != families[i - 1]]
