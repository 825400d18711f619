"""The library call behind ``isgame metrics``: FAKE against REAL with every metric, on a classifier's features.

:func:`compute_metrics` extracts float64 features of REAL, FAKE and (optionally) the generator's
training set TRAIN once, then runs each requested metric of :data:`METRICS` on them and returns a
:class:`MetricsResult`. REAL may also be stored FID statistics (an ``.npz`` with ``mu`` and
``sigma``, as pytorch-fid's save-stats and openai's reference batches hold them): then only FID applies.

A metric joins by registering one function of the features in the registry
(:mod:`isgame.scoring.metrics.registry`, whose :data:`METRICS` this module reads)::

    @isgame.register_metric("my-metric", headline=("value",))
    def my_metric(inputs: isgame.MetricInputs) -> dict[str, object]:
        return {"value": ...}       # inputs.real, inputs.fake, inputs.train: (N, D) float64

Its values may be numpy numbers or arrays (they are made JSON-ready). A name already registered (isgame's own
``fid``, or another plug-in's) is refused unless ``override=True`` says the replacement is meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from isgame import defaults
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import AUTO, Domain, auxiliary_default, load_domain
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.fid import features_to_statistics, is_statistics_file, load_statistics
from isgame.scoring.sources.stats_file import has_isgame_key, load_reference_stats
from isgame.scoring.metrics.registry import (  # noqa: F401  (the names this module has always exported)
    BUILTIN_METRICS,
    METRICS,
    Metric,
    MetricInputs,
    register_metric,
)
from isgame.scoring.metrics.wavelet_fd import pooled_images
from isgame.scoring.notes import Note
from isgame.scoring.provenance import make_provenance
from isgame.scoring.results import json_ready, with_provenance


@dataclass(frozen=True)
class MetricsResult:
    """Each requested metric's values (``values[name]`` is that metric's dict), with what they were computed on."""

    real: str
    fake: str
    train: str | None
    classifier: dict
    feature_dim: int
    n_real: int | None
    n_fake: int
    n_train: int | None
    real_is_statistics: bool
    seed: int
    values: dict[str, dict[str, object]]
    notes: tuple[str, ...] = ()
    provenance: dict[str, object] | None = None  # how the result was made (isgame.scoring.provenance)
    #: registered metrics the default choice left out, each with the reason (what its inputs lack)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        out = {key: value for key, value in vars(self).items() if key not in ("values", "notes", "provenance")}
        return with_provenance({**out, "metrics": list(self.values), "values": json_ready(self.values),
                                "notes": list(self.notes)}, self.provenance)


def lacking_input(metric: Metric, *, real_features: bool, train: bool, second: bool = False,
                  real_images: bool | None = None) -> str | None:
    """The first input ``metric`` needs that these inputs lack (``training images``, ``real images``, ``real
    features``, ``second classifier``), or None. ``real_images`` (default: as ``real_features``) is False when
    REAL is a stats file: its stored feature rows serve the feature metrics, but not the pixel ones or a second
    classifier's."""
    real_images = real_features if real_images is None else real_images
    if metric.needs_train and not train:
        return "training images"
    if (metric.needs_images or metric.needs_second) and not real_images:
        return "real images"
    if metric.needs_real_features and not real_features:
        return "real features"
    if metric.needs_second and not second:
        return "second classifier"
    return None


def applicable_metrics(*, real_features: bool, train: bool, second: bool = False,
                       real_images: bool | None = None) -> list[str]:
    """Every registered metric that these inputs allow (``second``: a second classifier is there), in registry
    order."""
    return [name for name, metric in METRICS.items()
            if lacking_input(metric, real_features=real_features, train=train, second=second,
                             real_images=real_images) is None]


def source_features(spec: str, classifier, *, n: int | None, seed: int, batch_size: int, progress: bool,
                    value_range: str = "auto", notes: list | None = None, inputs: list | None = None,
                    role: str = "samples", extras: dict | None = None) -> np.ndarray:
    """(N, D) float64 features of an image source, in row order (sharded under torchrun, gathered on every rank);
    the loader's notes are appended to ``notes`` and its provenance record (as ``role``) to ``inputs`` when given.
    ``extras``: a dict whose keys (``"logits"``, ``"images"``) name what else to gather from the same pass; the
    arrays are stored under those keys."""
    import torch

    from isgame.app.scoring_commands import sharded_feature_batches
    from isgame.scoring.runtime.distributed import all_gather_rows
    from isgame.scoring.sources.samples import open_images

    source = open_images(spec, n=n, seed=seed, image_size=classifier.input_size, value_range=value_range)
    if notes is not None:
        notes.extend(source.notes)
    if extras is None:
        parts = list(sharded_feature_batches(classifier, source, batch_size=batch_size, progress=progress))
    else:
        parts = _features_with_extras(classifier, source, extras, batch_size=batch_size, progress=progress)
    local = torch.cat(parts) if parts else torch.empty(0, classifier.feature_dim, dtype=classifier.dtype)
    if inputs is not None:
        from isgame.scoring.provenance import input_record

        inputs.append(input_record(source, role=role))
    return all_gather_rows(local, source.num_samples).double().cpu().numpy()


def _features_with_extras(classifier, source, extras: dict, *, batch_size: int, progress: bool) -> list:
    """Feature batches of this rank's rows, as :func:`sharded_feature_batches` gives them (the same network call),
    filling ``extras`` with the gathered ``"logits"`` (N, K) float64 and/or ``"images"`` (N, C, h, w) float32
    (the network input, average-pooled to at most :data:`WAVELET_IMAGE_SIZE` a side) that it asks for as keys."""
    import torch

    from isgame.scoring.pipeline import model_inputs
    from isgame.scoring.runtime.distributed import all_gather_rows, current_group
    from isgame.scoring.runtime.progress import progress_bar

    start, stop = current_group().shard(source.num_samples)
    features, collected = [], {key: [] for key in extras}
    with progress_bar(f"features of {source.name}", total=stop - start, batches=(stop - start) // batch_size + 1,
                      enabled=progress) as advance, torch.no_grad():
        for _, model_input in model_inputs(classifier, source, batch_size, start=start, stop=stop):
            logits, batch_features = classifier._run_network(model_input)
            features.append(batch_features)
            if "logits" in collected:
                collected["logits"].append(logits.double())
            if "images" in collected:
                collected["images"].append(pooled_images(model_input.float().cpu()))
            advance(model_input.shape[0])
    for key, parts in collected.items():
        extras[key] = all_gather_rows(torch.cat(parts), source.num_samples).cpu().numpy()
    return features


def _check_settings(n, batch_size, kid_subsets, kid_subset_size) -> None:
    for name, value, least in (("n", n, 1), ("batch_size", batch_size, 1), ("kid_subsets", kid_subsets, 1),
                               ("kid_subset_size", kid_subset_size, 2)):
        if value is not None and value < least:
            raise InvalidInputError(f"{parameter(name)} must be >= {least}, got {value}")


def skipped_metrics(*, real_features: bool, train: bool, second: bool = False,
                    real_images: bool | None = None) -> dict[str, str]:
    """Every registered metric these inputs do not allow, with the first input it lacks
    (:func:`lacking_input`)."""
    reasons = {name: lacking_input(metric, real_features=real_features, train=train, second=second,
                                   real_images=real_images) for name, metric in METRICS.items()}
    return {name: reason for name, reason in reasons.items() if reason is not None}


def _skipped_notes(skipped: dict[str, str], *, real: str, classifier_name: str) -> list[Note]:
    """One note per reason the default choice of metrics left some out, naming them and the fix."""
    fixes = {
        "real features": f"{parameter('real')} {real} is stored statistics (mu, sigma), which give FID only; pass "
                         "real images for them (or a stats file of isgame stats save, which keeps feature rows)",
        "real images": f"{parameter('real')} {real} is stored statistics, which hold no images; pass real images "
                       "for them",
        "training images": f"they need the generator's training images; pass them as {parameter('train', 'SOURCE')}",
        "second classifier": f"classifier {classifier_name} has no second, independently trained classifier; pass "
                             f"one as {parameter('second_classifier', 'NAME')}",
    }
    notes = []
    for reason, fix in fixes.items():
        names = [name for name, why in skipped.items() if why == reason]
        if names:
            notes.append(Note(f"skipped {', '.join(names)}: {fix}"))
    return notes


def _requested(metrics: Sequence[str] | None, *, real_features: bool, train: bool, second: bool = False,
               real_images: bool | None = None, classifier_name: str = "") -> list[str]:
    available = dict(real_features=real_features, train=train, second=second, real_images=real_images)
    if not metrics:
        return applicable_metrics(**available)
    names = list(dict.fromkeys(metrics))
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise InvalidInputError(f"unknown {parameter('metrics')} {', '.join(map(repr, unknown))}; choose from "
                                f"{', '.join(METRICS)}")
    why = {
        "training images": f"the generator's training images; pass them as {parameter('train', 'SOURCE')}",
        "second classifier": f"a second, independently trained classifier, and classifier {classifier_name} has "
                             "none (auto gives digits-b to a digits classifier, none to any other); pass one as "
                             f"{parameter('second_classifier', 'NAME')}",
        "real features": f"features of real images, but {parameter('real')} is stored statistics (mu, sigma), "
                         "which give FID only; pass real images instead",
        "real images": f"real images, but {parameter('real')} is stored statistics; pass real images instead",
    }
    for name in names:
        reason = lacking_input(METRICS[name], **available)
        if reason is not None:
            raise InvalidInputError(f"{name} needs {why[reason]}")
    return names


def compute_metrics(
    real: str,
    fake: str,
    *,
    metrics: Sequence[str] | None = None,
    train: str | None = None,
    classifier_name: str = defaults.CLASSIFIER,
    weights: Path | None = None,
    n: int | None = None,
    seed: int = defaults.SEED,
    batch_size: int | None = None,
    kid_subsets: int = defaults.KID_SUBSETS,
    kid_subset_size: int = defaults.KID_SUBSET_SIZE,
    progress: bool = True,
    value_range: str = "auto",
    second_classifier: ImageClassifier | str | None = AUTO,
    domain: Domain | None = None,
) -> MetricsResult:
    """FAKE against REAL with each of ``metrics`` (default: every registered metric that applies).

    REAL, FAKE and TRAIN are image sources (folder, .npy/.npz, built-in); REAL may instead be an
    ``.npz`` of FID statistics (``mu``, ``sigma``), which allows FID only. ``n`` keeps the first N
    images of each source (noise: how many); C_T and authenticity need ``train``, the generator's
    training images, and test FAKE against them with REAL as the held-out set. ``value_range`` reads float
    image arrays as :func:`~isgame.scoring.sources.samples.open_images` does; ``notes`` in the result say what the
    loader decided. The classifier is ``domain``'s (default: ``classifier_name`` with ``weights``);
    ``second_classifier`` (an ImageClassifier, a classifier spec, ``auto``: the domain's own second classifier,
    digits-b on the digits and none on a domain without one; or None) gives fid-b, FID on its features of the same
    images, as the robustness matrix's FID-b column.
    """
    from isgame.scoring.runtime.plugins import load_installed_plugins

    _check_settings(n, batch_size, kid_subsets, kid_subset_size)
    notes: list = list(load_installed_plugins())
    if is_statistics_file(fake):
        raise InvalidInputError(f"{parameter('fake')} {fake} holds statistics (mu, sigma); the metrics need generated "
                                "images, and stored statistics are accepted for the real side only")
    real_is_statistics = is_statistics_file(real)
    available = dict(real_features=not real_is_statistics or has_isgame_key(real), train=train is not None,
                     real_images=not real_is_statistics)
    second = _second_choice(second_classifier, classifier_name, domain)
    names = _requested(metrics, **available, second=second is not None,
                       classifier_name=classifier_name if domain is None else domain.classifier_name)
    # The options are checked before the classifier loads (an Inception file takes seconds).
    domain = _metrics_domain(domain, classifier_name, weights, [real, fake, train], notes)
    classifier, records = domain.classifier, []
    options = dict(n=n, seed=seed, batch_size=batch_size or classifier.default_batch_size, progress=progress,
                   value_range=value_range, notes=notes, inputs=records)
    inputs = _metric_inputs(domain, names, real=real, fake=fake, train=train, second=second, options=options,
                            batch_size=batch_size, notes=notes, settings=dict(
                                kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed))
    values = {name: _metric_values(name, inputs) for name in names}
    skipped = {} if metrics else skipped_metrics(**available, second=second is not None)
    notes.extend(_skipped_notes(skipped, real=real, classifier_name=domain.classifier_name))
    return MetricsResult(real=real, fake=fake, train=train, classifier=classifier.describe(),
                         feature_dim=classifier.feature_dim, n_real=inputs.real_statistics.n,
                         n_fake=inputs.fake.shape[0], n_train=None if inputs.train is None else inputs.train.shape[0],
                         real_is_statistics=real_is_statistics, seed=seed, values=values, notes=tuple(notes),
                         skipped=skipped, provenance=make_provenance("metrics", classifier=classifier, seed=seed, n=inputs.fake.shape[0],
                                                    inputs=records).to_dict())


def _second_choice(second_classifier, classifier_name: str, domain: Domain | None):
    """The second classifier ``auto`` means for this classifier (or domain); any other choice as given."""
    if isinstance(second_classifier, str) and second_classifier == AUTO:
        return auxiliary_default(classifier_name, "second") if domain is None else domain.auxiliary_spec("second")
    return second_classifier


def _metrics_domain(domain: Domain | None, classifier_name: str, weights: Path | None, sources: list,
                    notes: list) -> Domain:
    """``domain``, or the classifier's (its input size inferred from ``sources`` when unstated), with notes on
    how the classifier was sized and whether its features are its logits."""
    from isgame.scoring.classifiers.user import features_note, with_input_size

    if domain is None:
        classifier_name = with_input_size(classifier_name, sources, notes=notes)
        domain = load_domain(classifier_name, weights=weights, require_images=False)
    notes.extend(features_note(domain.classifier))
    return domain


def _metric_values(name: str, inputs: MetricInputs) -> dict[str, object]:
    """Metric ``name`` on ``inputs``: its dict, JSON-ready (a plug-in may return numpy numbers and arrays)."""
    values = METRICS[name].compute(inputs)
    if not isinstance(values, dict):
        raise InvalidInputError(f"metric {name!r} returned {type(values).__name__}; a metric returns a dict of its "
                                "values, e.g. {'value': 0.5}")
    return json_ready(values)


def _metric_inputs(domain: Domain, names: list[str], *, real: str, fake: str, train: str | None, second,
                   options: dict, batch_size: int | None, notes: list, settings: dict) -> MetricInputs:
    """Features (and whatever else the requested metrics read) of REAL, FAKE and TRAIN, one pass per source."""
    classifier = domain.classifier
    needs_images = any(METRICS[name].needs_images for name in names)
    real_extras = dict.fromkeys(["images"] if needs_images else [])
    fake_extras = dict.fromkeys((["images"] if needs_images else [])
                                + (["logits"] if any(METRICS[name].needs_logits for name in names) else []))
    if is_statistics_file(real) and has_isgame_key(real):
        # a stats file of isgame stats save keeps a seeded subset of the feature rows: KID and the k-NN metrics
        # compare against those rows, FID against the moments of all of them
        stats = load_reference_stats(real, classifier=classifier)
        real_features, real_statistics = np.asarray(stats.features_subset, np.float64), stats.statistics
        notes.append(Note(f"{real}: the feature metrics other than FID compare against its "
                          f"{real_features.shape[0]} stored feature rows (a seeded subset of the "
                          f"{real_statistics.n} images), FID against the moments of all of them"))
    elif is_statistics_file(real):
        real_features, real_statistics = None, load_statistics(real)
        if real_statistics.mean.shape[0] != classifier.feature_dim:
            raise InvalidInputError(
                f"{real} holds statistics of {real_statistics.mean.shape[0]}-d features but classifier "
                f"{domain.classifier_name} gives {classifier.feature_dim}-d ones; pass the classifier the statistics "
                f"came from as {parameter('classifier_name', 'NAME')}")
    else:
        real_features = source_features(real, classifier, **options, role="real", extras=real_extras or None)
        real_statistics = features_to_statistics(real_features, name="real")
    needs_train = train is not None and any(METRICS[name].needs_train for name in names)
    if train is not None and not needs_train:
        notes.append(f"{train}: not read; none of {', '.join(names)} uses the training images")
    fake_features = source_features(fake, classifier, **options, role="fake", extras=fake_extras or None)
    second_name = second_real = second_fake = None
    if any(METRICS[name].needs_second for name in names):
        second_name, second_real, second_fake = _second_features(second, real, fake, options | {"batch_size": batch_size})
    train_features = (source_features(train, classifier, **(options | {"n": None}), role="train")
                      if needs_train else None)
    return MetricInputs(real=real_features, fake=fake_features, train=train_features, real_statistics=real_statistics,
                        fake_logits=fake_extras.get("logits"), real_images=real_extras.get("images"),
                        fake_images=fake_extras.get("images"), second_real=second_real, second_fake=second_fake,
                        second_classifier=second_name, **settings)


def _second_features(spec: ImageClassifier | str, real: str, fake: str, options: dict) -> tuple[str, np.ndarray, np.ndarray]:
    """The second classifier's name and its (N, D2) float64 features of REAL and FAKE: the same sources, ``n`` and
    seed as the main pass, read at its input size (the loader's notes and records are not repeated)."""
    from isgame.scoring.classifiers import load_classifier

    from isgame.scoring.classifiers.user import with_input_size

    second = spec if isinstance(spec, ImageClassifier) else load_classifier(with_input_size(spec, [real, fake]))
    options = options | {"notes": None, "inputs": None,
                         "batch_size": options["batch_size"] or second.default_batch_size}
    name = spec if isinstance(spec, str) else second.name
    return (name, source_features(real, second, **options, role="real"),
            source_features(fake, second, **options, role="fake"))
