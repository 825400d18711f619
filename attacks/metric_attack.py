"""An ε-bounded white-box attack on one metric: PGD on its differentiable loss inside an L∞ ball, along an ε grid.

Degraded images x0 (n, C, H, W) in [0, 1] (honest KDE samples, noise) may each move by at most ε per pixel (and
stay in the [0, 1] box). The attack lowers the metric's loss (:mod:`isgame.attacks.metric_losses`: the distance
itself, or minus a score), so the *set* moves toward real data in the metric's eyes; the loss couples the rows
(a mean, a covariance, a kernel sum), so every step takes the gradient of the whole set's loss.

* **Sign-gradient steps, projected.** x <- clip(x - a_k sign(grad), x0 - ε, x0 + ε) ∩ [0, 1]; the step a_k falls
  linearly from ε / 4 (:data:`STEP_FRACTION`) at the first step to ε / (4 steps) at the last, so the chain
  settles instead of oscillating at a fixed step's scale.
* **Warm-started along an increasing grid.** ε = 0 is the clean set. Each ε starts from the best set of the
  previous ε (inside the new ball: the balls are nested), ``steps`` (:data:`METRIC_ATTACK_STEPS`) steps per ε.
* **The best set is kept.** Every iterate's loss comes with its gradient at no extra cost; the set kept at ε is
  the lowest-loss one seen, the start included. The start is feasible at ε, so the attack's loss never rises
  as ε grows.

:meth:`MetricAttack.at` runs one ε from a given start (a bisection midpoint warm-started from a lower ε's set).
Literature: Madry et al., ICLR 2018 (PGD); Alfarra et al., ECCV 2022 (perturbing images to move IS and FID).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch

from isgame.attacks.ball_ascent import SINGLE_THREAD_VALUES
from isgame.attacks.metric_losses import MetricLoss
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.runtime.threads import single_threaded

#: gradient steps per ε (each ε starts warm from the previous ε's best set)
METRIC_ATTACK_STEPS = 20
#: the first step moves ε / 4 per pixel; the steps then fall linearly to ε / (4 steps)
STEP_FRACTION = 0.25


@dataclass(frozen=True)
class AttackedSet:
    """The best set found at one ε: ``images`` (n, C, H, W) float32 in [0, 1], within ε (L∞) of the clean images,
    and its ``loss`` (the metric's loss: lower is closer to real data)."""

    epsilon: float
    images: torch.Tensor = field(repr=False)
    loss: float


@dataclass(frozen=True)
class MetricAttackResult:
    """The attack along the grid: one :class:`AttackedSet` per ε (increasing, 0 first: the clean set), the losses
    non-increasing in ε."""

    metric: str
    sets: list[AttackedSet] = field(repr=False)
    steps: int

    @property
    def epsilons(self) -> list[float]:
        return [s.epsilon for s in self.sets]

    @property
    def losses(self) -> list[float]:
        return [s.loss for s in self.sets]

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "epsilons": self.epsilons, "losses": self.losses, "steps": self.steps,
                "norm": "linf", "step_rule": f"sign gradient, ε·{STEP_FRACTION} falling linearly to "
                                             f"ε·{STEP_FRACTION}/steps; best iterate kept"}


def check_grid(epsilons: list[float]) -> list[float]:
    """Sorted distinct finite ε >= 0 with 0 first (the clean set); refused in one line otherwise."""
    if not epsilons or any(isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or e < 0
                           for e in epsilons):
        raise InvalidInputError(f"{parameter('epsilons')}: expected finite ε >= 0 (L∞, in [0, 1] pixel units), got "
                                f"{list(epsilons)}")
    return sorted({0.0, *map(float, epsilons)})


@dataclass(frozen=True)
class MetricAttack:
    """PGD on one metric's loss (see the module). ``steps`` per ε, >= 1."""

    steps: int = METRIC_ATTACK_STEPS

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise InvalidInputError(f"{parameter('steps')} must be an integer >= 1 (PGD steps per ε), got {self.steps!r}")

    def __repr__(self) -> str:
        return f"MetricAttack(steps={self.steps})"

    def __call__(self, loss: MetricLoss, images: torch.Tensor, *, epsilons: list[float]) -> MetricAttackResult:
        """Attack ``images`` (n, C, H, W) in [0, 1] on ``loss`` at every ε of ``epsilons`` (L∞, pixel units)."""
        clean = _checked_images(images)
        grid = check_grid(epsilons)
        with _threads_for(clean):
            current = AttackedSet(0.0, clean, self.evaluate(loss, clean))
            sets = [current]
            for epsilon in grid[1:]:
                current = self.at(loss, clean, current, epsilon)
                sets.append(current)
        return MetricAttackResult(metric=loss.metric, sets=sets, steps=self.steps)

    @staticmethod
    def evaluate(loss: MetricLoss, images: torch.Tensor) -> float:
        """The loss of a set, without gradients."""
        with torch.no_grad():
            return float(loss.loss(images))

    def at(self, loss: MetricLoss, clean: torch.Tensor, start: AttackedSet, epsilon: float) -> AttackedSet:
        """The best set within ``epsilon`` of ``clean`` after :attr:`steps` steps from ``start`` (a set within a
        smaller ε, clipped into this ball), ``start`` itself if no iterate beats it."""
        with _threads_for(clean):
            return self._descend(loss, clean, start, epsilon)

    def _descend(self, loss: MetricLoss, clean: torch.Tensor, start: AttackedSet, epsilon: float) -> AttackedSet:
        x = torch.minimum(torch.maximum(start.images, clean - epsilon), clean + epsilon).clamp(0.0, 1.0)
        best_images, best_loss = start.images, start.loss
        for k in range(self.steps + 1):
            x = x.detach().requires_grad_(k < self.steps)
            with torch.set_grad_enabled(k < self.steps):
                value = loss.loss(x)
            current = float(value.detach())
            if math.isfinite(current) and current < best_loss:
                best_images, best_loss = x.detach().clone(), current
            if k == self.steps:
                break
            (gradient,) = torch.autograd.grad(value, x)
            step = epsilon * STEP_FRACTION * (1.0 - k * (1.0 - 1.0 / self.steps) / max(self.steps - 1, 1))
            x = x.detach() - step * gradient.sign()
            x = torch.minimum(torch.maximum(x, clean - epsilon), clean + epsilon).clamp(0.0, 1.0)
        return AttackedSet(epsilon, best_images, best_loss)


def random_sign_baseline(loss: MetricLoss, images: torch.Tensor, epsilon: float, *, seed: int = 0) -> AttackedSet:
    """The set moved by ε times a seeded uniform random sign per pixel (clipped to [0, 1]): the attack's floor."""
    clean = _checked_images(images)
    generator = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, clean.shape, generator=generator).to(clean.dtype) * 2 - 1
    moved = (clean + epsilon * signs).clamp(0.0, 1.0)
    return AttackedSet(epsilon, moved, MetricAttack.evaluate(loss, moved))


def _threads_for(images: torch.Tensor):
    """One thread for sets of at most :data:`~isgame.attacks.ball_ascent.SINGLE_THREAD_VALUES` values: the losses'
    (D, D) eigendecompositions took 0.87 s on two threads against 1 ms on one (a 128 x 128 matrix, 2 cores, another
    process busy), their threads waiting for each other at every step."""
    return single_threaded() if images.numel() <= SINGLE_THREAD_VALUES else contextlib.nullcontext()


def _checked_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] < 2:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise InvalidInputError(f"{parameter('images')}: expected a tensor of shape (n, C, H, W) with n >= 2, got "
                                f"{shape}")
    if images.numel() and (float(images.min()) < 0 or float(images.max()) > 1):
        raise InvalidInputError(f"{parameter('images')}: expected values in [0, 1], got [{float(images.min()):.3g}, "
                                f"{float(images.max()):.3g}]; divide 0-255 images by 255")
    return images.detach().float()
