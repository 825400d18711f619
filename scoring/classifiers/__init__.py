"""Classifiers that give p(y|x) and features; :func:`load_classifier` resolves a name."""

from __future__ import annotations

from pathlib import Path

from scoring.classifiers.base import INTERPOLATIONS, ImageClassifier
from scoring.classifiers.digits import SHIPPED_DIGITS_WEIGHTS, DigitsClassifier, load_digits_classifier
from scoring.errors import InvalidInputError

CLASSIFIER_NAMES = (*SHIPPED_DIGITS_WEIGHTS, "inception-v3", "inception-v3-tf")


def load_classifier(
    name: str = "digits",
    *,
    weights: Path | None = None,
    interpolation: str = "bilinear",
    antialias: bool = True,
) -> ImageClassifier:
    """Load a classifier by name: ``digits`` (default), ``digits-b`` or ``inception-v3`` (local weights only).

    ``weights`` replaces the shipped weights file; ``interpolation`` and ``antialias`` set how
    images of another size are resized on the way in.
    """
    if name in SHIPPED_DIGITS_WEIGHTS:
        return load_digits_classifier(name, weights=weights, interpolation=interpolation, antialias=antialias)
    if name == "inception-v3":
        from scoring.classifiers.inception import load_torchvision_inception

        return load_torchvision_inception(weights, interpolation=interpolation, antialias=antialias)
    from scoring.classifiers.user import is_user_classifier

    if is_user_classifier(name):
        from scoring.classifiers.user import load_user_classifier

        return load_user_classifier(name, interpolation=interpolation, antialias=antialias)
    if name == "inception-v3-tf":
        from scoring.classifiers.inception_tf import load_tf_inception

        return load_tf_inception(weights)
    raise InvalidInputError(
        f"unknown classifier {name!r}; choose one of: {', '.join(CLASSIFIER_NAMES)}, torchscript:PATH or module:function"
    )


__all__ = ["CLASSIFIER_NAMES", "INTERPOLATIONS", "DigitsClassifier", "ImageClassifier", "load_classifier"]
