"""From a source of samples to scores: classify batch by batch, stream into the accumulator.

Memory is one batch of images plus the accumulator's O(K * splits + K^2) statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.accumulator import InceptionScoreAccumulator, uses_second_pass
from isgame.scoring.metrics.score_result import InceptionScoreResult
from isgame.scoring.metrics.validation import PredictionKind, check_splits
from isgame.scoring.runtime.distributed import all_gather_rows, current_group
from isgame.scoring.runtime.prefetch import prefetched
from isgame.scoring.runtime.progress import progress_bar
from isgame.scoring.sources.samples import ImageSource, PredictionSource

#: The default batch of 8 x 8 digits; other inputs get ``ImageClassifier.default_batch_size`` (16 at 299 px).
DEFAULT_BATCH_SIZE = 256
#: Rows of logits per batch: the fastest size at K = 1000 in benchmarks/accumulator_throughput.py.
PREDICTION_BATCH_SIZE = 2048


@dataclass(frozen=True)
class ScoreReport:
    """What was scored, by what, and the :class:`InceptionScoreResult`."""

    source: str
    input_kind: str
    classifier: dict[str, object] | None
    result: InceptionScoreResult
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "input": self.input_kind, "classifier": self.classifier, **self.result.to_dict(), **self.extra}


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise InvalidInputError(f"{parameter('batch_size')} must be >= 1, got {batch_size}")


#: in-memory sets of at most this many input values run through the classifier in one pass (the digits' sets),
#: larger ones in batches: small sets then get one summation order, and large ones bounded memory
ONE_PASS_VALUES = 1 << 18


def logits_in_one_pass_if_small(classifier: ImageClassifier, images: torch.Tensor, *,
                                model_input: bool = False) -> torch.Tensor:
    """Logits (N, K) of ``images`` (N, C, H, W) in [0, 1], or of model inputs with ``model_input``: one pass when
    the set holds at most :data:`ONE_PASS_VALUES` values, else in batches (:func:`classify`)."""
    with torch.no_grad():
        if images.numel() <= ONE_PASS_VALUES:
            return classifier.logits_from_model_input(images) if model_input else classifier(images)
        if not model_input:
            return classify(classifier, images)
        return torch.cat([classifier.logits_from_model_input(batch)
                          for batch in images.split(classifier.default_batch_size)])


def classify(classifier: ImageClassifier, images: torch.Tensor, *, batch_size: int | None = None) -> torch.Tensor:
    """Logits (N, K) of in-memory images (N, C, H, W) in [0, 1], without gradients.

    Under torchrun each rank classifies its shard and every rank gets all N rows.
    """
    return classify_with_features(classifier, images, batch_size=batch_size)[0]


def classify_with_features(classifier: ImageClassifier, images: torch.Tensor, *,
                           batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, K) and penultimate features (N, D) of in-memory images (N, C, H, W) in [0, 1], one forward pass.

    Sharded like :func:`classify`; row i of both outputs belongs to image i whatever the process count.
    ``batch_size`` defaults to the classifier's :attr:`~ImageClassifier.default_batch_size`.
    """
    batch_size = batch_size or classifier.default_batch_size
    _check_batch_size(batch_size)
    group = current_group()
    n = images.shape[0]
    start, stop = group.shard(n)
    with torch.no_grad():
        outputs = [classifier.logits_and_features(images[first : min(first + batch_size, stop)])
                   for first in range(start, stop, batch_size)]
    if not outputs:  # more ranks than images: this rank's shard is empty
        outputs = [(torch.empty(0, classifier.num_classes, dtype=classifier.dtype),
                    torch.empty(0, classifier.feature_dim, dtype=classifier.dtype))]
    logits, features = (torch.cat(parts) for parts in zip(*outputs))
    return all_gather_rows(logits, n), all_gather_rows(features, n)


def model_inputs(classifier: ImageClassifier, source: ImageSource, batch_size: int, *, start: int = 0,
                 stop: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, model_input)`` per batch of rows start..stop-1: images (B, C, H, W) in [0, 1] and the classifier's
    preprocessed input, read, decoded and resized in a background thread while the caller runs the network."""

    def conform(image: torch.Tensor) -> torch.Tensor:
        return classifier.preprocess(image).float()

    def prepared() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        with torch.no_grad():
            for batch in source.batches(batch_size, conform=conform, start=start, stop=stop):
                yield batch, classifier.preprocess(batch)

    return prefetched(prepared())


def score_images(
    source: ImageSource,
    classifier: ImageClassifier,
    *,
    splits: int = 10,
    shuffle: bool = False,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = True,
    on_batch: Callable[[torch.Tensor], None] | None = None,
) -> ScoreReport:
    """Classify every image of ``source`` and score the logits (IS in [1, K], I in nats and bits);
    ``on_batch`` also sees each batch's (B, K) logits, in row order (e.g. to count runs of labels).

    ``batch_size`` defaults to the classifier's :attr:`~ImageClassifier.default_batch_size` (256 digits, 16 at 299 px).
    """
    batch_size = batch_size or classifier.default_batch_size
    _check_batch_size(batch_size)
    check_splits(source.num_samples, splits)
    accumulator = InceptionScoreAccumulator(
        classifier.num_classes, splits=splits, total=source.num_samples, shuffle=shuffle, seed=seed, kind="logits"
    )

    group = current_group()
    start, stop = group.shard(source.num_samples)
    accumulator.seek(start)
    batches = math.ceil((stop - start) / batch_size)
    with progress_bar(f"scoring {source.name}", total=stop - start, batches=batches, enabled=progress) as advance:
        with torch.no_grad():
            for _, model_input in model_inputs(classifier, source, batch_size, start=start, stop=stop):
                logits = classifier.logits_from_model_input(model_input)
                accumulator.update(logits)
                if on_batch is not None:
                    on_batch(logits)
                advance(model_input.shape[0])
    accumulator.all_reduce()
    return ScoreReport(source=source.name, input_kind="images", classifier=classifier.describe(), result=accumulator.compute(),
                       extra={"processes": group.world_size} if group.world_size > 1 else {})


def score_predictions(
    source: PredictionSource,
    *,
    kind: PredictionKind,
    splits: int = 10,
    shuffle: bool = False,
    seed: int = 0,
    batch_size: int = PREDICTION_BATCH_SIZE,
    progress: bool = True,
    track_stderr: bool = True,
    on_batch: Callable[[object], None] | None = None,
) -> ScoreReport:
    """Score (N, K) logits or probabilities streamed from ``source``; no classifier runs. ``on_batch`` also sees
    each (B, K) batch, in row order, once.

    For K > 32 the standard error reads the rows a second time (:meth:`InceptionScoreAccumulator.second_pass`):
    O(K) work per row instead of the one-pass (K, K) statistics' O(K^2), the same value to float64 rounding.
    """
    _check_batch_size(batch_size)
    check_splits(source.num_samples, splits)
    second_pass = uses_second_pass(source.num_classes, track_stderr)
    accumulator = InceptionScoreAccumulator(
        source.num_classes,
        splits=splits,
        total=source.num_samples,
        shuffle=shuffle,
        seed=seed,
        kind=kind,
        track_stderr=track_stderr and not second_pass,
    )
    group = current_group()
    start, stop = group.shard(source.num_samples)
    accumulator.seek(start)
    passes = 2 if second_pass else 1
    batches = passes * math.ceil((stop - start) / batch_size)
    with progress_bar(f"scoring {source.name}", total=passes * (stop - start), batches=batches, enabled=progress) as advance:
        for batch in source.batches(batch_size, start=start, stop=stop):
            accumulator.update(batch)
            if on_batch is not None:
                on_batch(batch)
            advance(batch.shape[0])
        accumulator.all_reduce()
        deviations = None
        if second_pass:
            deviations = accumulator.second_pass()
            for batch in source.batches(batch_size, start=start, stop=stop):
                deviations.update(batch)
                advance(batch.shape[0])
            deviations.all_reduce()
    return ScoreReport(source=source.name, input_kind=kind, classifier=None, result=accumulator.compute(deviations),
                       extra={"processes": group.world_size} if group.world_size > 1 else {})
