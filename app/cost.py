"""Cost estimates printed before a long run: image passes through the classifier x measured seconds per image.

An estimate, not a promise: it counts the classifier's passes (a forward and backward pass counts as three
forward passes) and times two forward passes of the domain's shape on this machine; work outside the network
(k-NN, k-means, KDE, foolbox's bookkeeping) is not in it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from isgame.scoring.classifiers.base import ImageClassifier

#: an estimate is announced when the network alone would take longer than this
ANNOUNCE_SECONDS = 20.0
TIMING_BATCH, MAX_TIMING_BATCH, MIN_TIMED_SECONDS, MAX_TIMED_SECONDS = 2, 512, 0.05, 0.5


@dataclass(frozen=True)
class CostEstimate:
    """``passes`` image passes at ``seconds_per_image`` (measured) on ``device``."""

    passes: int
    seconds_per_image: float
    device: str

    @property
    def seconds(self) -> float:
        return self.passes * self.seconds_per_image

    @property
    def worth_announcing(self) -> bool:
        return self.seconds > ANNOUNCE_SECONDS

    def describe(self, what: str, shrink: str) -> str:
        """One line: what runs, the arithmetic, and what shrinks it."""
        return (f"estimate for {what}: about {self.passes:,} image passes x {1000 * self.seconds_per_image:.2g} ms "
                f"(measured on {self.device}) = {_duration(self.seconds)} of network time; {shrink} shrink it")

    def to_dict(self) -> dict[str, object]:
        return {"passes": self.passes, "seconds_per_image": self.seconds_per_image, "device": self.device,
                "seconds": self.seconds}


def seconds_per_image(classifier: ImageClassifier, image_shape: tuple[int, ...]) -> float:
    """Seconds one forward pass takes per image of ``image_shape`` (C, H, W) on this machine.

    Batches of 2 images, growing 8-fold (to 512) while a pass takes under 50 ms, or while it takes under 0.5 s and
    the time per image still fell by a quarter or more: the per-call overhead of a fast network must not pass
    for its cost per image (the work runs in batches of hundreds). Of two timed passes, the second (the first
    pays one-off costs: allocations, kernel selection).
    """
    generator = torch.Generator().manual_seed(0)
    batch, previous = TIMING_BATCH, float("inf")
    while True:
        images = torch.rand((batch, *image_shape), generator=generator)
        with torch.no_grad():
            for _ in range(2):
                started = time.perf_counter()
                classifier(images)
                elapsed = time.perf_counter() - started
        per_image = elapsed / batch
        still_falling = per_image < 0.75 * previous and elapsed < MAX_TIMED_SECONDS
        if batch >= MAX_TIMING_BATCH or (elapsed >= MIN_TIMED_SECONDS and not still_falling):
            return per_image
        batch, previous = batch * 8, per_image


def estimate_cost(classifier: ImageClassifier, image_shape: tuple[int, ...], passes: int) -> CostEstimate:
    return CostEstimate(passes=int(passes), seconds_per_image=seconds_per_image(classifier, image_shape),
                        device=str(classifier.device))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
