"""Library entry points behind the CLI commands: resolve names to objects, then score.

They return data and raise :class:`~scoring.errors.IsgameError`; they never exit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from isgame import defaults
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.domains import Domain
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.dialects import DialectReport
from isgame.scoring.metrics.sample_order import RunsCounter, sample_order
from isgame.scoring.pipeline import PREDICTION_BATCH_SIZE, ScoreReport, model_inputs, score_images, score_predictions
from isgame.scoring.provenance import Provenance, input_record, make_provenance
from isgame.scoring.sources.samples import open_images, open_predictions


def score_source(
    source: str,
    *,
    classifier_name: str = defaults.CLASSIFIER,
    weights: Path | None = None,
    splits: int = defaults.SPLITS,
    shuffle: bool = False,
    seed: int = defaults.SEED,
    n: int | None = None,
    batch_size: int | None = None,
    input_kind: str = "images",
    progress: bool = True,
    value_range: str = "auto",
    domain: Domain | None = None,
) -> ScoreReport:
    """Score SOURCE as images (through ``domain``'s classifier, default ``classifier_name`` with ``weights``) or as
    (N, K) logits / probabilities.

    The report's ``to_dict()["notes"]`` lists what the loader decided (files skipped, range detected, ...);
    ``["sample_order"]`` is the runs test of the top-1 labels (:mod:`isgame.scoring.metrics.sample_order`), counted as
    the rows stream. When it finds class-sorted or clustered rows under contiguous splits, a note says so and
    the rows are read and scored once more after a seeded shuffle (only then: a second pass costs nothing
    when the order is fine, while a shuffled accumulator run alongside would double the cost of every
    logits score); ``["provenance"]`` says how the number was made.
    """
    if splits < 1:
        raise InvalidInputError(f"{parameter('splits')} must be >= 1, got {splits}")
    if n is not None and n < 1:
        raise InvalidInputError(f"{parameter('n')} must be >= 1, got {n}")
    if batch_size is not None and batch_size < 1:
        raise InvalidInputError(f"{parameter('batch_size')} must be >= 1, got {batch_size}")
    if input_kind in ("logits", "probs"):
        return _score_predictions_source(source, kind=input_kind, splits=splits, shuffle=shuffle, seed=seed, n=n,
                                         batch_size=batch_size, progress=progress)
    if input_kind != "images":
        raise InvalidInputError(f"{parameter('input_kind')} must be images, logits or probs, got {input_kind!r}")
    size_notes: list = []
    classifier = classifier_of(domain, classifier_name, weights, images=[source], notes=size_notes)
    images = open_images(source, n=n, seed=seed, image_size=classifier.input_size, value_range=value_range)
    runs = RunsCounter(classifier.num_classes)

    def score_rows(shuffled: bool, on_batch=None) -> ScoreReport:
        return score_images(images, classifier, splits=splits, shuffle=shuffled, seed=seed,
                            batch_size=batch_size, progress=progress, on_batch=on_batch)

    report = _with_sample_order(score_rows(shuffle, runs.update), runs, score_rows, splits=splits, shuffle=shuffle,
                                seed=seed, name=images.name)
    return _with_notes(report, (*size_notes, *images.notes), make_provenance(
        "score", classifier=classifier, seed=seed, dialect="isgame", n=report.result.n, splits=splits, shuffled=shuffle,
        inputs=[input_record(images)]))


def _score_predictions_source(source: str, *, kind: str, splits: int, shuffle: bool, seed: int, n: int | None,
                              batch_size: int | None, progress: bool) -> ScoreReport:
    """:func:`score_source` of (N, K) logits or probabilities (``kind``) stored in SOURCE."""
    predictions = open_predictions(source, n=n)
    runs = RunsCounter(predictions.num_classes)

    def score_rows(shuffled: bool, on_batch=None) -> ScoreReport:
        return score_predictions(predictions, kind=kind, splits=splits, shuffle=shuffled, seed=seed,
                                 batch_size=batch_size or PREDICTION_BATCH_SIZE, progress=progress, on_batch=on_batch)

    report = _with_sample_order(score_rows(shuffle, runs.update), runs, score_rows, splits=splits, shuffle=shuffle,
                                seed=seed, name=predictions.name)
    return _with_notes(report, predictions.notes, make_provenance(
        "score", num_classes=predictions.num_classes, seed=seed, dialect="isgame", n=report.result.n, splits=splits,
        shuffled=shuffle, inputs=[input_record(predictions)]))


def classifier_of(domain: Domain | None, classifier_name: str, weights: Path | None, *,
                  images: list[str | None] = (), notes: list | None = None):
    """``domain``'s classifier, else ``classifier_name`` loaded with ``weights``; a classifier of the user's that
    declares no input size reads it from the image sources ``images`` (a note in ``notes`` says so)."""
    if domain is not None:
        return domain.classifier
    from isgame.scoring.classifiers.user import with_input_size

    return load_classifier(with_input_size(classifier_name, list(images), notes=notes), weights=weights)


def _with_sample_order(report: ScoreReport, runs: RunsCounter, score_rows, *, splits: int, shuffle: bool, seed: int,
                       name: str) -> ScoreReport:
    """``report`` with the runs test of its labels (``sample_order``) and, when it warns, the note first."""
    runs.all_reduce()
    order = sample_order(runs.compute(), splits=splits, shuffled=shuffle, seed=seed,
                         is_contiguous=report.result.is_mean, shuffled_is=lambda: score_rows(True).result.is_mean)
    note = order.note(name)
    return replace(report, extra={**report.extra, "sample_order": order.to_dict(),
                                  **({"order_notes": [note]} if note else {})})


def _with_notes(report: ScoreReport, notes: tuple[str, ...], provenance: Provenance | None = None) -> ScoreReport:
    extra = {key: value for key, value in report.extra.items() if key != "order_notes"}
    extra["notes"] = [*notes, *report.extra.get("order_notes", ())]
    if provenance is not None:
        extra["provenance"] = provenance.to_dict()
    return replace(report, extra=extra)


@dataclass(frozen=True)
class _CollectedLogits:
    source: str
    classifier: dict | None
    logits: torch.Tensor
    truncated: torch.Tensor | None = None  # logits of the uint8-truncated images, when asked for
    rerun: int = 0  # images whose truncation changed a pixel, so the network ran on them twice
    notes: tuple[str, ...] = ()  # what the loader decided (files skipped, range detected, n capped, ...)
    network: object = None  # the classifier that ran, for provenance (None for stored logits)
    input: dict | None = None  # the source's provenance record, with its fingerprint


def _collect_dialect_logits(source: str, *, classifier, n: int | None, seed: int, batch_size: int | None,
                            input_kind: str, truncated: bool, progress: bool,
                            value_range: str = "auto") -> _CollectedLogits:
    """Logits of SOURCE and, with ``truncated``, those of its uint8-truncated images, from one pass of the network."""
    if input_kind == "logits":
        predictions = open_predictions(source, n=n)
        logits = torch.from_numpy(np.concatenate(list(predictions.batches(PREDICTION_BATCH_SIZE))).astype(np.float64))
        return _CollectedLogits(predictions.name, None, logits, notes=tuple(predictions.notes),
                                input=input_record(predictions))
    if input_kind != "images":
        raise InvalidInputError(f"{parameter('dialect')} needs logits: use {parameter('input_kind', 'images')} (a classifier runs) or {parameter('input_kind', 'logits')}")
    from isgame.scoring.metrics.dialects import logits_of_truncated
    from isgame.scoring.runtime.distributed import all_gather_rows, current_group, sum_over_ranks
    from isgame.scoring.runtime.progress import progress_bar

    classifier = classifier()  # loaded only here: stored logits need none
    images = open_images(source, n=n, seed=seed, image_size=classifier.input_size, value_range=value_range)
    size = batch_size or classifier.default_batch_size
    # Under torchrun each rank classifies its shard of the rows; every rank gets all N in row order.
    start, stop = current_group().shard(images.num_samples)
    logits, truncated_logits, rerun = [], [], 0
    with progress_bar(f"classifying {images.name}", total=stop - start, batches=math.ceil((stop - start) / size),
                      enabled=progress) as advance, torch.no_grad():
        for batch, model_input in model_inputs(classifier, images, size, start=start, stop=stop):
            logits.append(classifier.logits_from_model_input(model_input))
            if truncated:
                # torchmetrics truncates float images to uint8 before its network sees them: run the network
                # again only on the images that truncation changes, reuse the logits of the others.
                batch_truncated, count = logits_of_truncated(classifier, batch, logits[-1])
                truncated_logits.append(batch_truncated)
                rerun += count
            advance(batch.shape[0])

    def gather(parts: list[torch.Tensor]) -> torch.Tensor:
        local = torch.cat(parts) if parts else torch.empty(0, classifier.num_classes, dtype=classifier.dtype)
        return all_gather_rows(local, images.num_samples)

    if truncated:
        (rerun,) = sum_over_ranks(rerun)
    return _CollectedLogits(images.name, classifier.describe(), gather(logits),
                            gather(truncated_logits) if truncated else None, int(rerun), tuple(images.notes),
                            network=classifier, input=input_record(images))


def score_in_dialects(source: str, dialect: str, *, splits: int | None = None, seed: int | None = None,
                      noise_seed: int = defaults.SEED, shuffle: bool = False,
                      classifier_name: str = defaults.CLASSIFIER, weights: Path | None = None, n: int | None = None,
                      batch_size: int | None = None, input_kind: str = "images", progress: bool = True,
                      value_range: str = "auto", domain: Domain | None = None) -> DialectReport:
    """One dialect's score, or with ``dialect="all"`` every dialect's, as a :class:`~scoring.dialects.DialectReport`.

    ``splits`` and ``seed`` default to each dialect's own; ``noise_seed`` seeds noise sources. ``shuffle`` is
    refused: every dialect orders the rows as its implementation does. The network runs once per image, plus
    once more for the images that torchmetrics' uint8 truncation changes.
    """
    from isgame.scoring.metrics.dialects import DIALECTS, DialectTable, dialect_table, score_dialect

    if dialect != "all" and dialect not in DIALECTS:
        raise InvalidInputError(f"unknown dialect {dialect!r}; choose one of {', '.join(DIALECTS)} or all")
    if shuffle:
        raise InvalidInputError(
            f"{parameter('shuffle', True)} does not combine with {parameter('dialect', dialect)}: each dialect orders "
            "the rows as its implementation does (torch-fidelity and torchmetrics shuffle, the others do not); "
            f"drop {parameter('shuffle', True)}, or leave out {parameter('dialect')} to shuffle before contiguous splits")
    # torchmetrics turns float images into uint8 by truncation before its network sees them.
    wants_truncated = dialect in ("all", "torchmetrics") and input_kind == "images"
    size_notes: list = []
    collected = _collect_dialect_logits(source, classifier=lambda: classifier_of(domain, classifier_name, weights,
                                                                                 images=[source], notes=size_notes),
                                        n=n, seed=noise_seed,
                                        batch_size=batch_size, input_kind=input_kind, truncated=wants_truncated,
                                        progress=progress, value_range=value_range)
    logits, truncated = collected.logits, collected.truncated
    if dialect == "all":
        table = dialect_table(logits, splits=splits, seed=seed)
        if truncated is not None:
            table = DialectTable([score_dialect(truncated, "torchmetrics", splits=splits, seed=seed)
                                  if s.dialect == "torchmetrics"
                                  else s for s in table.scores])
    else:
        table = DialectTable([score_dialect(truncated if truncated is not None else logits, dialect, splits=splits,
                                            seed=seed)])
    from isgame.scoring.runtime.distributed import current_group

    world_size = current_group().world_size
    extra = {"n": int(logits.shape[0]),
             **({"uint8_truncation": {"images_rerun": collected.rerun, "note": (
                 "torchmetrics truncates float images to uint8 before its network; the network ran again only on "
                 "the images this changed")}} if truncated is not None else {}),
             **({"processes": world_size} if world_size > 1 else {}), "notes": [*size_notes, *collected.notes]}
    extra["provenance"] = make_provenance(
        "score", classifier=collected.network, num_classes=int(logits.shape[1]), seed=seed, dialect=dialect,
        n=int(logits.shape[0]), splits=table.scores[0].splits if dialect != "all" else splits,
        shuffled=dialect in ("torch-fidelity", "torchmetrics"), inputs=[collected.input],
        rounding=("uint8 truncation for torchmetrics ((x * 255).byte()), none for the others"
                  if truncated is not None else "none: float32 in [0, 1] as the loader maps stored values")).to_dict()
    return DialectReport(source=collected.source, input_kind=input_kind, classifier=collected.classifier, table=table,
                         extra=extra)


def sharded_feature_batches(classifier, source, *, batch_size: int | None = None, progress: bool = True):
    """Yield the classifier's (B, D) features of this torchrun rank's rows of ``source``, batch by batch, without
    gradients, with a progress bar; in one process, of every row."""
    import torch

    from isgame.scoring.runtime.distributed import current_group
    from isgame.scoring.runtime.progress import progress_bar

    start, stop = current_group().shard(source.num_samples)
    size = batch_size or classifier.default_batch_size
    with progress_bar(f"features of {source.name}", total=stop - start, batches=(stop - start) // size + 1,
                      enabled=progress) as advance, torch.no_grad():
        for _, model_input in model_inputs(classifier, source, size, start=start, stop=stop):
            yield classifier.features_from_model_input(model_input)
            advance(model_input.shape[0])


def streamed_feature_statistics(classifier, source, *, batch_size: int | None = None, progress: bool = True):
    """Float64 mean and covariance of the classifier's features of ``source``, streamed one batch at a time
    (O(D^2) memory) and summed over torchrun processes."""
    from isgame.scoring.metrics.fid import FeatureStatisticsAccumulator

    accumulator = FeatureStatisticsAccumulator(classifier.feature_dim)
    for features in sharded_feature_batches(classifier, source, batch_size=batch_size, progress=progress):
        accumulator.update(features)
    accumulator.all_reduce()
    return accumulator.compute()


def fid_between(real: str, fake: str, *, classifier_name: str = defaults.CLASSIFIER, weights: Path | None = None,
                n: int | None = None, seed: int = defaults.SEED, batch_size: int | None = None, progress: bool = True,
                value_range: str = "auto", save_stats: Path | None = None, domain: Domain | None = None) -> dict:
    """FID between two image sources on the classifier's features, streamed (O(D^2) memory) and sharded
    across torchrun processes; returns a JSON-ready dict (``notes``: what the loader decided for either source).

    REAL may be stored statistics instead (an ``.npz`` with ``mu`` and ``sigma``: pytorch-fid's saved
    statistics, openai's reference batches). ``save_stats`` writes FAKE's statistics in that format.
    """
    from isgame.scoring.metrics.fid import is_statistics_file, load_statistics, save_statistics, statistics_to_fid
    from isgame.scoring.runtime.distributed import current_group
    from isgame.scoring.sources.stats_file import has_isgame_key, load_reference_stats

    if is_statistics_file(fake):
        raise InvalidInputError(f"FAKE {fake} holds statistics (mu, sigma); pass generated images as "
                                "FAKE (stored statistics are accepted for the real side)")
    from isgame.scoring.classifiers.user import features_note

    notes: list = []
    classifier = classifier_of(domain, classifier_name, weights, images=[real, fake], notes=notes)
    notes.extend(features_note(classifier))
    group = current_group()
    statistics = {}
    real_is_statistics = is_statistics_file(real)
    if real_is_statistics:
        statistics["real"] = load_statistics(real)
        if has_isgame_key(real):  # written by isgame stats save: refused unless made with these settings
            load_reference_stats(real, classifier=classifier)
        if statistics["real"].mean.shape[0] != classifier.feature_dim:
            raise InvalidInputError(
                f"{real} holds statistics of {statistics['real'].mean.shape[0]}-d features but classifier "
                f"{classifier.name} gives {classifier.feature_dim}-d ones; pass the classifier the statistics came "
                f"from as {parameter('classifier_name', 'NAME')}")
    sources = {role: open_images(spec, n=n, seed=seed, image_size=classifier.input_size, value_range=value_range)
               for role, spec in (("real", real), ("fake", fake)) if role not in statistics}
    for role, source in sources.items():
        statistics[role] = streamed_feature_statistics(classifier, source, batch_size=batch_size, progress=progress)
    if save_stats is not None and group.is_main:
        try:
            save_statistics(statistics["fake"], save_stats)
        except OSError as error:
            raise InvalidInputError(f"cannot write {parameter('save_stats', save_stats)} ({error.strerror}); "
                                    "choose a writable file path ending in .npz") from None
    inputs = [{"role": "real", "source": real, "input_range": None, "fingerprint": None, "statistics": True}
              if real_is_statistics else input_record(sources["real"], role="real"), input_record(sources["fake"], role="fake")]
    provenance = make_provenance("fid", classifier=classifier, seed=seed, n=statistics["fake"].n, inputs=inputs)
    return {"real": real, "fake": fake, "classifier": classifier.describe(), "feature_dim": classifier.feature_dim,
            "n_real": statistics["real"].n, "n_fake": statistics["fake"].n,
            "fid": statistics_to_fid(statistics["real"], statistics["fake"]),
            "note": "FID is biased upward at small N; compare values only at equal sample counts",
            "notes": [*notes, *(note for source in sources.values() for note in source.notes)],
            **({"real_is_statistics": True} if real_is_statistics else {}),
            **({"saved_stats": str(save_stats)} if save_stats is not None else {}),
            **({"processes": group.world_size} if group.world_size > 1 else {}), "provenance": provenance.to_dict()}


@dataclass(frozen=True)
class StatsSaveResult:
    """What ``isgame stats save`` wrote: the file, its statistics' size and key, and the provenance."""

    path: str
    stats: object  # ReferenceStats
    provenance: dict
    notes: tuple[str, ...] = ()  # what was decided on the caller's behalf (input size read, files skipped, ...)

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, **self.stats.to_dict(), "notes": list(self.notes), "provenance": self.provenance}


def save_stats(source: str, out: Path, *, classifier_name: str = defaults.CLASSIFIER, weights: Path | None = None,
               n: int | None = None, seed: int = defaults.SEED, subset: int | None = None,
               batch_size: int | None = None, progress: bool = True, value_range: str = "auto",
               domain: Domain | None = None) -> StatsSaveResult:
    """Stream SOURCE's features once: float64 mean and covariance, a seeded subset of at most ``subset`` rows
    (default 10,000) and the key of every setting; write them atomically to ``out``
    (:mod:`isgame.scoring.sources.stats_file`)."""
    from isgame.scoring.runtime.distributed import current_group
    from isgame.scoring.sources.stats_file import (
        DEFAULT_SUBSET_CAP,
        current_key,
        save_reference_stats,
        stream_reference_stats,
    )

    if current_group().world_size > 1:
        raise InvalidInputError("stats save runs in one process; run it without torchrun")
    from isgame.scoring.classifiers.user import features_note

    notes: list = []
    classifier = classifier_of(domain, classifier_name, weights, images=[source], notes=notes)
    notes.extend(features_note(classifier))
    images = open_images(source, n=n, seed=seed, image_size=classifier.input_size, value_range=value_range)
    notes.extend(images.notes)
    key = current_key(classifier, source=images.name, n=images.num_samples)
    stats = stream_reference_stats(sharded_feature_batches(classifier, images, batch_size=batch_size, progress=progress),
                                   num_samples=images.num_samples, feature_dim=classifier.feature_dim, key=key,
                                   cap=DEFAULT_SUBSET_CAP if subset is None else subset, seed=seed)
    record = input_record(images)
    stats = replace(stats, key=replace(key, input_fingerprint=(record["fingerprint"] or {}).get("sha256")))
    try:
        save_reference_stats(stats, out)
    except OSError as error:
        raise InvalidInputError(f"cannot write {parameter('out', out)} ({error.strerror}); choose a writable file "
                                "path ending in .npz") from None
    provenance = make_provenance("stats save", classifier=classifier, seed=seed, n=images.num_samples, inputs=[record])
    return StatsSaveResult(path=str(out), stats=stats, provenance=provenance.to_dict(), notes=tuple(notes))
