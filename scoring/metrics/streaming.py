"""The one streaming interface every accumulating metric follows (after torchmetrics' ``Metric``).

A streaming metric holds float64 sufficient statistics, never the rows themselves. Each statistic is
declared once with :meth:`StreamingMetric.add_state` (as torchmetrics' ``add_state``), and the base class
derives everything that treats them alike:

* ``update(batch)`` adds a batch (the subclass's :meth:`~StreamingMetric._update`);
* ``compute()`` returns the metric of every row added since the last ``reset()``;
* ``reset()`` sets every state back to its default;
* ``merge(other)`` adds another accumulator's states (shards computed apart);
* ``all_reduce()`` sums the states over every torchrun process (a no-op in one process), so each
  process can feed its own shard and all of them compute the same value. A second ``all_reduce()``
  before more rows arrive changes nothing (it does not double-count), and an ``update`` after one
  first restores this process's own sums, so a later ``all_reduce()`` counts every row once;
* ``higher_is_better`` says which way a better generator moves the headline value, on the metrics that
  have one (not on statistics such as :class:`~isgame.scoring.metrics.fid.FeatureStatisticsAccumulator`).

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
from collections.abc import Callable

import torch

from isgame.scoring.errors import InvalidInputError


class StreamingMetric(ABC):
    """Base class of the accumulators: declared states, ``update`` / ``compute`` / ``reset`` / ``merge`` /
    ``all_reduce``."""

    #: Whether a larger headline value means a better generator (IS: True, FID: False); absent on statistics.
    higher_is_better: bool | None = None

    def add_state(self, name: str, default: Callable[[], torch.Tensor]) -> None:
        """Declare the state ``name``: a tensor made by ``default()`` now and at every :meth:`reset`, merged and
        all-reduced by summing. Call it in ``__init__``, before :meth:`reset`."""
        if not hasattr(self, "_state_defaults"):
            self._state_defaults: dict[str, Callable[[], torch.Tensor]] = {}
        self._state_defaults[name] = default
        setattr(self, name, default())

    @property
    def state_names(self) -> tuple[str, ...]:
        """The declared states, in declaration order."""
        return tuple(getattr(self, "_state_defaults", {}))

    def states(self) -> list[torch.Tensor]:
        """The declared states' tensors, in declaration order; summing them across processes merges shards."""
        return [getattr(self, name) for name in self.state_names]

    def reset(self) -> None:
        """Forget every row added so far: each state back to its default."""
        for name, default in self._state_defaults.items():
            setattr(self, name, default())
        self._local: list[torch.Tensor] | None = None
        self._after_states_change()

    def update(self, values: object, **options) -> None:
        """Add one batch (after an :meth:`all_reduce`, to this process's own sums)."""
        self._restore_local()
        self._update(values, **options)

    @abstractmethod
    def _update(self, values: object, **options) -> None:
        """Add one batch to the states."""

    @abstractmethod
    def compute(self) -> object:
        """The metric of every row added since the last reset."""

    def merge(self, other: "StreamingMetric") -> None:
        """Add ``other``'s states (an accumulator of the same kind and shape that saw other rows) to these."""
        if type(other) is not type(self) or other.state_names != self.state_names:
            raise InvalidInputError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}; merge "
                                    "accumulators of one kind")
        self._restore_local()
        for mine, theirs in zip(self.states(), other.states()):
            if mine.shape != theirs.shape:
                raise InvalidInputError(f"cannot merge states of shapes {tuple(theirs.shape)} and {tuple(mine.shape)};"
                                        " merge accumulators built with the same settings")
            mine += theirs
        self._after_states_change()

    def all_reduce(self) -> None:
        """Sum the states over every torchrun process, in place; a no-op in one process and on a second call."""
        from isgame.scoring.runtime.distributed import all_reduce_sum_, current_group

        if getattr(self, "_local", None) is not None or current_group().world_size == 1:
            return
        self._local = [state.clone() for state in self.states()]
        for state in self.states():
            all_reduce_sum_(state)
        self._after_states_change()

    def _restore_local(self) -> None:
        """After an :meth:`all_reduce`, put this process's own sums back, so that new rows add to them."""
        local = getattr(self, "_local", None)
        if local is None:
            return
        for state, mine in zip(self.states(), local):
            state.copy_(mine)
        self._local = None
        self._after_states_change()

    def _after_states_change(self) -> None:
        """Recompute whatever the subclass derives from its states (row counts); nothing by default."""
