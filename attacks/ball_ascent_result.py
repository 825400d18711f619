"""The result of :func:`isgame.attacks.ball_ascent.maximise_score`, and its two figures.

:class:`BoundedAttackResult` keeps every JSON key of the older sweep (:class:`~isgame.attacks.bounded.
BoundedSweepResult`: ``norm, n, num_classes, splits, steps, rel_stepsize, real_is,
epsilon_for_10_percent_above_real, epsilon_for_99_percent_of_k, seconds, epsilons``) and adds the
strategy, the protocol, the thresholds refined by bisection, the ceilings, every strategy's chain, the
own-class baseline and foolbox's cycling-target PGD.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from isgame.attacks.bounded import EpsilonScore
from isgame.attacks.score_protocol import ScoreProtocol
from isgame.scoring.metrics.score_result import with_legacy_json_keys


@dataclass(frozen=True)
class AttackedScore(EpsilonScore):
    """One attacked set at one ε. ``is_mean`` is the protocol's score (what the attack raises), ``is_std`` the
    std (ddof 0) over its groups; I and E[H(y|x)] in bits and ``improved_is`` = exp(I) use one marginal over all
    rows. ``success_rate``: the fraction of images whose predicted class is more probable than that class was
    on the clean image. ``labels_changed``: the fraction whose predicted class differs from the clean image's.
    ``max_distance`` in the attack's norm, ``mean_l2_distance`` the mean L2 norm of the perturbations, both in
    [0, 1] pixel units. ``strategy``: whose images these are; for ``auto``, the strategy that won the most
    groups, and ``groups_won`` counts them all ("previous ε": the group kept its best set of the ε before)."""

    improved_is: float
    labels_changed: float
    mean_l2_distance: float
    strategy: str
    groups_won: dict[str, int] | None = None

    def to_dict(self) -> dict[str, object]:
        return with_legacy_json_keys(dict(vars(self)), ("is_mean", "is_std", "improved_is"))


@dataclass(frozen=True)
class ThresholdSearch:
    """The smallest ε found whose score reaches ``target``: ``epsilon`` is the upper end of the final bracket
    (None: no grid ε reached it), ``grid_epsilon`` the first grid point that did, ``bracket`` (misses, reaches),
    ``tried`` every bisection midpoint with its score, ``score`` the score at ``epsilon``."""

    name: str
    target: float
    epsilon: float | None
    grid_epsilon: float | None
    bracket: tuple[float, float] | None
    tried: list[tuple[float, float]]
    score: float | None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "target": self.target, "epsilon": self.epsilon, "grid_epsilon": self.grid_epsilon,
                "bracket": None if self.bracket is None else list(self.bracket),
                "tried": [list(pair) for pair in self.tried], "score": self.score}


@dataclass(frozen=True)
class ScoreCeiling:
    """How high the protocol's score can go on these images.

    ``labels_kept``: the exact score when every image is certain of the class it has now (mean over groups of
    exp(H(histogram))), the limit of the own-class push. It is not a bound on every label-preserving set:
    predictions that keep their top class but share mass with others can score a little above it.
    ``labels_changed``: the most even histogram per group, one-hot: the supremum over any predictions.
    ``reached``: the best score the attack measured, at ``reached_at``."""

    labels_kept: float
    labels_changed: float
    reached: float
    reached_at: float

    def to_dict(self) -> dict[str, object]:
        return {**vars(self), "closed_form": "mean over the protocol's groups of exp(H(class histogram)) of one-hot "
                "predictions: the clean labels (labels_kept); the most even histogram (labels_changed)"}


@dataclass(frozen=True)
class BoundedAttackResult:
    """Score against ε for one norm: ``scores`` of the chosen ``strategy`` (``auto`` by default)."""

    norm: str
    n: int
    num_classes: int
    protocol: ScoreProtocol
    strategy: str
    steps: int
    rel_stepsize: float
    #: the own-class baseline's steps (and the cycling PGD's), each of ε/4 like the strategies'
    baseline_steps: int
    clean_score: float
    scores: list[AttackedScore]
    strategy_scores: dict[str, list[AttackedScore]]
    baseline: list[AttackedScore]
    cycling: list[AttackedScore] | None
    thresholds: dict[str, ThresholdSearch]
    ceiling: ScoreCeiling
    seconds: float
    #: forward+backward passes of the whole set (each strategy's steps, the baseline's, the bisections')
    passes: int
    clean_examples: torch.Tensor = field(repr=False)
    #: (E, m, C, H, W): the first m attacked images at every ε of the grid
    examples: torch.Tensor = field(repr=False)
    #: (N, C, H, W): the attacked set at the largest ε
    final_images: torch.Tensor = field(repr=False)

    @property
    def splits(self) -> int:
        return self.protocol.split_count

    @property
    def real_is(self) -> float:
        """The clean images' score under the protocol (ε = 0)."""
        return self.clean_score

    @property
    def epsilons(self) -> list[float]:
        return [s.epsilon for s in self.scores]

    def smallest_epsilon(self, minimum: float) -> float | None:
        """The smallest ε of the grid whose score reaches ``minimum``; None if none does."""
        return next((s.epsilon for s in self.scores if s.is_mean >= minimum), None)

    @property
    def epsilon_for_percent(self) -> dict[str, float | None]:
        """The smallest ε found for each threshold, by name ("1", "5", "10" for +1%, +5%, +10%)."""
        return {name: search.epsilon for name, search in self.thresholds.items()}

    @property
    def epsilon_for_10_percent(self) -> float | None:
        """+10% over the clean score: refined by bisection when a grid point reached it."""
        search = self.thresholds.get("10")
        return search.epsilon if search is not None else self.smallest_epsilon(1.1 * self.clean_score)

    @property
    def epsilon_for_99_percent_of_k(self) -> float | None:
        """The smallest grid ε whose score reaches 0.99 K."""
        return self.smallest_epsilon(0.99 * self.num_classes)

    def to_dict(self) -> dict[str, object]:
        rows = lambda scores: None if scores is None else [s.to_dict() for s in scores]  # noqa: E731
        return {
            "norm": self.norm, "n": self.n, "num_classes": self.num_classes, "splits": self.splits,
            "steps": self.steps, "rel_stepsize": self.rel_stepsize, "real_is": self.real_is,
            "epsilon_for_10_percent_above_real": self.epsilon_for_10_percent,
            "epsilon_for_99_percent_of_k": self.epsilon_for_99_percent_of_k,
            "seconds": self.seconds,
            "epsilons": rows(self.scores),
            "strategy": self.strategy,
            "baseline_steps": self.baseline_steps,
            "protocol": self.protocol.to_dict(),
            "clean_score": self.clean_score,
            "epsilon_for_percent": self.epsilon_for_percent,
            "thresholds": {name: search.to_dict() for name, search in self.thresholds.items()},
            "ceiling": self.ceiling.to_dict(),
            "strategies": {name: rows(scores) for name, scores in self.strategy_scores.items()},
            "own_class_baseline": rows(self.baseline),
            "foolbox_cycling": rows(self.cycling),
            "passes": self.passes,
        }


def _eps_label(epsilon: float, norm: str) -> str:
    return f"{epsilon * 255:.3g}/255"


class BoundedAttackDisplay:
    """Score against ε, one panel per norm: the chosen strategy (bold), each strategy's own chain, the own-class
    baseline, foolbox's cycling-target PGD, and the clean score, the two ceilings and K as horizontal lines."""

    def __init__(self, results: list[BoundedAttackResult]) -> None:
        self.results = results

    def plot(self, *, axes=None) -> "BoundedAttackDisplay":
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, len(self.results), figsize=(6.2 * len(self.results), 4.2), squeeze=False)
            axes = axes[0]
        axes = list(np.atleast_1d(axes))
        for ax, result in zip(axes, self.results):
            def line(scores, **style):
                ax.plot([s.epsilon * 255 for s in scores], [s.is_mean for s in scores], **style)

            for name, scores in result.strategy_scores.items():
                if result.strategy == "auto" or name != result.strategy:
                    line(scores, marker=".", linewidth=1, linestyle="--", label=name)
            line(result.scores, marker="o", linewidth=2.4, color="black", label=result.strategy)
            line(result.baseline, marker="x", linewidth=1, color="#7570b3", linestyle=":",
                 label=f"own-class PGD (foolbox, {result.baseline_steps} steps of ε/4)")
            if result.cycling is not None:
                line(result.cycling, marker="s", markersize=3, linewidth=1, color="grey",
                     label="cycling targets i mod K (foolbox PGD)")
            ax.axhline(result.clean_score, color="#1b9e77", linestyle="--", linewidth=1,
                       label=f"clean = {result.clean_score:.3f}")
            ax.axhline(result.ceiling.labels_kept, color="#d95f02", linestyle="-.", linewidth=1,
                       label=f"ceiling, labels kept = {result.ceiling.labels_kept:.3f}")
            ax.axhline(result.ceiling.labels_changed, color="#e7298a", linestyle="-.", linewidth=1,
                       label=f"ceiling, labels changed = {result.ceiling.labels_changed:.3f}")
            ax.set_ylim(*_score_range(result))
            ax.set_xscale("symlog", linthresh=1)
            ticks = [s.epsilon * 255 for s in result.scores]
            ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
            ax.set_xlim(left=0)
            ax.set_xlabel("ε × 255 (L∞: per pixel)" if result.norm == "linf" else "ε × 255 (L2: ball radius)")
            ax.set_ylabel("score")
            ax.set_title(f"{result.norm}: {result.protocol.describe()}, N = {result.n}", fontsize=10)
            ax.legend(fontsize=7)
        self.axes_ = axes
        self.figure_ = axes[0].figure
        return self


def _score_range(result: BoundedAttackResult) -> tuple[float, float]:
    """Y limits that show every line; the labels-changed ceiling only when it sits near them (else it would
    squash them: it is in the legend either way)."""
    lines = [result.scores, result.baseline, *result.strategy_scores.values()]
    lines += [result.cycling] if result.cycling else []
    values = [s.is_mean for scores in lines for s in scores] + [result.ceiling.labels_kept]
    low, high = min(values), max(values)
    if result.ceiling.labels_changed <= high + 0.5 * (high - low):
        high = max(high, result.ceiling.labels_changed)
    pad = 0.05 * (high - low) or 0.05
    return low - pad, high + pad


class PerturbationGridDisplay:
    """The first images clean, then per ε > 0 the attacked images and their perturbation magnified to the ball
    (δ / ε for L∞, δ / max|δ| for L2; blue negative, red positive, averaged over channels)."""

    def __init__(self, result: BoundedAttackResult) -> None:
        self.result = result

    def rows(self) -> tuple[np.ndarray, list[str]]:
        """The picture as one (H', W', 3) array in [0, 1], and a label per row."""
        from matplotlib import colormaps

        result = self.result
        clean = result.clean_examples
        pictures, labels = [_strip(clean)], ["clean"]
        for epsilon, attacked in zip(result.epsilons, result.examples):
            if epsilon == 0:
                continue
            delta = (attacked - clean).mean(dim=1)
            scale = epsilon if result.norm == "linf" else float(delta.abs().max()) or 1.0
            coloured = colormaps["seismic"](((delta / scale).clamp(-1, 1).numpy() + 1) / 2)[..., :3]
            pictures += [_strip(attacked), _strip(torch.from_numpy(coloured).permute(0, 3, 1, 2).float())]
            labels += [f"ε {_eps_label(epsilon, result.norm)}", "δ magnified"]
        return np.concatenate(pictures, axis=0), labels

    def plot(self, *, ax=None) -> "PerturbationGridDisplay":
        import matplotlib.pyplot as plt

        picture, labels = self.rows()
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.75 * len(labels) + 0.6))
        ax.imshow(picture, interpolation="nearest")
        height = picture.shape[0] / len(labels)
        ax.set_yticks([height * (i + 0.5) for i in range(len(labels))], labels, fontsize=8)
        ax.set_xticks([])
        ax.set_title(f"{self.result.norm}: clean, attacked ({self.result.strategy}) and the perturbation", fontsize=10)
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _strip(images: torch.Tensor, pad: int = 1) -> np.ndarray:
    """(m, C, H, W) images side by side as one (H + 2 pad, m (W + pad) + pad, 3) array, grey padding."""
    images = images.detach().cpu().float().clamp(0, 1)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    m, _, height, width = images.shape
    strip = np.full((height + 2 * pad, m * (width + pad) + pad, 3), 0.5, dtype=np.float32)
    for i, image in enumerate(images):
        left = pad + i * (width + pad)
        strip[pad:pad + height, left:left + width] = image.permute(1, 2, 0).numpy()
    return strip
