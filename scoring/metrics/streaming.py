"""The one streaming interface every accumulating metric follows (after torchmetrics' ``Metric``).

A streaming metric holds float64 sufficient statistics, never the rows themselves:

* ``update(batch)`` adds a batch;
* ``compute()`` returns the metric of every row added since the last ``reset()``;
* ``reset()`` forgets them;
* ``all_reduce()`` sums the statistics over every torchrun process (a no-op in one process), so
  each process can feed its own shard and all of them compute the same value;
* ``higher_is_better`` says which way a better generator moves the headline value.

Inside a training loop::

    metric = isgame.InceptionScoreAccumulator(classifier.num_classes)
    for images in generated_batches:
        with torch.no_grad():
            metric.update(classifier(images))
    metric.all_reduce()          # under torchrun; nothing happens in a single process
    print(metric.compute().is_mean)
    metric.reset()               # before the next evaluation
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class StreamingMetric(ABC):
    """Base class of the accumulators: ``update`` / ``compute`` / ``reset`` / ``all_reduce``."""

    #: Whether a larger headline value means a better generator (IS: True, FID: False).
    higher_is_better: bool

    @abstractmethod
    def update(self, values: object) -> None:
        """Add one batch."""

    @abstractmethod
    def compute(self) -> object:
        """The metric of every row added since the last reset."""

    @abstractmethod
    def reset(self) -> None:
        """Forget every row added so far."""

    @abstractmethod
    def all_reduce(self) -> None:
        """Sum the statistics over every torchrun process, in place; a no-op in one process."""
