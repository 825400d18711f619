"""The robustness matrix's test: is a game significantly worse than held-out real data, on any metric's scale?

Each cell tests the difference game - reference of one metric. Its null hypothesis is "the game is at least as
good as held-out real data"; a small p-value says it is worse.

* **Half-samples, not resamples.** Each draw recomputes the metric on half the game's rows and half the
  reference's, drawn without replacement (half-sampling, McCarthy 1969; subsampling, Politis & Romano 1994):
  Fréchet, kernel and k-NN statistics read a repeated row as a near-copy, so a resample with replacement
  biases their draws and inflates their spread. A half-sample of n rows has the spread of the full set's
  statistic for linear statistics (the finite-population factor of m = n / 2 of n), and the two sides are
  always compared at one size, so a statistic's bias in N cancels in the difference. Rows keep their order,
  so order-dependent scores (IS over contiguous splits) see the order they were played in.
* **Paired where the game reuses the reference's rows.** A game whose rows are the reference's in another
  order or each changed alone (class-sorted, truncated or attacked held-out images) takes, in each draw, its
  rows of the reference rows drawn; every other game is drawn independently.
* **A sign test, so any monotone change of scale gives the same verdict.** With gain_b the signed difference
  of draw b (> 0: the game is better), p = (1 + #{b: gain_b >= 0}) / (1 + B): the Monte-Carlo p-value of the
  percentile test (Efron & Tibshirani 1993). It cannot go below 1 / (B + 1).
* **Holm within each column.** The cells a column tests form one family; Holm's step-down (1979) controls its
  family-wise error at ``alpha`` without assumptions. B defaults to the fewest draws that let p reach the
  smallest Holm level, ceil(F / alpha) for F tested cells, and a cell stops drawing early once its p-value
  cannot fall below ``alpha`` (10 draws at least as good as the reference, and a share above ``alpha``).

C_T is a test statistic itself: its cells compare a game's C_T with C_T's null distribution on the domain,
the held-out images split into two random halves and tested against each other (:func:`ct_null`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from isgame import defaults
from isgame.scoring.errors import InvalidInputError, parameter

DEFAULT_ALPHA = defaults.ALPHA
#: draws per cell when none are asked for: enough for the smallest Holm level of the column (see :func:`needed_draws`)
DEFAULT_DRAWS = defaults.MATRIX_DRAWS
#: a cell stops drawing once this many draws were at least as good as the reference and their share exceeds alpha
STOP_AFTER_EXCEEDANCES = 10
#: draws are made in batches of this many (a cell's stopping rule is checked between batches)
DRAW_BATCH = 16


@dataclass(frozen=True)
class CellTest:
    """One cell's test: the observed gain (signed, > 0 better than the reference), its draws, and the p-value."""

    gain: float
    p_value: float
    draws: int
    exceedances: int
    paired: bool
    gain_spread: float = math.nan


def check_test_settings(draws: int | None, alpha: float) -> None:
    """Refuse, in one line, a draw count or level the test cannot use (None draws: as many as Holm needs)."""
    if draws is not None and (isinstance(draws, bool) or not isinstance(draws, int) or draws < 2):
        raise InvalidInputError(f"{parameter('bootstrap')} must be an integer >= 2 (half-sample draws per cell), or "
                                f"None for as many as Holm's correction needs, got {draws!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 0.5):
        raise InvalidInputError(f"{parameter('alpha')} must be a level in (0, 0.5), e.g. 0.05, got {alpha!r}")


def needed_draws(tests: int, alpha: float) -> int:
    """The fewest draws B whose smallest p-value 1 / (B + 1) reaches Holm's smallest level alpha / ``tests``."""
    return max(2, math.ceil(max(tests, 1) / alpha))


def smallest_p(draws: int) -> float:
    """The smallest p-value ``draws`` draws can give: 1 / (B + 1)."""
    return 1.0 / (draws + 1)


def draw_seed(seed: int, name: str) -> tuple[int, int]:
    """The seed of one side's draws: the matrix's seed and a stable hash of the game's name, so that a game's draws
    do not depend on which other games are played."""
    return seed, zlib.crc32(name.encode("utf-8"))


def half_samples(n: int, count: int, seed: int | tuple[int, ...], *, size: int | None = None) -> list[np.ndarray]:
    """``count`` seeded draws, each ``size`` (default n // 2, at least 2) of the rows 0..n-1 without replacement,
    sorted (so rows keep their order)."""
    size = max(2, n // 2) if size is None else size
    if size > n:
        raise InvalidInputError(f"a half-sample of {size} rows needs at least {size} rows, got {n}")
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n, size=size, replace=False)) for _ in range(count)]


def paired_rows(origin: np.ndarray, reference_rows: np.ndarray) -> np.ndarray:
    """The game's rows (in their order) whose reference row, ``origin`` (n,), is among ``reference_rows``."""
    return np.flatnonzero(np.isin(origin, reference_rows))


def gain_of(value: float, reference: float, higher_is_better: bool) -> float:
    """The signed difference game - reference, > 0 where the game is better (the direction the metric prefers)."""
    return value - reference if higher_is_better else reference - value


def sign_test(gains: np.ndarray) -> tuple[float, int, int]:
    """(p, exceedances, draws) of the one-sided sign test over the drawn ``gains`` (B,; NaN: a draw the metric is
    undefined on, left out): p = (1 + #{gain >= 0}) / (1 + B); NaN without a draw."""
    drawn = gains[~np.isnan(gains)]
    if drawn.size == 0:
        return math.nan, 0, 0
    exceed = int((drawn >= 0).sum())
    return (1 + exceed) / (1 + drawn.size), exceed, int(drawn.size)


def sequential_draws(draw_gain: Callable[[int], float], most: int, alpha: float) -> np.ndarray:
    """Gains of draws 0, 1, ... up to ``most``, in batches of :data:`DRAW_BATCH`, stopping early once the cell
    cannot be significant at ``alpha`` (:data:`STOP_AFTER_EXCEEDANCES` draws at least as good as the reference,
    and their share of the draws above ``alpha``): the p-value then stays above any Holm level."""
    gains: list[float] = []
    while len(gains) < most:
        for b in range(len(gains), min(most, len(gains) + DRAW_BATCH)):
            gains.append(draw_gain(b))
        exceed = sum(1 for gain in gains if gain >= 0)  # NaN compares False: an undefined draw is no exceedance
        if exceed >= STOP_AFTER_EXCEEDANCES and (1 + exceed) / (1 + len(gains)) > alpha:
            break
    return np.asarray(gains, dtype=np.float64)


def holm(p_values: dict[str, float], alpha: float) -> dict[str, tuple[float, bool]]:
    """Holm's step-down adjustment of one family: name -> (adjusted p, rejected at ``alpha``); NaN p-values are
    left out of the family (adjusted NaN, not rejected)."""
    tested = sorted((p, name) for name, p in p_values.items() if math.isfinite(p))
    family, running, out = len(tested), 0.0, {}
    for rank, (p, name) in enumerate(tested):
        running = max(running, min(1.0, (family - rank) * p))
        out[name] = (running, running <= alpha)
    return {name: out.get(name, (math.nan, False)) for name in p_values}


def ct_null(statistic: Callable[[np.ndarray, np.ndarray], float], count: int, draws: int,
            seed: int | tuple[int, ...]) -> np.ndarray:
    """C_T's null distribution on the domain: ``draws`` random splits of its ``count`` held-out rows into two
    halves, ``statistic(test_rows, sample_rows)`` of each (finite values only)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        order = rng.permutation(count)
        values.append(statistic(np.sort(order[: count // 2]), np.sort(order[count // 2:])))
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def rank_p_value(value: float, null: np.ndarray) -> float:
    """The one-sided p-value of ``value`` being low against the ``null`` draws: (1 + #{null <= value}) / (1 + R)."""
    if math.isnan(value):
        return math.nan
    return (1 + int((null <= value).sum())) / (1 + null.size)


class ReferenceDraws:
    """The reference row's half-sample draws, shared by every game's test: for each column, draw ``b`` takes a
    seeded half of the ``rows`` the column measured the reference on (or ``sizes[column]`` of them), and its value
    is computed once."""

    def __init__(self, draws: dict[str, Callable[[np.ndarray], float]], rows: dict[str, int], seed: int, name: str,
                 *, sizes: dict[str, int] | None = None):
        self._draws, self._rows, self._seed = draws, rows, draw_seed(seed, name)
        self._sizes = {column: max(2, count // 2) for column, count in rows.items()} | (sizes or {})
        self._values: dict[tuple[str, int], float] = {}
        self._samples: dict[tuple[str, int], np.ndarray] = {}

    def size(self, column: str) -> int:
        """Rows per draw of ``column``, on both sides of a test: half the rows the reference was measured on, unless
        given (FLD's reference is the second held-out half, its games have n rows: half the smaller)."""
        return self._sizes[column]

    def rows(self, column: str, b: int) -> np.ndarray:
        """The reference rows (sorted) of draw ``b`` of ``column``."""
        key = (column, b)
        if key not in self._samples:
            rng = np.random.default_rng((*self._seed, zlib.crc32(column.encode("utf-8")), b))
            self._samples[key] = np.sort(rng.choice(self._rows[column], size=self.size(column), replace=False))
        return self._samples[key]

    def value(self, column: str, b: int) -> float:
        """The reference's ``column`` on the rows of draw ``b``."""
        key = (column, b)
        if key not in self._values:
            self._values[key] = float(self._draws[column](self.rows(column, b)))
        return self._values[key]

    def has(self, column: str) -> bool:
        """Whether ``column`` can be drawn on the reference."""
        return column in self._draws

    def spread(self, column: str, draws: int) -> float:
        """The standard deviation (ddof 1) of the first ``draws`` values (NaN with fewer than 2 finite)."""
        return _spread([self.value(column, b) for b in range(draws)])


def test_cell(draw: Callable[[np.ndarray], float], reference: ReferenceDraws, column: str, higher_is_better: bool,
              *, value: float, reference_value: float, rows: int, most: int, alpha: float, seed: tuple[int, ...],
              origin: np.ndarray | None = None) -> tuple[CellTest, float]:
    """One cell's sign test against the reference's draws, and the spread of the game's own draws.

    Draw ``b`` takes, with ``origin`` (the reference row of each of the game's ``rows``), the game's rows of the
    reference rows drawn; without it, a seeded half-sample of the game's rows of the same size."""
    values: list[float] = []

    def gain(b: int) -> float:
        if origin is not None:
            chosen = paired_rows(origin, reference.rows(column, b))
        else:
            rng = np.random.default_rng((*seed, zlib.crc32(column.encode("utf-8")), b))
            chosen = np.sort(rng.choice(rows, size=reference.size(column), replace=False))
        values.append(float(draw(chosen)))
        return gain_of(values[-1], reference.value(column, b), higher_is_better)

    gains = sequential_draws(gain, most, alpha)
    p_value, exceed, drawn = sign_test(gains)
    return CellTest(gain=gain_of(value, reference_value, higher_is_better), p_value=p_value, draws=drawn,
                    exceedances=exceed, paired=origin is not None, gain_spread=_spread(gains)), _spread(values)


def _spread(values) -> float:
    """The standard deviation (ddof 1) of the finite ``values``, NaN with fewer than two."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.std(finite, ddof=1)) if finite.size >= 2 else math.nan
