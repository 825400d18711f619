"""The robustness matrix's test: is a game significantly worse than held-out real data?

Each cell's uncertainty is a seeded bootstrap over the game's samples (Efron & Tibshirani 1993):
``draws`` resamples of its n rows with replacement, each kept in its original order (sorted row
numbers), so that order-dependent scores such as IS over contiguous splits keep the order they were
played in. The reference row is resampled independently, so the standard error of the gain is
sqrt(se_game^2 + se_reference^2).

The test is one-sided at level ``alpha`` (default 0.05). With gain = value - reference where higher
is better (reference - value where lower is better), the null hypothesis is "the game is at least as
good as held-out real data" (gain >= 0). z = gain / se, p = Phi(z). The game **fools** the metric
unless p < alpha, i.e. unless it is significantly worse (z < -1.645 at alpha = 0.05). A cell whose
standard error is 0 (identical draws) is decided by the sign of the gain alone.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from isgame import defaults
from isgame.scoring.errors import InvalidInputError, parameter

DEFAULT_ALPHA, DEFAULT_DRAWS = defaults.ALPHA, defaults.MATRIX_DRAWS


@dataclass(frozen=True)
class Significance:
    """One cell's test: the gain (signed so > 0 is better than the reference), its standard error, z and p."""

    gain: float
    stderr: float
    z: float
    p_value: float
    fooled: bool


def check_test_settings(draws: int, alpha: float) -> None:
    """Refuse, in one line, a bootstrap size or level the test cannot use."""
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 2:
        raise InvalidInputError(f"{parameter('bootstrap')} must be an integer >= 2 (bootstrap draws per cell), "
                                f"got {draws!r}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 0.5):
        raise InvalidInputError(f"{parameter('alpha')} must be a level in (0, 0.5), e.g. 0.05, got {alpha!r}")


def bootstrap_rows(n: int, draws: int, seed: int | tuple[int, ...]) -> list[np.ndarray]:
    """``draws`` sorted resamples (each (n,) int64, with replacement) of rows 0..n-1, seeded."""
    rng = np.random.default_rng(seed)
    return [np.sort(rng.integers(0, n, size=n)) for _ in range(draws)]


def game_seed(seed: int, game: str) -> tuple[int, int]:
    """The bootstrap seed of one game: the matrix's seed and a stable hash of the game's name, so that a game's
    standard errors do not depend on which other games are played."""
    return seed, zlib.crc32(game.encode("utf-8"))


def bootstrap_stderr(draw: Callable[[np.ndarray], float] | None, rows: list[np.ndarray]) -> float:
    """The standard deviation (ddof 1) of ``draw`` over the resamples ``rows``; NaN where it cannot be drawn."""
    if draw is None:
        return math.nan
    values = np.array([draw(sample) for sample in rows], dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.std(values, ddof=1)) if values.size >= 2 else math.nan


def one_sided_test(value: float, reference: float, higher_is_better: bool, stderr: float, reference_stderr: float,
                   *, alpha: float = DEFAULT_ALPHA) -> Significance:
    """The test of the module docstring for one cell."""
    gain = value - reference if higher_is_better else reference - value
    se = math.sqrt((stderr if math.isfinite(stderr) else 0.0) ** 2
                   + (reference_stderr if math.isfinite(reference_stderr) else 0.0) ** 2)
    if not math.isfinite(gain):
        return Significance(gain=gain, stderr=se, z=math.nan, p_value=math.nan, fooled=False)
    if se == 0.0:
        z = 0.0 if gain == 0 else math.copysign(math.inf, gain)
    else:
        z = gain / se
    p_value = float(norm.cdf(z))
    return Significance(gain=gain, stderr=se, z=z, p_value=p_value, fooled=p_value >= alpha)
