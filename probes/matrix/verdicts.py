"""The robustness matrix's last stage: each cell's verdict from its measurement and its test.

A cell compares a game's value of one metric with the reference row's (held-out real images). The
one-sided test of :mod:`isgame.probes.matrix.significance` decides whether the game **fools** the
metric; C_T, two-sided, has its band instead. The margin is the signed relative amount by which a game
beats (> 0) or trails (< 0) the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from isgame.probes.matrix.measurements import HIGHER_IS_BETTER, Measurement
from isgame.probes.matrix.significance import one_sided_test
from isgame.scoring.metrics.copy_detectors import CT_BAND
from isgame.scoring.results import FieldsAsDict


@dataclass(frozen=True)
class MatrixCell(FieldsAsDict):
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


def compare(value: float, reference: float, higher_is_better: bool, *, tolerance: float = 0.0) -> MatrixCell:
    """Fooled iff the game is at least as good as the reference, less ``tolerance``; margin relative to |reference|
    (the rule without uncertainty; the matrix itself uses :func:`compare_with_test`)."""
    gain = value - reference if higher_is_better else reference - value
    return MatrixCell(value=value, reference=reference, fooled=gain >= -tolerance, margin=gain / _scale(reference))


def compare_with_test(value: Measurement, reference: Measurement, higher_is_better: bool, *, stderr: float,
                      reference_stderr: float, alpha: float) -> MatrixCell:
    """The matrix's rule: fooled unless significantly worse than the reference (one-sided, level ``alpha``)."""
    test = one_sided_test(value.value, reference.value, higher_is_better, stderr, reference_stderr, alpha=alpha)
    return MatrixCell(value=value.value, reference=reference.value, fooled=test.fooled,
                      margin=test.gain / _scale(reference.value), stderr=stderr, reference_stderr=reference_stderr,
                      z=test.z, p_value=test.p_value)


def compare_two_sided(value: float, reference: float, band: float = CT_BAND) -> MatrixCell:
    """C_T's rule: fooled iff |value| < band (indistinguishable from real data); margin (band - |value|) / band."""
    return MatrixCell(value=value, reference=reference, fooled=abs(value) < band, margin=(band - abs(value)) / band,
                      stderr=1.0, reference_stderr=1.0)


def row_cells(values: dict[str, Measurement], stderrs: dict[str, float], reference: dict[str, Measurement],
              reference_stderrs: dict[str, float], alpha: float) -> dict[str, MatrixCell]:
    """The cells of one game's row: each metric's value against the reference row's, by its column's rule."""
    cells = {}
    for metric, value in values.items():
        if HIGHER_IS_BETTER[metric] is None:
            cells[metric] = compare_two_sided(value.value, reference[metric].value)
        else:
            cells[metric] = compare_with_test(value, reference[metric], HIGHER_IS_BETTER[metric],
                                              stderr=stderrs[metric], reference_stderr=reference_stderrs[metric],
                                              alpha=alpha)
    return cells


def _scale(reference: float) -> float:
    return abs(reference) if abs(reference) > 1e-9 else 1.0
