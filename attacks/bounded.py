"""ε-bounded gaming of real samples with foolbox: targeted PGD inside an L∞ or L2 ball.

Real held-out images are pushed toward the cycling targets i mod K by foolbox's ``LinfPGD`` /
``L2PGD`` with ``TargetedMisclassification``, through ``foolbox.PyTorchModel`` with bounds
(0, 1). For each ε the IS and E[H(y|x)] of the perturbed set are measured; the sweep reports the
smallest ε of the grid that lifts the IS 10% above the clean IS and the smallest that reaches
99% of K.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import torch

from isgame.attacks.inflate import cycling_targets
from isgame.scoring.classifiers.base import ImageClassifier, ModelInputLogits, foolbox_model  # noqa: F401 (ModelInputLogits: its older home)
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.plotting import Display
from isgame.scoring.results import FieldsAsDict

Norm = Literal["linf", "l2"]
DEFAULT_EPSILONS: dict[str, tuple[float, ...]] = {
    "linf": (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 32 / 255, 64 / 255, 128 / 255),
    # An 8x8 image has 64 pixels, so an L∞ step of e spans an L2 ball of radius 8 e.
    "l2": (0.0, 8 / 255, 16 / 255, 32 / 255, 64 / 255, 128 / 255, 256 / 255, 512 / 255, 1024 / 255),
}


def parse_epsilons(text: str) -> list[float]:
    """Parse "0,1/255,0.1" into floats; every ε must be finite and >= 0."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = float(Fraction(part)) if "/" in part else float(part)
        except (ValueError, ZeroDivisionError):
            raise InvalidInputError(f"{parameter('epsilons')}: cannot read {part!r}; give comma-separated numbers such as 0,1/255,0.1") from None
        if not math.isfinite(value) or value < 0:
            raise InvalidInputError(f"{parameter('epsilons')}: ε must be finite and >= 0, got {part}")
        values.append(value)
    if not values:
        raise InvalidInputError(f"{parameter('epsilons')}: give at least one ε")
    return sorted(set(values))


@dataclass(frozen=True)
class EpsilonScore(FieldsAsDict):
    """Scores of the attacked set at one ε."""

    published = ("is_mean", "is_std")

    epsilon: float
    is_mean: float
    is_std: float
    mutual_information_bits: float
    conditional_entropy_bits: float
    success_rate: float
    max_distance: float


@dataclass(frozen=True)
class BoundedSweepResult:
    """IS against ε for one norm; ``real_is`` is the clean held-out IS (ε = 0)."""

    norm: str
    n: int
    num_classes: int
    splits: int
    steps: int
    rel_stepsize: float
    real_is: float
    scores: list[EpsilonScore]
    seconds: float
    examples: torch.Tensor = field(repr=False)

    def smallest_epsilon(self, minimum_is: float) -> float | None:
        """The smallest ε of the grid whose IS reaches ``minimum_is``; None if none does."""
        return next((s.epsilon for s in self.scores if s.is_mean >= minimum_is), None)

    @property
    def epsilon_for_10_percent(self) -> float | None:
        return self.smallest_epsilon(1.1 * self.real_is)

    @property
    def epsilon_for_99_percent_of_k(self) -> float | None:
        return self.smallest_epsilon(0.99 * self.num_classes)

    def to_dict(self) -> dict[str, object]:
        return {
            "norm": self.norm, "n": self.n, "num_classes": self.num_classes, "splits": self.splits,
            "steps": self.steps, "rel_stepsize": self.rel_stepsize, "real_is": self.real_is,
            "epsilon_for_10_percent_above_real": self.epsilon_for_10_percent,
            "epsilon_for_99_percent_of_k": self.epsilon_for_99_percent_of_k,
            "seconds": self.seconds,
            "epsilons": [s.to_dict() for s in self.scores],
        }


def _sharded_random_start(base: type, *, total: int, first: int, seed: int) -> type:
    """``base`` (a foolbox PGD class) whose random start for rows [first, first + n) of ``total`` is the slice of
    one seeded draw for all ``total`` rows, per ε: a torchrun shard starts where a single process would."""

    class ShardedRandomStart(base):
        def get_random_start(self, x0, epsilon):
            import eagerpy as ep

            # foolbox draws from torch's global generator: seed it per ε so every ε's start is reproducible.
            torch.manual_seed(seed * 1_000_003 + round(epsilon * 1_000_000))
            whole = super().get_random_start(ep.zeros(x0, (total, *x0.shape[1:])), epsilon)
            return x0 + whole[first : first + x0.shape[0]]

    ShardedRandomStart.__name__ = base.__name__
    return ShardedRandomStart


def targeted_pgd(
    classifier: ImageClassifier,
    model_input: torch.Tensor,
    *,
    norm: Norm,
    epsilons: list[float],
    steps: int | None = None,
    rel_stepsize: float | None = None,
    seed: int = 0,
):
    """foolbox targeted PGD toward i mod K on preprocessed inputs (N, C, H, W) in [0, 1].

    Returns ``(attack, clipped, success)``: the foolbox attack object, one perturbed (N, C, H, W)
    tensor per ε (projected on the ε-ball and the box) and one success mask (N,) per ε.

    Under torchrun each rank attacks its shard of the rows (targets and random starts by global
    row) and every rank gets all N rows back.
    """
    import foolbox as fb

    from isgame.scoring.runtime.distributed import all_gather_rows, current_group

    if norm not in DEFAULT_EPSILONS:
        raise InvalidInputError(f"{parameter('norm')} must be linf or l2, got {norm!r}")
    options = {}
    if steps is not None:
        if steps < 1:
            raise InvalidInputError(f"{parameter('steps')} must be >= 1, got {steps}")
        options["steps"] = steps
    if rel_stepsize is not None:
        options["rel_stepsize"] = rel_stepsize
    total = model_input.shape[0]
    first, last = current_group().shard(total)
    base = fb.attacks.LinfPGD if norm == "linf" else fb.attacks.L2PGD
    attack = _sharded_random_start(base, total=total, first=first, seed=seed)(**options)
    targets = cycling_targets(total, classifier.num_classes)[first:last]
    fmodel = foolbox_model(classifier)
    criterion = fb.criteria.TargetedMisclassification(targets)
    # ε = 0 leaves every image where it is (foolbox's steps and projection all vanish), so it costs one forward
    # pass here instead of a full PGD run; every other ε seeds its own random start, so none of them changes.
    moving = [e for e in epsilons if e > 0]
    clipped, success = [], []
    if moving:
        _, clipped, success = attack(fmodel, model_input[first:last], criterion, epsilons=moving)
    moved = iter(zip([all_gather_rows(c, total) for c in clipped], [all_gather_rows(s, total) for s in success]))
    if len(moving) < len(epsilons):
        with torch.no_grad():
            logits = classifier.logits_from_model_input(model_input)
        unmoved = (model_input.clone(), logits.argmax(dim=1) == cycling_targets(total, classifier.num_classes))
    pairs = [next(moved) if e > 0 else unmoved for e in epsilons]
    return attack, [c for c, _ in pairs], [s for _, s in pairs]


def bounded_sweep(
    classifier: ImageClassifier,
    images: torch.Tensor,
    *,
    norm: Norm = "linf",
    epsilons: list[float] | None = None,
    steps: int | None = None,
    rel_stepsize: float | None = None,
    splits: int = 10,
    seed: int = 0,
) -> BoundedSweepResult:
    """Targeted PGD on real ``images`` (N, C, H, W) in [0, 1] for every ε; IS per ε.

    ``steps`` and ``rel_stepsize`` default to foolbox's own defaults for the norm.
    """
    if norm not in DEFAULT_EPSILONS:
        raise InvalidInputError(f"{parameter('norm')} must be linf or l2, got {norm!r}")
    epsilons = sorted(set(DEFAULT_EPSILONS[norm] if epsilons is None else epsilons))
    if any(e < 0 or not math.isfinite(e) for e in epsilons):
        raise InvalidInputError(f"ε must be finite and >= 0, got {epsilons}")
    if images.shape[0] < splits:
        raise InvalidInputError(f"{images.shape[0]} images is fewer than splits = {splits}; pass more images")
    model_input = classifier.preprocess(images).float()
    started = time.perf_counter()
    attack, clipped, success = targeted_pgd(classifier, model_input, norm=norm, epsilons=epsilons, steps=steps,
                                            rel_stepsize=rel_stepsize, seed=seed)
    seconds = time.perf_counter() - started
    scores = []
    for epsilon, attacked, succeeded in zip(epsilons, clipped, success):
        with torch.no_grad():
            logits = classifier.logits_from_model_input(attacked)
        result = inception_score(logits, splits=splits, track_stderr=False)
        delta = (attacked - model_input).flatten(1)
        distance = delta.abs().max(dim=1).values if norm == "linf" else delta.norm(dim=1)
        scores.append(EpsilonScore(
            epsilon=epsilon, is_mean=result.is_mean, is_std=result.is_std,
            mutual_information_bits=result.mutual_information_bits,
            conditional_entropy_bits=result.conditional_entropy_bits,
            success_rate=float(succeeded.float().mean()), max_distance=float(distance.max()),
        ))
    with torch.no_grad():
        real_is = inception_score(classifier.logits_from_model_input(model_input), splits=splits, track_stderr=False).is_mean
    return BoundedSweepResult(
        norm=norm, n=model_input.shape[0], num_classes=classifier.num_classes, splits=splits,
        steps=attack.steps, rel_stepsize=attack.rel_stepsize, real_is=real_is, scores=scores, seconds=seconds,
        examples=torch.stack([c[:10] for c in clipped]),
    )


class EpsilonSweepDisplay(Display):
    """IS against ε, one line per norm, with the clean-data IS and K as horizontal lines."""

    figsize = (6.5, 4)

    def __init__(self, sweeps: list[BoundedSweepResult]) -> None:
        self.sweeps = sweeps

    def draw(self, ax) -> None:
        for sweep in self.sweeps:
            eps = [s.epsilon * 255 for s in sweep.scores]
            ax.plot(eps, [s.is_mean for s in sweep.scores], marker="o", label=f"{sweep.norm} PGD (foolbox)")
        first = self.sweeps[0]
        ax.axhline(first.real_is, color="#1b9e77", linestyle="--", label=f"real held-out IS = {first.real_is:.2f}")
        ax.axhline(first.num_classes, color="black", linestyle=":", label=f"K = {first.num_classes}")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        ax.set_xlabel("ε × 255 (L∞: per pixel; L2: ball radius)")
        ax.set_ylabel("Inception Score")
        ax.set_title("IS of real digits under ε-bounded targeted PGD")
        ax.legend(fontsize=8)
        self.ax_ = ax
