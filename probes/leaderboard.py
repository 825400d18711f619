"""The leaderboard: the smallest L∞ ε at which a white-box attack on each metric makes degraded samples pass it.

For every metric column of the robustness matrix and every degraded source (honest KDE samples and uniform noise,
the matrix's games ``honest KDE`` and ``uniform noise``), ``n`` images of the source are attacked along an ε grid
(:class:`~isgame.attacks.metric_attack.MetricAttack`: sign-gradient PGD on the metric's own differentiable loss,
warm-started up the grid) and, at each ε, the attacked set is judged as the matrix judges a game's cell: the
metric's one-sided sign test against held-out real data over half-samples (:class:`~isgame.probes.matrix.
MatrixReference`, built once per domain), and the matrix's verdict. The metric is *fooled* at ε when the verdict
is ``missed``: the set degrades an aspect the metric claims to measure, and the test no longer flags it.

ε to fool: the smallest grid ε whose verdict is missed, refined by ``bisection_steps`` midpoints (geometric, the
first bracket from 0 arithmetic) between the last flagged and the first missed grid ε, each midpoint's set
warm-started from the lower end's; none within the grid is reported as "> ε_max", never as robust.

Every loss computes the matrix's own number (:func:`metric_loss`: the same classifier's features, reference
statistics, kernel and bandwidth, projections, splits). The metrics with no loss (the k-NN metrics, FLD, FID∞,
C_T, authenticity) are judged on the FID attack's sets, and IS∞ on the IS attack's: ``"transfer from FID"``.
The FID attack's transfer to FID-b (another network's features) and the wavelet distance (no network) is
recorded as well (``transfers``). A set is tested as a family of one at ``alpha``: the matrix's Holm correction
across its column would flag less, so a reported ε to fool is conservative.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from isgame import defaults
from isgame.attacks.metric_attack import AttackedSet, MetricAttack, check_grid
from isgame.attacks.metric_losses import (
    MetricLoss,
    frechet_loss,
    gaussian_mmd_loss,
    haar_packets,
    inception_loss,
    polynomial_mmd_loss,
    sliced_wasserstein_loss,
    vendi_loss,
)
from isgame.probes.leaderboard_result import (
    FOOLED,
    NOT_APPLICABLE,
    NOT_WITHIN_GRID,
    UNDEFINED,
    WHITE_BOX,
    EpsilonVerdict,
    LeaderboardDisplay,
    LeaderboardEntry,
    LeaderboardResult,
    epsilon_label,
)
from isgame.probes.matrix import MatrixReference, matrix_reference
from isgame.probes.matrix.games import GAMES, Game
from isgame.probes.matrix.measurements import (
    HIGHER_IS_BETTER,
    METRIC_SCOPES,
    SLICED_ORDER,
    MatrixContext,
)
from isgame.probes.matrix.significance import check_test_settings
from isgame.probes.matrix.verdicts import OUT_OF_SCOPE, relation
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.metrics.registry import ColumnView
from isgame.scoring.domains import AUTO, Domain, as_domain
from isgame.scoring.errors import InvalidInputError, parameter

__all__ = ["robustness_leaderboard", "metric_loss", "LeaderboardResult", "LeaderboardEntry", "LeaderboardDisplay",
           "LEADERBOARD_SOURCES", "DIFFERENTIABLE_METRICS", "LEADERBOARD_GRID_255", "LEADERBOARD_SAMPLES",
           "LEADERBOARD_STEPS", "epsilon_label"]

#: the degraded sources attacked: the matrix's games
LEADERBOARD_SOURCES = ("honest KDE", "uniform noise")
#: the default L∞ grid, in 1/255 steps
LEADERBOARD_GRID_255 = (0, 1, 2, 4, 8, 16, 32)
#: midpoints tried between the last flagged and the first missed grid ε (a doubling grid: to within 2^(1/8))
LEADERBOARD_BISECTION_STEPS = 3
#: images per set: the matrix plays 540 digits, but a PGD step through the digits CNN costs about 3x as much at
#: 540 as at 200 (12 ms vs 33 ms a step, one thread), and the whole leaderboard must stay near the audit's wall time
#: (about a minute on 2 shared cores)
LEADERBOARD_SAMPLES = 200
#: PGD steps per ε: each ε starts warm from the previous ε's best set, so 10 (not the attack's own 20) keep the
#: leaderboard within its minute
LEADERBOARD_STEPS = 10


def tolerant_draws(alpha: float) -> int:
    """The fewest half-sample draws B at which a set with one draw as good as the reference's is still flagged at
    ``alpha``: (1 + 1) / (1 + B) <= alpha, so B = ceil(2 / alpha) - 1 (39 at 0.05). The matrix's rule for a family
    of one, ceil(1 / alpha) = 20, flags only when no draw is: one stray draw of a noisy metric (SWD at n = 200)
    then decides the verdict."""
    return math.ceil(2 / alpha - 1e-9) - 1


#: the metrics with a differentiable loss (:func:`metric_loss`), attacked white-box
DIFFERENTIABLE_METRICS = ("IS", "exp(I)", "R-IS", "FID", "FID-b", "R-FID", "KID", "RBF-MMD", "SWD", "wavelet FD",
                          "Vendi")
#: the attack whose sets a metric without a loss is judged on
TRANSFER_SOURCE = {"IS∞": "IS"}
DEFAULT_TRANSFER_SOURCE = "FID"
#: the FID attack's transfer recorded beside these metrics' own attacks: another network's features, no network
FID_TRANSFER_TARGETS = ("FID-b", "wavelet FD")


#: the auxiliary classifier each column reads (None: the domain's own; a live view: plug-in columns join it)
METRIC_NEEDS = ColumnView("needs")


def default_grid() -> list[float]:
    """:data:`LEADERBOARD_GRID_255` in [0, 1] pixel units."""
    return [e / 255 for e in LEADERBOARD_GRID_255]


def _features_of(classifier: ImageClassifier, index: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """(n, C, H, W) images -> the classifier's logits (index 0) or features (1), with gradients."""
    return lambda images: classifier.logits_and_features(images)[index]


def metric_loss(metric: str, context: MatrixContext, classifier: ImageClassifier) -> MetricLoss:
    """The differentiable loss of matrix column ``metric`` (one of :data:`DIFFERENTIABLE_METRICS`) against the
    matrix's ``context`` (``classifier``: the domain's own; the auxiliary ones come from the context): lower is
    closer to real data, and its value is the matrix's number (minus it where higher is better) at equal images;
    for KID the whole-set unbiased MMD^2 that the matrix's KID draws compute."""
    role = {"R-IS": "robust", "R-FID": "robust", "FID-b": "second"}.get(metric, "main")
    if role != "main" and role not in context.auxiliary:
        raise InvalidInputError(f"{parameter('metrics')}: {metric} needs a {role} classifier, which this domain has "
                                f"none of; pass {parameter(f'{role}_classifier')}")
    network = classifier if role == "main" else context.auxiliary[role].classifier
    if metric in ("IS", "exp(I)", "R-IS"):
        loss = inception_loss(_features_of(network, 0), context.splits, one_marginal=metric == "exp(I)")
    elif metric in ("FID", "FID-b", "R-FID"):
        statistics = context.reference_statistics if role == "main" else context.auxiliary[role].train_statistics
        loss = frechet_loss(_features_of(network, 1), statistics.mean, statistics.covariance)
    elif metric == "KID":
        loss = polynomial_mmd_loss(_features_of(network, 1), context.reference_features,
                                   context.reference_kernel_within)
    elif metric == "RBF-MMD":
        sigma, reference_term = context.rbf_reference
        loss = gaussian_mmd_loss(_features_of(network, 1), context.reference_features, sigma, reference_term)
    elif metric == "SWD":
        loss = sliced_wasserstein_loss(_features_of(network, 1), context.reference_features,
                                       context.sliced_reference[0], SLICED_ORDER)
    elif metric == "Vendi":
        loss = vendi_loss(_features_of(network, 1))
    elif metric == "wavelet FD":
        loss = _wavelet_loss(context)
        network = None
    elif metric in white_box_metrics():
        loss = plugin_loss(metric, context, network)
    else:
        raise InvalidInputError(f"{parameter('metric')}: {metric} has no differentiable loss; choose from "
                                f"{', '.join(white_box_metrics())}")
    return MetricLoss(metric=metric, loss=loss, classifier=network)


def white_box_metrics() -> tuple[str, ...]:
    """:data:`DIFFERENTIABLE_METRICS` and every plug-in column registered with ``differentiable=True``."""
    from isgame.scoring.metrics.registry import COLUMNS, plugin_columns

    return (*DIFFERENTIABLE_METRICS, *(name for name in plugin_columns() if COLUMNS[name].differentiable))


def plugin_loss(metric: str, context: MatrixContext, classifier: ImageClassifier):
    """A differentiable plug-in column's loss: its own registered function called on torch float64 tensors (FAKE the
    classifier's features of the attacked images, with gradients; REAL, TRAIN and the logits as the matrix gives
    them, :func:`~isgame.probes.matrix.measurements.measure_plugin`), its value negated where higher is better."""
    from isgame.scoring.metrics.registry import COLUMN_SOURCES, COLUMNS, METRICS, MetricInputs

    spec, key = METRICS[COLUMN_SOURCES[metric]], COLUMNS[metric].value_key
    real = torch.from_numpy(context.fld_test if spec.needs_train else context.reference_features)
    train = torch.from_numpy(context.fld_train) if spec.needs_train else None
    sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0

    def loss(images: torch.Tensor) -> torch.Tensor:
        logits, features = classifier.logits_and_features(images)
        inputs = MetricInputs(real=real, fake=features.double(), train=train,
                              real_statistics=context.reference_statistics, seed=context.seed,
                              fake_logits=logits.double() if spec.needs_logits else None,
                              real_images=context.train_images if spec.needs_images else None,
                              fake_images=images if spec.needs_images else None)
        result = spec.compute(inputs)
        value = result[key] if key is not None else next(iter(result.values()))
        if not isinstance(value, torch.Tensor) or (torch.is_grad_enabled() and not value.requires_grad):
            raise InvalidInputError(f"plug-in metric {metric!r} is registered differentiable=True, but on torch "
                                    f"inputs its value is {type(value).__name__} without a gradient; compute it "
                                    "with torch operations (or register it without differentiable=True: it is then "
                                    "judged by transfer)")
        return sign * value.reshape(())

    return loss


def _wavelet_loss(context: MatrixContext):
    from isgame.attacks.metric_losses import wavelet_frechet_loss
    from isgame.scoring.metrics.wavelet_fd import default_levels, pooled_images

    height, width = pooled_images(context.train_images[:1].float()).shape[-2:]
    levels = default_levels(height, width)
    reference = [(s.mean, s.covariance) for s in context.wavelet_reference]
    return wavelet_frechet_loss(lambda images: haar_packets(pooled_images(images).double(), levels), reference)


def metric_value(metric: str, loss: float) -> float:
    """The metric's value from its loss: minus the loss where higher is better."""
    return -loss if HIGHER_IS_BETTER[metric] else loss


class _Chain:
    """One attack (a metric's loss) on one source's clean images: its sets at the grid ε and at every midpoint
    asked for, each set's classifier outputs and measurements computed once."""

    def __init__(self, attack: MetricAttack, loss: MetricLoss, clean: torch.Tensor, grid: list[float],
                 reference: MatrixReference) -> None:
        self.attack, self.loss, self.clean, self.reference = attack, loss, clean, reference
        with torch.enable_grad():
            result = attack(loss, clean, epsilons=grid)
        self.sets: dict[float, AttackedSet] = {s.epsilon: s for s in result.sets}
        self.grid_losses = result.losses
        self._outputs: dict[tuple[float, str], object] = {}
        self._measured: dict[tuple[float, str], object] = {}

    def at(self, epsilon: float, below: float) -> AttackedSet:
        """The set at ``epsilon``, warm-started from the set at ``below`` < ``epsilon`` when not yet computed."""
        if epsilon not in self.sets:
            with torch.enable_grad():
                self.sets[epsilon] = self.attack.at(self.loss, self.clean, self.sets[below], epsilon)
        return self.sets[epsilon]

    def measured(self, epsilon: float, metric: str):
        """The matrix's measurement of ``metric`` on the set at ``epsilon`` (computed)."""
        key = (epsilon, metric)
        if key not in self._measured:
            # one classifier's outputs at a time: most metrics read the domain's own alone
            role = METRIC_NEEDS[metric] or "main"
            if (epsilon, role) not in self._outputs:
                self._outputs[epsilon, role] = self.reference.outputs(self.sets[epsilon].images, [metric])
            self._measured[key] = self.reference.measure(self._outputs[epsilon, role], [metric])[metric]
        return self._measured[key]


class _Attacks:
    """The attacks on one source's clean images (n, C, H, W), one :class:`_Chain` per attacked metric, made on first
    use; ``seconds`` their time along the grid."""

    def __init__(self, attack: MetricAttack, reference: MatrixReference, clean: torch.Tensor, grid: list[float]):
        self.attack, self.reference, self.clean, self.grid = attack, reference, clean, grid
        self.chains: dict[str, _Chain] = {}
        self.seconds = 0.0

    def chain(self, metric: str) -> _Chain:
        if metric not in self.chains:
            start = time.perf_counter()
            loss = metric_loss(metric, self.reference.context, self.reference.domain.classifier)
            self.chains[metric] = _Chain(self.attack, loss, self.clean, self.grid, self.reference)
            self.seconds += time.perf_counter() - start
        return self.chains[metric]


def robustness_leaderboard(domain: Domain | ImageClassifier, *, n: int | None = None, seed: int = defaults.SEED,
                           epsilons: list[float] | None = None, metrics: list[str] | None = None,
                           sources: list[str] | None = None, steps: int | None = None,
                           bisection_steps: int = LEADERBOARD_BISECTION_STEPS, alpha: float = defaults.ALPHA,
                           most_draws: int | None = None, second_classifier: ImageClassifier | str | None = AUTO,
                           robust_classifier: ImageClassifier | str | None = AUTO,
                           progress: bool = False) -> LeaderboardResult:
    """Attack each metric on each degraded source along the ε grid and find the smallest ε that fools it.

    Args:
        domain: a :class:`~isgame.scoring.domains.Domain` (a digits classifier stands for the digits domain).
        n: images per set (default min(real images, :data:`LEADERBOARD_SAMPLES`), 200: fewer than the matrix's 540,
            for time; the test then has less power, so sets pass it sooner).
        seed: the seed of the sources' images, the reference's order and the test's draws.
        epsilons: the L∞ grid in [0, 1] pixel units (default {0, 1, 2, 4, 8, 16, 32}/255; 0 is always added).
        metrics: matrix columns (any spelling the matrix accepts; default every column the domain allows).
        sources: degraded games among :data:`LEADERBOARD_SOURCES` (default both).
        steps: PGD steps per ε (None: :data:`LEADERBOARD_STEPS`).
        bisection_steps: midpoints between the last flagged and the first missed grid ε.
        alpha, most_draws: the level of each set's test and its most half-sample draws (None:
            :func:`tolerant_draws`, 39 at 0.05).
        second_classifier, robust_classifier: as :func:`~isgame.probes.matrix.robustness_matrix` takes them.
        progress: a bar over the (source, metric) pairs on stderr.
    """
    clock = time.perf_counter()
    grid = check_grid(default_grid() if epsilons is None else list(epsilons))
    games = _sources(sources)
    if isinstance(bisection_steps, bool) or not isinstance(bisection_steps, int) or bisection_steps < 0:
        raise InvalidInputError(f"{parameter('bisection_steps')} must be an integer >= 0, got {bisection_steps!r}")
    attack = MetricAttack(steps=LEADERBOARD_STEPS if steps is None else steps)
    domain = as_domain(domain)
    n = min(0 if domain.real is None else domain.real.shape[0], LEADERBOARD_SAMPLES) if n is None else n
    check_test_settings(most_draws, alpha)
    most_draws = tolerant_draws(alpha) if most_draws is None else most_draws
    reference = matrix_reference(domain, n=n, seed=seed, metrics=metrics, alpha=alpha, most_draws=most_draws,
                                 second_classifier=second_classifier, robust_classifier=robust_classifier)
    seconds = {"reference": time.perf_counter() - clock}
    columns = reference.columns
    judge_clock = time.perf_counter()
    entries, transfers, chains = _attack_and_judge(reference, games, grid, attack, seed=seed,
                                                   bisection_steps=bisection_steps, progress=progress)
    chain_seconds = sum(attacks.seconds for attacks in chains)
    seconds["attacks_on_grid"] = chain_seconds
    seconds["judging_and_bisection"] = time.perf_counter() - judge_clock - chain_seconds
    seconds["total"] = time.perf_counter() - clock
    return LeaderboardResult(entries=entries, transfers=transfers, epsilons=grid, sources=[g.name for g in games],
                             metrics=columns, n=reference.n, seed=seed, steps=attack.steps, bisection_steps=bisection_steps,
                             alpha=alpha, most_draws=reference.most_draws, domain=reference.domain.describe(),
                             auxiliary={r: a.label for r, a in reference.context.auxiliary.items()},
                             notes=list(reference.context.notes), seconds={k: round(v, 3) for k, v in seconds.items()})


def _attack_and_judge(reference: MatrixReference, games: list[Game], grid: list[float], attack: MetricAttack, *,
                      seed: int, bisection_steps: int, progress: bool) -> tuple[list, list, list]:
    """Per source and metric, its entry (white-box, transfer or not applicable); the FID attack's transfers to
    :data:`FID_TRANSFER_TARGETS`; and the attacks run, per source."""
    from isgame.scoring.runtime.progress import progress_bar

    columns, white_box = reference.columns, white_box_metrics()
    entries, transfers, chains = [], [], []
    with progress_bar("leaderboard", total=len(games) * len(columns), batches=len(games) * len(columns),
                      enabled=progress) as advance:
        for game in games:
            attacks = _Attacks(attack, reference, game(reference.domain, reference.n, seed), grid)
            chains.append(attacks)
            for metric in columns:
                attacked = metric if metric in white_box else TRANSFER_SOURCE.get(metric, DEFAULT_TRANSFER_SOURCE)
                if relation(game.degrades, METRIC_SCOPES[metric]) == OUT_OF_SCOPE:
                    entries.append(_not_applicable(metric, game.name, attacked, reference))
                else:
                    entries.append(_entry(metric, game, attacks.chain(attacked), grid, reference, bisection_steps))
                advance(1)
            if DEFAULT_TRANSFER_SOURCE in columns:
                transfers.extend(_entry(target, game, attacks.chain(DEFAULT_TRANSFER_SOURCE), grid, reference,
                                        bisection_steps) for target in FID_TRANSFER_TARGETS
                                 if target in columns and relation(game.degrades, METRIC_SCOPES[target]) != OUT_OF_SCOPE)
    return entries, transfers, chains


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _sources(sources: list[str] | None) -> list[Game]:
    """The source games named (honest KDE, honest-kde, uniform_noise ...), in :data:`LEADERBOARD_SOURCES` order."""
    if sources is None:
        return [GAMES[name] for name in LEADERBOARD_SOURCES]
    by_key = {_key(name): name for name in LEADERBOARD_SOURCES}
    unknown = [s for s in sources if _key(s) not in by_key]
    if unknown or not sources:
        raise InvalidInputError(f"{parameter('sources')}: unknown {', '.join(map(str, unknown)) or 'none given'}; "
                                f"choose from {', '.join(LEADERBOARD_SOURCES)}")
    wanted = {by_key[_key(s)] for s in sources}
    return [GAMES[name] for name in LEADERBOARD_SOURCES if name in wanted]


def _attack_kind(metric: str, attacked: str) -> str:
    return WHITE_BOX if metric == attacked else f"transfer from {attacked}"


def _not_applicable(metric: str, source: str, attacked: str, reference: MatrixReference) -> LeaderboardEntry:
    return LeaderboardEntry(metric=metric, source=source, attack=_attack_kind(metric, attacked), status=NOT_APPLICABLE,
                            epsilon_to_fool=None, reference_value=reference.row[metric].value,
                            higher_is_better=HIGHER_IS_BETTER[metric])


def _judged(metric: str, game: Game, chain: _Chain, epsilon: float, reference: MatrixReference) -> EpsilonVerdict:
    measured = chain.measured(epsilon, metric)
    judged = reference.judge(measured, metric, game)
    return EpsilonVerdict(epsilon=epsilon, value=judged.value, p_value=judged.p_value, draws=judged.draws,
                          verdict=judged.verdict)


def _entry(metric: str, game: Game, chain: _Chain, grid: list[float], reference: MatrixReference,
           bisection_steps: int) -> LeaderboardEntry:
    """``metric`` judged along ``chain``'s grid, and the ε that fools it, bisected."""
    judged = [_judged(metric, game, chain, epsilon, reference) for epsilon in grid]
    kind = _attack_kind(metric, chain.loss.metric)
    common = {"metric": metric, "source": game.name, "attack": kind, "reference_value": reference.row[metric].value,
              "higher_is_better": HIGHER_IS_BETTER[metric], "grid": judged,
              "attack_losses": chain.grid_losses if kind == WHITE_BOX else None}
    if all(j.verdict is None for j in judged):
        return LeaderboardEntry(status=UNDEFINED, epsilon_to_fool=None, **common)
    first = next((i for i, j in enumerate(judged) if j.verdict == "missed"), None)
    if first is None:
        return LeaderboardEntry(status=NOT_WITHIN_GRID, epsilon_to_fool=None, **common)
    if first == 0:
        return LeaderboardEntry(status=FOOLED, epsilon_to_fool=0.0, **common)
    low, high, tried = grid[first - 1], grid[first], []
    for _ in range(bisection_steps):
        middle = math.sqrt(low * high) if low > 0 else high / 2
        chain.at(middle, below=low)
        tried.append(_judged(metric, game, chain, middle, reference))
        if tried[-1].verdict == "missed":
            high = middle
        else:
            low = middle
    return LeaderboardEntry(status=FOOLED, epsilon_to_fool=high, bisection=tried, **common)
