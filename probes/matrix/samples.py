"""The robustness matrix's second stage: a game's images, and what every classifier says about them.

A game (:mod:`isgame.probes.matrix.games`) gives ``n`` images; this stage runs them once through the domain's
classifier and each auxiliary one (a second, independently trained classifier for FID-b; an adversarially
trained one for R-IS and R-FID) and holds the result as :class:`GameOutputs`, which every measurement reads.
It also fixes the sizes the matrix plays at and the two held-out halves C_T and FLD test against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from isgame.probes.matrix.games import HELD_OUT_GAMES, REFERENCE_GAME
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import AUTO, Domain
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.copy_detectors import CT_CELLS, flatten_images
from isgame.scoring.metrics.fid import FeatureStatistics, features_to_statistics
from isgame.scoring.pipeline import classify_with_features

#: the size of the digits' held-out set, so every game is compared at the same N
MATRIX_SAMPLES = 540
#: the largest k of the k-NN radii precision_recall_density_coverage takes (density and coverage)
PRDC_NEAREST_K = 5
#: the fewest samples a game is played with: the k-NN radii need k + 1 other rows. C_T is defined only where a
#: k-means cell holds more than 20 samples; below that it is NaN, with a note.
MIN_MATRIX_SAMPLES = PRDC_NEAREST_K + 2
#: the fewest real images: two C_T halves of at least MIN_MATRIX_SAMPLES each
MIN_REAL_IMAGES = 2 * MIN_MATRIX_SAMPLES
#: columns whose reference row is measured only on the second held-out half, so the reference game does not
#: measure them on its own samples first (C_T is measured there with authenticity)
REFERENCE_FROM_HALVES_ONLY = ("FLD",)


@dataclass(frozen=True)
class AuxiliaryScorer:
    """Another classifier the matrix scores every game with, and its statistics of the training images."""

    label: str
    classifier: ImageClassifier
    train_statistics: FeatureStatistics


@dataclass
class GameOutputs:
    """One game's n images (n, C, H, W) in [0, 1], their pixels (n, C*H*W) float64, and per classifier ("main" and
    each auxiliary's role) its logits (n, K) float32 tensor and features (n, D) float64 array."""

    images: torch.Tensor
    pixels: np.ndarray
    outputs: dict[str, tuple[torch.Tensor, np.ndarray]]

    @property
    def n(self) -> int:
        return int(self.images.shape[0])


def held_out_halves(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of two seeded, disjoint halves of ``count`` held-out rows (C_T's test set and its reference)."""
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[: count // 2]), np.sort(order[count // 2:])


def check_matrix_sizes(domain: Domain, n: int) -> None:
    """Refuse, in one line, a domain or ``n`` too small for the matrix's k-NN metrics and C_T, or ``n`` beyond the
    real (or training) images there are."""
    domain.require_real(MIN_REAL_IMAGES, f"the robustness matrix (k-NN radii with k = {PRDC_NEAREST_K}, and C_T's two "
                                         f"held-out halves of at least {MIN_MATRIX_SAMPLES} images each)")
    real, train = domain.real.shape[0], domain.train.shape[0]
    if train < max(CT_CELLS, PRDC_NEAREST_K + 2):
        raise InvalidInputError(f"the robustness matrix needs at least {max(CT_CELLS, PRDC_NEAREST_K + 2)} training "
                                f"images (C_T's {CT_CELLS} k-means cells), but {parameter('train')} "
                                f"{domain.train_source} gives {train}; pass more training images")
    if isinstance(n, bool) or not isinstance(n, int) or not MIN_MATRIX_SAMPLES <= n <= min(real, train):
        raise InvalidInputError(f"{parameter('n')} must be an integer in {MIN_MATRIX_SAMPLES}..{min(real, train)} (at "
                                f"most the {real} real and {train} training images; the k-NN radii need k + 2 = "
                                f"{MIN_MATRIX_SAMPLES}), got {n!r}")


def auxiliary_scorers(domain: Domain, *, second: ImageClassifier | str | None = AUTO,
                      robust: ImageClassifier | str | None = AUTO) -> dict[str, AuxiliaryScorer]:
    """The other classifiers the matrix scores with: "second" (FID-b) and "robust" (R-IS, R-FID), as
    :meth:`~isgame.scoring.domains.Domain.auxiliary_classifier` resolves them; None leaves the columns out."""
    scorers = {}
    for role, choice in (("second", second), ("robust", robust)):
        classifier = domain.auxiliary_classifier(role, choice)
        if classifier is None:
            continue
        features = classify_with_features(classifier, domain.train)[1]
        scorers[role] = AuxiliaryScorer(label=choice if isinstance(choice, str) and choice != AUTO else classifier.name,
                                        classifier=classifier, train_statistics=features_to_statistics(features))
    return scorers


def game_outputs(domain: Domain, images: torch.Tensor, auxiliary: dict[str, AuxiliaryScorer]) -> GameOutputs:
    """One forward pass per classifier over a game's images (n, C, H, W)."""
    outputs = {}
    for role, classifier in (("main", domain.classifier), *((r, a.classifier) for r, a in auxiliary.items())):
        logits, features = classify_with_features(classifier, images)
        outputs[role] = (logits, features.double().numpy())
    return GameOutputs(images=images, pixels=flatten_images(images), outputs=outputs)


def held_out_exclusions(game: str, columns: list[str], notes: list[str]) -> list[str]:
    """The columns of ``columns`` not measured on ``game``: on the reference row, those measured on the second
    held-out half afterwards; on a game made of held-out images, FLD, whose test set those images contain (a note
    says so; the caller prefixes the game's name)."""
    if game == REFERENCE_GAME:
        return [m for m in columns if m in REFERENCE_FROM_HALVES_ONLY]
    if game in HELD_OUT_GAMES and "FLD" in columns:
        notes.append("FLD not measured: the game's samples are held-out images, which include the held-out "
                     "half FLD is scored on, and a mixture centred on its own test points rewards them")
        return ["FLD"]
    return []
