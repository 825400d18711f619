"""The robustness matrix's last stage: each cell's verdict, from the game's aspects, the metric's scope and the test.

A game declares the aspects of a generator it degrades (fidelity, diversity, novelty; none for real data in
another order); a metric declares the aspects it claims to measure. The test
(:mod:`isgame.probes.matrix.significance`, Holm-corrected within the column) says whether the metric flags the
game, that is, rates it significantly worse than held-out real data:

==================  =====================================================  ================
verdict             the game degrades an aspect in the metric's scope      the metric flags it
==================  =====================================================  ================
``detected``        yes                                                    yes
``missed``          yes                                                    no
``false_alarm``     no (the game degrades nothing)                          yes
``no_alarm``        no (the game degrades nothing)                          no
``not_applicable``  the game degrades only aspects outside the scope       (not tested)
``undecided``       yes, or none                                           no, but it could
                                                                           not have: too
                                                                           few draws
==================  =====================================================  ================

A cell is ``undecided`` rather than ``missed`` (or ``no_alarm``) when its column was given too few draws for
its p-value to reach Holm's smallest level (p >= 1 / (B + 1)): a test that cannot flag says nothing.

``fooled`` is kept for scripts and means ``missed``; a cell that was not measured (NaN) has no verdict and
``fooled`` None. The reference row's cells have the verdict ``reference``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from isgame.probes.matrix.measurements import HIGHER_IS_BETTER
from isgame.probes.matrix.significance import gain_of
from isgame.scoring.metrics.copy_detectors import CT_BAND
from isgame.scoring.results import FieldsAsDict

VERDICTS = ("detected", "missed", "false_alarm", "no_alarm", "not_applicable", "undecided")
#: how a game stands to a metric before any test: its degraded aspects meet the metric's scope ("in scope"),
#: it degrades nothing ("none"), or only aspects outside the scope ("out of scope")
IN_SCOPE, NONE, OUT_OF_SCOPE = "in scope", "none", "out of scope"


def relation(degrades: tuple[str, ...] | None, scope: tuple[str, ...]) -> str:
    """How a game that degrades ``degrades`` (None: undeclared, judged as in scope) stands to a metric's ``scope``."""
    if degrades is None:
        return IN_SCOPE
    if not degrades:
        return NONE
    return IN_SCOPE if set(degrades) & set(scope) else OUT_OF_SCOPE


def verdict_of(relation_: str, flagged: bool, *, decidable: bool = True) -> str:
    """The verdict of a tested cell (see the module's table); ``decidable``: its test could have flagged it."""
    if relation_ == OUT_OF_SCOPE:
        return "not_applicable"
    if not flagged and not decidable:
        return "undecided"
    if relation_ == NONE:
        return "false_alarm" if flagged else "no_alarm"
    return "detected" if flagged else "missed"


@dataclass(frozen=True)
class MatrixCell(FieldsAsDict):
    """A game's value of one metric against the reference row's, and its verdict.

    ``stderr`` / ``reference_stderr`` are the spread of the half-sample draws of each side (NaN without draws);
    ``p_value`` the cell's own one-sided p-value and ``p_adjusted`` Holm's within the column (NaN where the cell
    was not tested); ``z`` is Φ^-1(p_value); ``draws`` how many draws decided it; ``paired`` whether the game's
    draws took the reference's rows. ``fooled`` means ``verdict == "missed"`` (None for an empty cell).
    """

    value: float
    reference: float
    fooled: bool | None
    margin: float
    stderr: float = math.nan
    reference_stderr: float = math.nan
    z: float = math.nan
    p_value: float = math.nan
    verdict: str | None = None
    p_adjusted: float = math.nan
    draws: int = 0
    paired: bool = False
    relation: str = IN_SCOPE

    @property
    def flagged(self) -> bool:
        """Whether the metric rated the game significantly worse than held-out real data."""
        return self.verdict in ("detected", "false_alarm")


def margin_of(value: float, reference: float, higher_is_better: bool | None) -> float:
    """The signed relative gain over the reference (> 0 better); C_T: (band - |C_T|) / band."""
    if higher_is_better is None:
        return (CT_BAND - abs(value)) / CT_BAND
    scale = abs(reference) if abs(reference) > 1e-9 else 1.0
    return gain_of(value, reference, higher_is_better) / scale if math.isfinite(value) else math.nan


def cell(value: float, reference: float, metric: str, *, relation_: str, p_value: float, p_adjusted: float,
         flagged: bool, draws: int, paired: bool, stderr: float, reference_stderr: float,
         decidable: bool = True) -> MatrixCell:
    """A tested (or out-of-scope) cell with its verdict; an unmeasured value (NaN) gives an empty cell."""
    if math.isnan(value):
        return MatrixCell(value=value, reference=reference, fooled=None, margin=math.nan, relation=relation_)
    verdict = verdict_of(relation_, flagged, decidable=decidable)
    test = {} if relation_ == OUT_OF_SCOPE else {"p_value": p_value, "p_adjusted": p_adjusted, "draws": draws,
                                                 "z": z_of(p_value)}
    return MatrixCell(value=value, reference=reference, fooled=verdict == "missed",
                      margin=margin_of(value, reference, HIGHER_IS_BETTER[metric]), stderr=stderr,
                      reference_stderr=reference_stderr, verdict=verdict, paired=paired, relation=relation_, **test)


def reference_cell(value: float, stderr: float) -> MatrixCell:
    """A cell of the reference row: the value itself, as good as itself."""
    measured = not math.isnan(value)
    return MatrixCell(value=value, reference=value, fooled=False if measured else None, margin=0.0 if measured else
                      math.nan, stderr=stderr, reference_stderr=stderr, verdict="reference" if measured else None)


def z_of(p_value: float) -> float:
    """The standard normal quantile of a p-value, Φ^-1(p): the z a one-sided test would report."""
    from scipy.stats import norm

    return float(norm.ppf(p_value)) if math.isfinite(p_value) else math.nan
