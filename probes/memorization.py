"""Memorisation: IS cannot see copies of the training set; copy detectors can.

Generators: the domain's training set replayed (as is, resampled with repetition, with pixel noise,
half of it mirrored), its held-out real images (the reference), and a PCA + KDE generator swept over
its bandwidth, from near-copies to blurry novel images. Each is scored by IS and the mutual
information, and by the copy detectors of :mod:`probes.copy_detectors` in pixel space and in the
classifier's feature space. Any :class:`~isgame.scoring.domains.Domain` works; digits is built in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from isgame.probes.generators import KdeGenerator, replay
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import Domain, as_domain, pca_bandwidth_scale
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.copy_detectors import (
    CT_CELLS,
    CT_SAMPLES_PER_CELL,
    authenticity,
    ct_cells,
    data_copying_test,
    flatten_images,
    nearest_training_test,
)
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.pipeline import classify_with_features
from isgame.scoring.plotting import Display
from isgame.scoring.results import FieldsAsDict

#: KDE bandwidths in PCA units for 8x8 grey digits; other domains multiply them by ``pca_bandwidth_scale``
DEFAULT_BANDWIDTHS = (0.01, 0.1, 0.2, 0.4, 0.7, 1.0)
DEFAULT_SAMPLES = 1000
KDE_MAX_COMPONENTS = 30
#: C_T's k-means cells, and the generated samples a cell needs (more than 20) to enter C_T


@dataclass(frozen=True)
class GeneratorAudit(FieldsAsDict):
    """Scores and copy detectors of one generator's samples."""

    name: str
    kind: str
    bandwidth: float | None
    n: int
    is_mean: float
    is_std: float
    mutual_information_bits: float
    ct_statistic: float
    ct_statistic_features: float
    authenticity: float
    authenticity_features: float
    near_copy_fraction: float
    near_copy_fraction_features: float
    median_distance_ratio: float
    median_distance_ratio_features: float


@dataclass(frozen=True)
class MemorizationResult:
    """Every generator's audit, in report order; ``kde_explained_variance`` of the PCA.

    ``bandwidth_scale`` is sqrt(D / 64) for the domain's D pixel values (1.0 for digits): each audit's
    ``bandwidth`` is the stated one, and the KDE sampled with ``bandwidth * bandwidth_scale`` PCA units
    (``effective_bandwidths``). ``ct_cells`` is the number of k-means cells of every C_T.
    """

    generators: list[GeneratorAudit]
    kde_explained_variance: float
    seed: int
    examples: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    domain: dict[str, object] = field(default_factory=dict)
    bandwidth_scale: float = 1.0
    kde_components: int = KDE_MAX_COMPONENTS
    ct_cells: int = CT_CELLS

    def by_name(self, name: str) -> GeneratorAudit:
        return next(g for g in self.generators if g.name == name)

    @property
    def effective_bandwidths(self) -> list[float]:
        return [g.bandwidth * self.bandwidth_scale for g in self.generators if g.kind == "kde"]

    def to_dict(self) -> dict[str, object]:
        return {"seed": self.seed, "kde_explained_variance": self.kde_explained_variance,
                "generators": [g.to_dict() for g in self.generators], "domain": self.domain,
                "bandwidth_scale": self.bandwidth_scale, "effective_bandwidths": self.effective_bandwidths,
                "kde_components": self.kde_components, "ct_cells": self.ct_cells}


def _features(classifier: ImageClassifier, images: torch.Tensor) -> np.ndarray:
    return classify_with_features(classifier, images, batch_size=1024)[1].double().numpy()


def audit_generator(name: str, kind: str, images: torch.Tensor, *, classifier: ImageClassifier, train: torch.Tensor,
                    held_out: torch.Tensor, train_features: np.ndarray, held_out_features: np.ndarray,
                    bandwidth: float | None = None, splits: int = 10, seed: int = 0,
                    cells: int = CT_CELLS) -> GeneratorAudit:
    """IS, I(y;x) in bits, and the copy detectors of ``images`` (M, C, H, W) in [0, 1] against the training set.

    ``train`` / ``held_out`` are images of the same (C, H, W); the ``*_features`` their classifier features
    (N, D) float64. C_T uses ``cells`` k-means cells, in pixel and in feature space.
    """
    logits, features = classify_with_features(classifier, images, batch_size=1024)
    features = features.double().numpy()
    scores = inception_score(logits, splits=splits, track_stderr=False)
    pixels, train_pixels, held_out_pixels = flatten_images(images), flatten_images(train), flatten_images(held_out)
    nearest = nearest_training_test(train_pixels, held_out_pixels, pixels)
    nearest_features = nearest_training_test(train_features, held_out_features, features)
    return GeneratorAudit(
        name=name, kind=kind, bandwidth=bandwidth, n=images.shape[0],
        is_mean=scores.is_mean, is_std=scores.is_std, mutual_information_bits=scores.mutual_information_bits,
        ct_statistic=data_copying_test(train_pixels, held_out_pixels, pixels, cells=cells, seed=seed).ct_statistic,
        ct_statistic_features=data_copying_test(train_features, held_out_features, features, cells=cells,
                                                seed=seed).ct_statistic,
        authenticity=authenticity(train_pixels, pixels),
        authenticity_features=authenticity(train_features, features),
        near_copy_fraction=nearest.near_copy_fraction,
        near_copy_fraction_features=nearest_features.near_copy_fraction,
        median_distance_ratio=nearest.median_ratio,
        median_distance_ratio_features=nearest_features.median_ratio,
    )


def _check_sizes(domain: Domain, n: int) -> None:
    """C_T needs a k-means cell with more than 20 samples of every set scored: refuse sets of 20 or fewer."""
    if n < CT_SAMPLES_PER_CELL:
        raise InvalidInputError(f"{parameter('n')} must be >= {CT_SAMPLES_PER_CELL} for the memorisation probe's C_T "
                                f"(a cell needs more than 20 samples), got {n}")
    domain.require_real(CT_SAMPLES_PER_CELL, "the memorisation probe's C_T")
    if domain.train.shape[0] < CT_SAMPLES_PER_CELL:
        raise InvalidInputError(f"the memorisation probe needs at least {CT_SAMPLES_PER_CELL} training images, but "
                                f"{parameter('train')} {domain.train_source} gives {domain.train.shape[0]}; "
                                "pass more training images of the domain")


def domain_kde(domain: Domain, *, seed: int = 0) -> KdeGenerator:
    """The PCA + KDE generator of the domain's training images, in min(30, N_train - 1, D) components
    (30 on digits); sample it with bandwidths multiplied by ``pca_bandwidth_scale(domain.image_shape)``."""
    components = min(KDE_MAX_COMPONENTS, domain.train.shape[0] - 1, math.prod(domain.image_shape))
    return KdeGenerator(domain.train, n_components=components, seed=seed)


def memorization_probe(domain: Domain | ImageClassifier, *, bandwidths: tuple[float, ...] = DEFAULT_BANDWIDTHS,
                       n: int = DEFAULT_SAMPLES, seed: int = 0) -> MemorizationResult:
    """Audit replay, held-out and the KDE bandwidth sweep (``n`` samples each) on ``domain``.

    The KDE is fitted on the domain's training images in min(30, N_train - 1, D) PCA components, and each
    bandwidth (PCA units, stated for 8x8 digits) is multiplied by sqrt(D / 64), so the noise per pixel is
    the same on a domain of any size (exactly the stated bandwidths on digits). Images are (C, H, W) of
    the domain; the held-out reference is its real images.
    """
    domain = as_domain(domain)
    _check_sizes(domain, n)
    classifier, train, held_out = domain.classifier, domain.train, domain.real
    train_features, held_out_features = _features(classifier, train), _features(classifier, held_out)
    scale = pca_bandwidth_scale(domain.image_shape)
    kde = domain_kde(domain, seed=seed)
    candidates = [
        ("held-out", "reference", held_out, None),
        ("replay", "replay", replay(train), None),
        ("replay-resampled", "replay", replay(train, n=n, seed=seed, resample=True), None),
        ("replay-noisy", "replay", replay(train, seed=seed, pixel_noise=0.02), None),
        ("replay-flipped", "replay", replay(train, seed=seed, flip_probability=0.5), None),
    ] + [(f"kde-{h:g}", "kde", kde.sample(n, bandwidth=h * scale, seed=seed), h) for h in bandwidths]
    cells = ct_cells(min(images.shape[0] for _, _, images, _ in candidates), fixed=domain.ct_cells)
    common = {"classifier": classifier, "train": train, "held_out": held_out, "train_features": train_features,
              "held_out_features": held_out_features, "seed": seed, "cells": cells}
    generators = [audit_generator(name, kind, images, bandwidth=h, **common) for name, kind, images, h in candidates]
    examples = {name: images[:20] for name, _, images, _ in candidates}
    return MemorizationResult(generators=generators, kde_explained_variance=kde.explained_variance, seed=seed,
                              examples=examples, domain=domain.describe(), bandwidth_scale=scale,
                              kde_components=int(kde.pca.n_components_), ct_cells=cells)


class MemorizationDisplay(Display):
    """Three panels along the KDE bandwidth: IS, C_T, authenticity and near-copies; replay and held-out as lines."""

    figsize = (12.4, 4)  # no wider than the report's page, which would shrink the text
    panels = 3

    def draw(self, axes) -> None:
        kde = [g for g in self.result.generators if g.kind == "kde"]
        bandwidths = [g.bandwidth for g in kde]
        reference = self.result.by_name("held-out")
        copy = self.result.by_name("replay")
        scale = self.result.bandwidth_scale
        xlabel = "KDE bandwidth (PCA units; small = copies)" if scale == 1.0 else \
            f"KDE bandwidth (PCA units x {scale:.3g} for the image size; small = copies)"
        panels = [
            (axes[0], "is_mean", "Inception Score", "IS rises as the generator copies"),
            (axes[1], "ct_statistic", "C_T (pixels)", "C_T flags copying (≪ 0)"),
            (axes[2], "authenticity", "fraction", "authenticity and near-copies"),
        ]
        for ax, key, label, title in panels:
            ax.plot(bandwidths, [getattr(g, key) for g in kde], marker="o", label=f"KDE: {key}")
            ax.axhline(getattr(reference, key), color="#1b9e77", linestyle="--", label=f"held-out real ({getattr(reference, key):.2f})")
            ax.axhline(getattr(copy, key), color="#d95f02", linestyle=":", label=f"replay ({getattr(copy, key):.2f})")
            ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
            ax.set_title(title)
        axes[1].axhline(0, color="grey", linewidth=0.5)
        axes[2].plot(bandwidths, [g.near_copy_fraction for g in kde], marker="s", color="#7570b3", label="KDE: near-copy fraction")
        for ax in axes:
            ax.legend(fontsize=7)
