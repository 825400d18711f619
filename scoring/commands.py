"""Library entry points behind the CLI commands: resolve names to objects, then score.

They return data and raise :class:`~scoring.errors.IsgameError`; they never exit.
"""

from __future__ import annotations

from pathlib import Path

from scoring.classifiers import load_classifier
from scoring.errors import InvalidInputError
from scoring.pipeline import DEFAULT_BATCH_SIZE, PREDICTION_BATCH_SIZE, ScoreReport, score_images, score_predictions
from scoring.samples import open_images, open_predictions


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
) -> ScoreReport:
    """Score SOURCE as images (through a classifier) or as (N, K) logits / probabilities."""
    if splits < 1:
        raise InvalidInputError(f"--splits must be >= 1, got {splits}")
    if n is not None and n < 1:
        raise InvalidInputError(f"--n must be >= 1, got {n}")
    if batch_size is not None and batch_size < 1:
        raise InvalidInputError(f"--batch-size must be >= 1, got {batch_size}")
    if input_kind in ("logits", "probs"):
        predictions = open_predictions(source)
        if n is not None and n < predictions.num_samples:
            predictions.array = predictions.array[:n]
        return score_predictions(
            predictions, kind=input_kind, splits=splits, shuffle=shuffle, seed=seed,
            batch_size=batch_size or PREDICTION_BATCH_SIZE, progress=progress,
        )
    if input_kind != "images":
        raise InvalidInputError(f"--input must be images, logits or probs, got {input_kind!r}")
    classifier = load_classifier(classifier_name, weights=weights)
    images = open_images(source, n=n, seed=seed, image_size=classifier.input_size)
    return score_images(
        images, classifier, splits=splits, shuffle=shuffle, seed=seed,
        batch_size=batch_size or DEFAULT_BATCH_SIZE, progress=progress,
    )
