"""The class shift: one starting move per target class, paid for once per class instead of once per sample.

From uniform noise a single linearised step is a poor move: on ``digits`` (n = 2000) at most ~30%
of the samples reach p_t >= 0.99995 after their first newton step, whatever its length, and the
samples aimed at the hardest class (the digit 1) need 5-8 steps each. Their first steps are much
alike, though: what moves noise toward class c is mostly what moves the grey image toward c.

So before the per-sample loop, the grey image (0.5 everywhere, the mean of uniform noise) is
attacked toward every class that some sample targets, with the same newton steps, until its margin
reaches the goal; its change ``shift_c = x*_c - grey`` (C, H, W) is added to every sample aimed at
c, clipped to the box, and the per-sample loop goes on from there. On ``digits`` the shifted noise
is already at target for ~16% of the samples and the rest need ~1.1 steps on average.

The shifts depend only on the classifier, the classes and the goal, never on the other samples:
every rank of a torchrun job computes the same ones on the same batch (bitwise equal), so the
shards still move exactly as in one process. They cost ~10 forward+backward passes per class;
below :data:`MIN_SAMPLES_PER_CLASS` samples per targeted class they would not pay for themselves
and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from isgame.attacks.step_rules import newton_step, target_margin
from isgame.scoring.classifiers.base import ImageClassifier

#: Fewer samples per targeted class than this and the shifts cost more passes than they save.
MIN_SAMPLES_PER_CLASS = 10
#: The most newton steps of the grey image; the digits classes need 8.
SHIFT_STEPS = 30
GREY = 0.5


@dataclass(frozen=True)
class ClassShifts:
    """``shifts[i]`` (C, H, W) moves a sample aimed at ``classes[i]``; the passes they cost (not per sample)."""

    classes: torch.Tensor
    shifts: torch.Tensor
    gradient_evaluations: int
    forward_evaluations: int

    def apply(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W) in [0, 1] plus the shift of each row's target (N,), clipped to [0, 1]."""
        return (x + self.shifts[torch.searchsorted(self.classes, targets)]).clamp(0, 1)


def worth_shifting(n: int, targets: torch.Tensor) -> bool:
    """Whether ``n`` samples with these ``targets`` (all n of them) have >= MIN_SAMPLES_PER_CLASS per class."""
    return n >= MIN_SAMPLES_PER_CLASS * int(torch.unique(targets).numel())


def class_shifts(classifier: ImageClassifier, classes: torch.Tensor, *, sample_shape: tuple[int, ...], goal: float,
                 overshoot: float, chunk_rows: int) -> ClassShifts:
    """Attack the grey image (``sample_shape``, model input) toward each of ``classes`` (sorted, unique).

    Newton steps (as the attack's default) until the margin log p_c - log(1 - p_c) >= ``goal`` or
    SHIFT_STEPS; grey rows run in chunks of ``chunk_rows``.
    """
    grey = torch.full((classes.numel(), *sample_shape), GREY)
    x = grey.clone()
    active = torch.ones(classes.numel(), dtype=torch.bool)
    gradients = forwards = 0
    for step in range(SHIFT_STEPS + 1):
        for index in torch.nonzero(active).squeeze(1).split(chunk_rows):
            variable = x[index].clone().requires_grad_(True)
            margin = target_margin(classifier.logits_from_model_input(variable), classes[index])
            forwards += index.numel()
            keep = margin.detach() < goal
            active[index[~keep]] = False
            if step == SHIFT_STEPS or not keep.any():
                continue
            (gradient,) = torch.autograd.grad(margin[keep].sum(), variable)
            gradients += int(keep.sum())
            moving = index[keep]
            x[moving] = newton_step(x[moving], gradient[keep], margin.detach()[keep], goal=goal, overshoot=overshoot)
        if not active.any():
            break
    return ClassShifts(classes=classes, shifts=x - grey, gradient_evaluations=gradients, forward_evaluations=forwards)
