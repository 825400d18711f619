"""The 1-D counter-example of "A Note on the Inception Score".

Data: with probability 1/2 each, N(-1, 2) (class 0) and N(1, 2) (class 1); the second
parameter is the variance. The Bayes-optimal classifier has log-odds
[(x + 1)^2 - (x - 1)^2] / (2 * 2) = x, so p(y = 1 | x) = sigmoid(x).

For a generator G, with q = E_G[sigmoid(x)] and h the binary entropy in nats,
log IS = h(q) - E_G[h(sigmoid(x))]. Closed forms used by the tests:

* "plus-minus-infinity" emits -inf or +inf: sigmoid is exactly 0 or 1, h = 0, q = 1/2, IS = 2.
* "uniform-100", U(-100, 100): q = 1/2 by symmetry, and since the integral of
  h(sigmoid(x)) over the real line is pi^2 / 3, IS = 2 exp(-pi^2 / 600) up to O(e^-100).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate, stats
from scipy.special import expit

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.plotting import Display
from isgame.scoring.results import FieldsAsDict

CLASS_VARIANCE = 2.0
CLASS_MEANS = (-1.0, 1.0)
GENERATOR_NAMES = ("true-mixture", "plus-minus-infinity", "uniform-100", "normal-0-20")


def posterior_class1(x: np.ndarray) -> np.ndarray:
    """Bayes-optimal p(y = 1 | x) = sigmoid(x); exact 0 and 1 at -inf and +inf."""
    return expit(np.asarray(x, dtype=np.float64))


def binary_entropy_of_posterior(x: np.ndarray | float) -> np.ndarray:
    """h(sigmoid(x)) in nats, computed stably as log(1 + e^-|x|) + |x| sigmoid(-|x|); 0 at +-inf."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        value = np.log1p(np.exp(-a)) + a * expit(-a)
    return np.where(np.isinf(a), 0.0, value)


def binary_entropy(q: float) -> float:
    """h(q) in nats."""
    return float(-sum(p * math.log(p) for p in (q, 1 - q) if p > 0))


def mixture_density(x: np.ndarray) -> np.ndarray:
    """Density of 1/2 N(-1, 2) + 1/2 N(1, 2)."""
    scale = math.sqrt(CLASS_VARIANCE)
    return 0.5 * stats.norm.pdf(x, CLASS_MEANS[0], scale) + 0.5 * stats.norm.pdf(x, CLASS_MEANS[1], scale)


@dataclass(frozen=True)
class ToyGenerator:
    """A 1-D generator: how to sample it and how to take expectations under it."""

    name: str
    description: str
    sample: Callable[[int, np.random.Generator], np.ndarray]
    expectation: Callable[[Callable[[np.ndarray], np.ndarray]], float]
    density: Callable[[np.ndarray], np.ndarray] | None


def _density_expectation(density, lower, upper, points=None):
    def expectation(function):
        value, _ = integrate.quad(lambda x: density(x) * function(x), lower, upper, points=points, limit=400,
                                  epsabs=1e-13, epsrel=1e-12)
        return value

    return expectation


def _sample_mixture(n: int, rng: np.random.Generator) -> np.ndarray:
    labels = rng.integers(0, 2, size=n)
    return np.where(labels == 1, CLASS_MEANS[1], CLASS_MEANS[0]) + math.sqrt(CLASS_VARIANCE) * rng.standard_normal(n)


def toy_generators() -> list[ToyGenerator]:
    """The four generators of the counter-example, in report order."""
    normal20 = stats.norm(0.0, math.sqrt(20.0))
    return [
        ToyGenerator("true-mixture", "1/2 N(-1, 2) + 1/2 N(1, 2), the data itself", _sample_mixture,
                     _density_expectation(mixture_density, -np.inf, np.inf), mixture_density),
        ToyGenerator("plus-minus-infinity", "-inf or +inf with probability 1/2 each",
                     lambda n, rng: np.where(rng.integers(0, 2, size=n) == 1, np.inf, -np.inf),
                     lambda function: float(0.5 * function(np.array(-np.inf)) + 0.5 * function(np.array(np.inf))), None),
        ToyGenerator("uniform-100", "U(-100, 100)", lambda n, rng: rng.uniform(-100.0, 100.0, size=n),
                     _density_expectation(lambda x: np.full_like(np.asarray(x, dtype=float), 1 / 200), -100.0, 100.0,
                                          points=[0.0]),
                     lambda x: np.where(np.abs(x) <= 100, 1 / 200, 0.0)),
        ToyGenerator("normal-0-20", "N(0, 20), variance 20", lambda n, rng: normal20.rvs(size=n, random_state=rng),
                     _density_expectation(normal20.pdf, -np.inf, np.inf), normal20.pdf),
    ]


@dataclass(frozen=True)
class ToyScore(FieldsAsDict):
    """IS of one generator: by numerical integration and by Monte Carlo (with standard error)."""

    name: str
    description: str
    inception_score: float
    inception_score_mc: float
    mc_stderr: float
    marginal_class1: float
    conditional_entropy_nats: float


@dataclass(frozen=True)
class ToyResult:
    """All generators, the Monte Carlo sample size and seed."""

    n: int
    seed: int
    generators: list[ToyScore]

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, "seed": self.seed, "max_is": 2.0, "generators": [g.to_dict() for g in self.generators]}


def integrated_inception_score(generator: ToyGenerator) -> tuple[float, float, float]:
    """(IS, q = E[p(y=1|x)], E[h(sigmoid(x))] in nats) by scipy quadrature (exact for +-inf)."""
    q = generator.expectation(posterior_class1)
    conditional = generator.expectation(binary_entropy_of_posterior)
    return math.exp(binary_entropy(q) - conditional), q, conditional


def monte_carlo_inception_score(generator: ToyGenerator, n: int, rng: np.random.Generator) -> tuple[float, float]:
    """(IS, standard error) from n samples, through the scoring core on exact posteriors.

    The standard error is the delta method on exp: IS * s.e.(I), with s.e.(I) from the
    per-sample KL terms.
    """
    p1 = posterior_class1(generator.sample(n, rng))
    result = inception_score(np.stack([1 - p1, p1], axis=1), kind="probs", splits=1)
    stderr = result.mutual_information_stderr_nats
    return result.is_mean, result.is_mean * (stderr if math.isfinite(stderr) else 0.0)


def toy_counterexample(*, n: int = 100_000, seed: int = 0) -> ToyResult:
    """Score every generator of the counter-example (integrated and Monte Carlo with ``n`` samples)."""
    if n < 2:
        raise InvalidInputError(f"{parameter('n')} must be >= 2 for a Monte Carlo standard error, got {n}")
    rng = np.random.default_rng(seed)
    scores = []
    for generator in toy_generators():
        integrated, q, conditional = integrated_inception_score(generator)
        mc, stderr = monte_carlo_inception_score(generator, n, rng)
        scores.append(ToyScore(generator.name, generator.description, integrated, mc, stderr, q, conditional))
    return ToyResult(n=n, seed=seed, generators=scores)


class ToyDensityDisplay(Display):
    """Class densities, generator densities and the classifier's p(y = 1 | x), as in the paper."""

    figsize = (7, 4)

    def __init__(self, x_range: float = 12.0) -> None:
        self.x_range = x_range

    def draw(self, ax) -> None:
        x = np.linspace(-self.x_range, self.x_range, 801)
        scale = math.sqrt(CLASS_VARIANCE)
        ax.fill_between(x, 0.5 * stats.norm.pdf(x, -1, scale), alpha=0.3, color="#1f77b4", label="class 0: ½ N(-1, 2)")
        ax.fill_between(x, 0.5 * stats.norm.pdf(x, 1, scale), alpha=0.3, color="#d62728", label="class 1: ½ N(1, 2)")
        for generator in toy_generators():
            if generator.density is not None and generator.name != "true-mixture":
                ax.plot(x, generator.density(x), label=f"generator {generator.name}")
        # The ±∞ generator has no density: arrows mark its two atoms beyond the axis.
        ax.annotate("−∞ (p = ½)", xy=(-self.x_range, 0.02), xytext=(-self.x_range + 2.5, 0.02), arrowprops={"arrowstyle": "->"})
        ax.annotate("+∞ (p = ½)", xy=(self.x_range, 0.02), xytext=(self.x_range - 5.5, 0.02), arrowprops={"arrowstyle": "->"})
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        twin = ax.twinx()
        twin.plot(x, posterior_class1(x), color="black", linestyle="--", label="p(y=1|x) = sigmoid(x)")
        twin.set_ylabel("p(y = 1 | x)")
        twin.set_ylim(0, 1.05)
        lines, labels = ax.get_legend_handles_labels()
        lines2, labels2 = twin.get_legend_handles_labels()
        ax.legend(lines + lines2, labels + labels2, fontsize=7, loc="upper left")
        ax.set_title("1-D counter-example: data, generators and the Bayes classifier")
        self.twin_ax_ = twin


class ToyScoresDisplay(Display):
    """IS per generator (integrated, bars) with Monte Carlo estimates ± 2 s.e.; K = 2 as a line."""

    figsize = (6, 4)

    def draw(self, ax) -> None:
        names = [g.name for g in self.result.generators]
        x = np.arange(len(names))
        ax.bar(x, [g.inception_score for g in self.result.generators], color="#80b1d3", label="integrated (scipy)")
        ax.errorbar(x, [g.inception_score_mc for g in self.result.generators],
                    yerr=[2 * g.mc_stderr for g in self.result.generators], fmt="o", color="black",
                    label=f"Monte Carlo, n = {self.result.n} (± 2 s.e.)")
        ax.axhline(2.0, color="black", linestyle=":", label="maximum IS = K = 2")
        ax.set_xticks(x, names, rotation=10)
        ax.set_ylim(1.0, 2.1)
        ax.set_ylabel("Inception Score")
        ax.set_title("Every generator beats the data")
        ax.legend(fontsize=8, loc="lower right")
