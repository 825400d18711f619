"""Classifiers that give p(y|x) and features; :func:`load_classifier` resolves a name."""

from __future__ import annotations

from pathlib import Path

import torch

from isgame.scoring.classifiers.base import INTERPOLATIONS, PRECISIONS, ImageClassifier, resolve_device
from isgame.scoring.classifiers.digits import SHIPPED_DIGITS_WEIGHTS, DigitsClassifier, load_digits_classifier
from isgame.scoring.errors import InvalidInputError

CLASSIFIER_NAMES = (*SHIPPED_DIGITS_WEIGHTS, "inception-v3", "inception-v3-tf")


_default_device = torch.device("cpu")
_default_precision = "fp32"


def set_default_device(device: str | torch.device) -> torch.device:
    """The device :func:`load_classifier` puts networks on when it is given none (CPU until set).

    The CLI sets it from ``--device`` once per command, as ``torch.set_default_device`` does for
    tensors; returns the resolved device. ``auto`` is this process's GPU when CUDA is available.
    """
    global _default_device
    _default_device = resolve_device(device)
    return _default_device


def set_default_precision(precision: str) -> str:
    """The autocast precision :func:`load_classifier` gives networks when it is given none (fp32 until set).

    ``bf16`` runs on the CPU and CUDA, ``fp16`` on CUDA only (checked here against the default device, and again
    when a classifier is loaded on another); the CLI
    sets it from ``--precision`` once per command. See :meth:`ImageClassifier.set_precision`.
    """
    global _default_precision
    # Checked against the default device first, so that a refused precision never becomes the default.
    ImageClassifier.check_precision(precision, _default_device)
    _default_precision = precision
    return precision


def load_classifier(
    name: str = "digits",
    *,
    weights: Path | None = None,
    interpolation: str = "bilinear",
    antialias: bool = True,
    device: str | torch.device | None = None,
    precision: str | None = None,
) -> ImageClassifier:
    """Load a classifier by name: ``digits`` (default), ``digits-b`` or ``inception-v3`` (local weights only).

    ``weights`` replaces the shipped weights file; ``interpolation`` and ``antialias`` set how
    images of another size are resized on the way in; ``device`` is where the network runs
    (default: :func:`set_default_device`'s); ``precision`` the autocast precision, fp32, bf16 or fp16
    (default: :func:`set_default_precision`'s). Inputs and outputs stay on the CPU, in float32.
    """
    classifier = _load_by_name(name, weights=weights, interpolation=interpolation, antialias=antialias)
    classifier.to_device(_default_device if device is None else device)
    return classifier.set_precision(_default_precision if precision is None else precision)


def _load_by_name(name: str, *, weights: Path | None, interpolation: str, antialias: bool) -> ImageClassifier:
    if name in SHIPPED_DIGITS_WEIGHTS:
        return load_digits_classifier(name, weights=weights, interpolation=interpolation, antialias=antialias)
    if name == "inception-v3":
        from isgame.scoring.classifiers.inception import load_torchvision_inception

        return load_torchvision_inception(weights, interpolation=interpolation, antialias=antialias)
    from isgame.scoring.classifiers.user import is_user_classifier

    if is_user_classifier(name):
        from isgame.scoring.classifiers.user import load_user_classifier

        return load_user_classifier(name, interpolation=interpolation, antialias=antialias)
    if name == "inception-v3-tf":
        from isgame.scoring.classifiers.inception_tf import load_tf_inception

        return load_tf_inception(weights)
    raise InvalidInputError(
        f"unknown classifier {name!r}; choose one of: {', '.join(CLASSIFIER_NAMES)}, torchscript:PATH or module:function"
    )


__all__ = ["CLASSIFIER_NAMES", "INTERPOLATIONS", "PRECISIONS", "DigitsClassifier", "ImageClassifier", "load_classifier",
           "set_default_device", "set_default_precision"]
