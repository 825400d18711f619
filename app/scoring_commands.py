"""Library entry points behind the CLI commands: resolve names to objects, then score.

They return data and raise :class:`~scoring.errors.IsgameError`; they never exit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from isgame.scoring.classifiers import load_classifier
from isgame.scoring.dialects import DialectTable
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.pipeline import DEFAULT_BATCH_SIZE, PREDICTION_BATCH_SIZE, ScoreReport, score_images, score_predictions
from isgame.scoring.samples import open_images, open_predictions


def score_source(
    source: str,
    *,
    classifier_name: str = "digits",
    weights: Path | None = None,
    splits: int = 10,
    shuffle: bool = False,
    seed: int = 0,
    n: int | None = None,
    batch_size: int | None = None,
    input_kind: str = "images",
    progress: bool = True,
    value_range: str = "auto",
) -> ScoreReport:
    """Score SOURCE as images (through a classifier) or as (N, K) logits / probabilities.

    The report's ``to_dict()["notes"]`` lists what the loader decided (files skipped, range detected, ...).
    """
    if splits < 1:
        raise InvalidInputError(f"{parameter('splits')} must be >= 1, got {splits}")
    if n is not None and n < 1:
        raise InvalidInputError(f"{parameter('n')} must be >= 1, got {n}")
    if batch_size is not None and batch_size < 1:
        raise InvalidInputError(f"{parameter('batch_size')} must be >= 1, got {batch_size}")
    if input_kind in ("logits", "probs"):
        predictions = open_predictions(source, n=n)
        report = score_predictions(
            predictions, kind=input_kind, splits=splits, shuffle=shuffle, seed=seed,
            batch_size=batch_size or PREDICTION_BATCH_SIZE, progress=progress,
        )
        return _with_notes(report, predictions.notes)
    if input_kind != "images":
        raise InvalidInputError(f"{parameter('input_kind')} must be images, logits or probs, got {input_kind!r}")
    classifier = load_classifier(classifier_name, weights=weights)
    images = open_images(source, n=n, seed=seed, image_size=classifier.input_size, value_range=value_range)
    report = score_images(
        images, classifier, splits=splits, shuffle=shuffle, seed=seed,
        batch_size=batch_size or DEFAULT_BATCH_SIZE, progress=progress,
    )
    return _with_notes(report, images.notes)


def _with_notes(report: ScoreReport, notes: tuple[str, ...]) -> ScoreReport:
    return replace(report, extra={**report.extra, "notes": list(notes)})


def collect_logits(source: str, *, classifier_name: str = "digits", weights: Path | None = None, n: int | None = None,
                   seed: int = 0, batch_size: int | None = None, input_kind: str = "images",
                   truncate_to_uint8: bool = False, value_range: str = "auto"):
    """All (N, K) logits of SOURCE in memory (the reference implementations hold them all too).

    ``truncate_to_uint8`` reproduces torchmetrics' ``(imgs * 255).byte()``: floats are truncated, not rounded.
    """
    opened = _open_for_logits(source, classifier_name=classifier_name, weights=weights, n=n, seed=seed,
                              input_kind=input_kind, value_range=value_range)
    return _logits_of(opened, batch_size=batch_size, truncate_to_uint8=truncate_to_uint8)


@dataclass(frozen=True)
class NotedDialectTable(DialectTable):
    """A :class:`~scoring.dialects.DialectTable` with the notes of the source it was computed from."""

    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "notes": list(self.notes)}


@dataclass(frozen=True)
class _OpenedForLogits:
    """Logits already read (``--input logits``), or images and the classifier that will see them."""

    notes: tuple[str, ...]
    logits: object = None
    images: object = None
    classifier: object = None


def _open_for_logits(source: str, *, classifier_name: str, weights: Path | None, n: int | None, seed: int,
                     input_kind: str, value_range: str) -> _OpenedForLogits:
    import numpy as np
    import torch

    if input_kind == "logits":
        predictions = open_predictions(source, n=n)
        return _OpenedForLogits(predictions.notes, logits=torch.from_numpy(
            np.array(predictions.array[0 : predictions.num_samples], dtype=np.float64)))
    if input_kind != "images":
        raise InvalidInputError(f"{parameter('dialect')} needs logits: use {parameter('input_kind', 'images')} (a classifier runs) or {parameter('input_kind', 'logits')}")
    classifier = load_classifier(classifier_name, weights=weights)
    images = open_images(source, n=n, seed=seed, image_size=classifier.input_size, value_range=value_range)
    return _OpenedForLogits(images.notes, images=images, classifier=classifier)


def _logits_of(opened: _OpenedForLogits, *, batch_size: int | None, truncate_to_uint8: bool = False):
    import torch

    from isgame.scoring.distributed import all_gather_rows, current_group

    if opened.logits is not None:
        return opened.logits
    classifier, images = opened.classifier, opened.images

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        return torch.floor(batch * 255) / 255 if truncate_to_uint8 else batch

    # Under torchrun each rank classifies its shard of the rows; every rank gets all N in row order.
    start, stop = current_group().shard(images.num_samples)
    with torch.no_grad():
        logits = [classifier(prepare(batch)) for batch in images.batches(
            batch_size or DEFAULT_BATCH_SIZE, conform=lambda image: classifier.preprocess(image).float(),
            start=start, stop=stop)]
    local = torch.cat(logits) if logits else torch.empty(0, classifier.num_classes, dtype=classifier.dtype)
    return all_gather_rows(local, images.num_samples)


def score_in_dialects(source: str, dialect: str, *, splits: int | None = None, seed: int | None = None,
                      noise_seed: int = 0, classifier_name: str = "digits", weights: Path | None = None,
                      n: int | None = None, batch_size: int | None = None, input_kind: str = "images",
                      value_range: str = "auto"):
    """One dialect's score, or with ``dialect="all"`` a :class:`~scoring.dialects.DialectTable`; the table's
    ``notes`` (also under ``to_dict()["notes"]``) list what the loader decided."""
    from isgame.scoring.dialects import DIALECTS, dialect_table, score_dialect

    if dialect != "all" and dialect not in DIALECTS:
        raise InvalidInputError(f"unknown dialect {dialect!r}; choose one of {', '.join(DIALECTS)} or all")
    opened = _open_for_logits(source, classifier_name=classifier_name, weights=weights, n=n, seed=noise_seed,
                              input_kind=input_kind, value_range=value_range)
    logits = _logits_of(opened, batch_size=batch_size)
    truncated = None
    if dialect in ("all", "torchmetrics") and opened.images is not None:
        # torchmetrics turns float images into uint8 by truncation before its network sees them.
        truncated = _logits_of(opened, batch_size=batch_size, truncate_to_uint8=True)
    if dialect == "all":
        table = dialect_table(logits, splits=splits)
        scores = table.scores
        if truncated is not None:
            scores = [score_dialect(truncated, "torchmetrics", splits=splits) if s.dialect == "torchmetrics" else s
                      for s in scores]
        return NotedDialectTable(scores, notes=opened.notes)
    return NotedDialectTable([score_dialect(truncated if truncated is not None else logits, dialect, splits=splits, seed=seed)],
                             notes=opened.notes)


def fid_between(real: str, fake: str, *, classifier_name: str = "digits", weights: Path | None = None,
                n: int | None = None, seed: int = 0, batch_size: int | None = None, progress: bool = True,
                value_range: str = "auto") -> dict:
    """FID between two image sources on the classifier's features, streamed (O(D^2) memory) and sharded
    across torchrun processes; returns a JSON-ready dict (``notes``: what the loader decided for either source)."""
    import torch

    from isgame.scoring.distributed import current_group
    from isgame.scoring.fid import FeatureStatisticsAccumulator, statistics_to_fid
    from isgame.scoring.progress import progress_bar

    classifier = load_classifier(classifier_name, weights=weights)
    group = current_group()
    statistics = {}
    sources = {role: open_images(spec, n=n, seed=seed, image_size=classifier.input_size, value_range=value_range)
               for role, spec in (("real", real), ("fake", fake))}
    for role, spec in (("real", real), ("fake", fake)):
        source = sources[role]
        start, stop = group.shard(source.num_samples)
        accumulator = FeatureStatisticsAccumulator(classifier.feature_dim)
        size = batch_size or DEFAULT_BATCH_SIZE
        with progress_bar(f"features of {spec}", total=stop - start, batches=(stop - start) // size + 1,
                          enabled=progress) as advance, torch.no_grad():
            for batch in source.batches(size, conform=lambda image: classifier.preprocess(image).float(),
                                        start=start, stop=stop):
                accumulator.update(classifier.features(batch))
                advance(batch.shape[0])
        accumulator.all_reduce()
        statistics[role] = accumulator.compute()
    return {"real": real, "fake": fake, "classifier": classifier.describe(), "feature_dim": classifier.feature_dim,
            "n_real": statistics["real"].n, "n_fake": statistics["fake"].n,
            "fid": statistics_to_fid(statistics["real"], statistics["fake"]),
            "note": "FID is biased upward at small N; compare values only at equal sample counts",
            "notes": [*sources["real"].notes, *sources["fake"].notes],
            **({"processes": group.world_size} if group.world_size > 1 else {})}
