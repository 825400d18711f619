"""The inflate attack through an adversarially trained classifier, beside the standard one.

Alfarra et al. (ECCV 2022) score with an adversarially trained network (R-IS, R-FID); the gradients of such a
network are known to carry class features (Santurkar et al., NeurIPS 2019, "Image Synthesis with a Single Robust
Classifier"). :func:`robust_inflate_comparison` runs :class:`~isgame.attacks.inflate.InflateAttack` on the same
starting noise through both classifiers and measures whether the robust one's images are closer to real
images: the mean L2 pixel distance of each image to its nearest training image (pixels in [0, 1]).
:class:`RobustInflateDisplay` shows the two sets side by side, one class per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from isgame import defaults
from isgame.attacks.inflate import InflateAttack
from isgame.attacks.inflate_result import InflateResult
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.plotting import Display, image_grid

#: the images attacked through the robust classifier (it rarely stops early, so it runs every step)
ROBUST_INFLATE_SAMPLES = 200


@dataclass(frozen=True)
class RobustInflateComparison:
    """The standard and robust inflate results on the same n starting images, and the mean nearest-training-image
    L2 distance (pixel units, images in [0, 1]) of each set, of the noise, and of held-out real images."""

    classifier: str
    robust_classifier: str
    standard: InflateResult = field(repr=False)
    robust: InflateResult = field(repr=False)
    nearest_training_distance: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"classifier": self.classifier, "robust_classifier": self.robust_classifier,
                "n": int(self.robust.images.shape[0]),
                "standard_final_is": self.standard.final_is, "robust_final_is": self.robust.final_is,
                "standard_steps": self.standard.steps, "robust_steps": self.robust.steps,
                "nearest_training_distance": self.nearest_training_distance,
                "distance": "mean L2 distance (pixels in [0, 1]) of each image to its nearest training image"}


def nearest_distances(images: torch.Tensor, train: torch.Tensor) -> np.ndarray:
    """(N,) L2 distance of each image (N, C, H, W) to its nearest training image (M, C, H, W)."""
    from sklearn.neighbors import NearestNeighbors  # here, not at import: `isgame attack` need not load scikit-learn

    reference = train.reshape(train.shape[0], -1).double().numpy()
    distances, _ = NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(images.reshape(images.shape[0], -1)
                                                                            .double().numpy())
    return distances[:, 0]


def robust_inflate_comparison(classifier: ImageClassifier, robust: ImageClassifier, start: torch.Tensor, *,
                              train: torch.Tensor, real: torch.Tensor | None = None, steps: int = 50,
                              threshold: float = defaults.INFLATE_THRESHOLD,
                              splits: int = defaults.SPLITS) -> RobustInflateComparison:
    """Inflate ``start`` (N, C, H, W) noise in [0, 1] through ``classifier`` and through ``robust`` with the same
    settings; distances to ``train`` for both, the noise and ``real`` (when given)."""
    options = dict(steps=steps, threshold=threshold, splits=min(splits, start.shape[0]), progress=False)
    standard = InflateAttack(**options)(classifier, start)
    defended = InflateAttack(**options)(robust, start)
    distances = {"standard inflated": standard.images, "robust inflated": defended.images, "noise": start,
                 **({} if real is None else {"real held-out": real})}
    return RobustInflateComparison(
        classifier=classifier.name, robust_classifier=robust.name, standard=standard, robust=defended,
        nearest_training_distance={name: float(nearest_distances(images, train).mean())
                                   for name, images in distances.items()})


class RobustInflateDisplay(Display):
    """The standard and the robust inflated images side by side, ten per row; rows follow the attack's
    cycling targets, so each row of a grid holds one target class per column."""

    figsize = (11, 5.8)
    panels = 2

    def __init__(self, comparison: RobustInflateComparison, *, count: int = 100) -> None:
        super().__init__(comparison)
        self.comparison, self.count = comparison, count

    def draw(self, axes) -> None:
        c = self.comparison
        for ax, (title, result) in zip(axes, ((f"inflated through {c.classifier} (IS {c.standard.final_is:.3f})",
                                               c.standard),
                                              (f"through {c.robust_classifier} (R-IS {c.robust.final_is:.3f})",
                                               c.robust))):
            grid = image_grid(result.images[:self.count], nrow=10)
            ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(title, fontsize=10)
            ax.axis("off")
        distances = c.nearest_training_distance
        axes[0].figure.suptitle("The inflate attack, standard against adversarially trained classifier; nearest training "
                        f"image: {distances['standard inflated']:.2f} against {distances['robust inflated']:.2f}",
                        fontsize=10)
