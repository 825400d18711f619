"""The :class:`ImageSource`: N images read batch by batch, and notes on how they were read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.sources.fingerprint import InputFingerprint


@dataclass
class ImageSource:
    """N images that can be read batch by batch.

    ``read(start, stop)`` returns a list of (C, H, W) float32 tensors or one stacked
    (B, C, H, W) tensor. ``conform`` (e.g. a classifier's single-image preprocessing) is
    applied per image when a batch mixes sizes or channel counts. ``notes`` say, one line
    each, what the loader decided on the caller's behalf: files skipped, a value range
    detected, values clipped, a count capped. ``fingerprint`` is hashed by ``read`` as rows stream
    (:mod:`isgame.scoring.sources.fingerprint`); ``input_range`` says how stored values were mapped to [0, 1]
    (e.g. ``"uint8 0-255"``, ``"float 0-1"``), for provenance.
    """

    name: str
    num_samples: int
    read: Callable[[int, int], torch.Tensor | list[torch.Tensor]]
    notes: tuple[str, ...] = ()
    fingerprint: InputFingerprint | None = None
    input_range: str | None = None

    def batches(
        self, batch_size: int, *, conform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        start: int = 0, stop: int | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield (B, C, H, W) float32 batches in [0, 1] of images start..stop-1, in order."""
        if batch_size < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {batch_size}")
        stop = self.num_samples if stop is None else stop
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            chunk = self.read(first, last)
            if isinstance(chunk, list):
                chunk = _stack_images(chunk, conform, where=f"{self.name} (images {first}..{last - 1})")
            yield chunk

    def load_all(self, *, conform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """All images as one (N, C, H, W) tensor; for small sources only."""
        return torch.cat(list(self.batches(max(self.num_samples, 1), conform=conform)))


def _stack_images(images: list[torch.Tensor], conform, *, where: str) -> torch.Tensor:
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) == 1:
        return torch.stack(images)
    if conform is None:
        raise InvalidInputError(
            f"{where}: images differ in size or channels ({', '.join(str(s) for s in sorted(shapes)[:3])}); "
            "score them with a classifier, which resizes them, or resize them first"
        )
    return torch.cat([conform(image.unsqueeze(0)) for image in images])
