"""Domain mismatch: score images from outside the classifier's domain.

Crops of scikit-learn's bundled sample photographs (``load_sample_images``: a Chinese temple
and a flower), random in position and size (16 to 128 px), converted to the classifier's channels
and reduced to its input by its own resize. A classifier trained on digits still labels them,
often confidently: IS cannot tell that the images are not digits at all. On any other domain the
built-in held-out digits are a second out-of-domain set, in the domain's channels and size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from isgame import defaults
from isgame.scoring.classifiers.base import ImageClassifier, resize, to_channels
from isgame.scoring.domains import DIGITS, Domain, as_domain, holds_builtin_images
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.pipeline import logits_in_one_pass_if_small
from isgame.scoring.plotting import Display
from isgame.scoring.results import FieldsAsDict

CROP_SIZES = (16, 128)
DIGITS_ROW = "digits (out of domain)"


def photo_crops(n: int, *, seed: int = 0) -> list[torch.Tensor]:
    """``n`` seeded square crops (3, s, s) float32 in [0, 1] of scikit-learn's sample photographs."""
    from sklearn.datasets import load_sample_images

    photos = [torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1) for image in load_sample_images().images]
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        photo = photos[rng.integers(len(photos))]
        size = int(rng.integers(CROP_SIZES[0], CROP_SIZES[1] + 1))
        top = int(rng.integers(0, photo.shape[1] - size + 1))
        left = int(rng.integers(0, photo.shape[2] - size + 1))
        crops.append(photo[:, top : top + size, left : left + size])
    return crops


@dataclass(frozen=True)
class DomainRow(FieldsAsDict):
    """How confident and how diverse the classifier is on one image set."""

    published = ("is_mean",)

    name: str
    n: int
    is_mean: float
    mean_max_probability: float
    fraction_confident: float
    conditional_entropy_bits: float
    marginal_entropy_bits: float
    class_histogram: list[int]


@dataclass(frozen=True)
class DomainResult:
    rows: list[DomainRow]
    confidence_threshold: float
    seed: int
    examples: torch.Tensor = field(repr=False)
    domain: dict[str, object] | None = None

    def by_name(self, name: str) -> DomainRow:
        return next(r for r in self.rows if r.name == name)

    def to_dict(self) -> dict[str, object]:
        return {"confidence_threshold": self.confidence_threshold, "seed": self.seed,
                "rows": [r.to_dict() for r in self.rows], "domain": self.domain}


def domain_row(name: str, logits: torch.Tensor, *, threshold: float) -> DomainRow:
    scores = inception_score(logits, splits=1, track_stderr=False)
    top = torch.softmax(logits.double(), 1).max(dim=1).values
    return DomainRow(name=name, n=logits.shape[0], is_mean=scores.is_mean,
                     mean_max_probability=float(top.mean()), fraction_confident=float((top >= threshold).double().mean()),
                     conditional_entropy_bits=scores.conditional_entropy_bits,
                     marginal_entropy_bits=scores.marginal_entropy_bits, class_histogram=scores.class_counts)


def digits_in_domain_shape(image_shape: tuple[int, int, int], n: int | None = None) -> torch.Tensor:
    """The first ``n`` (default all 540) built-in held-out digits (n, C, H, W) in [0, 1], in the channels and size
    of ``image_shape`` (grey copied to RGB; resized bilinearly with antialias)."""
    from isgame.scoring.sources.digits_data import digits_split

    channels, height, width = image_shape
    digits = to_channels(digits_split().test_images[:n], channels)
    return resize(digits, (height, width), interpolation="bilinear", antialias=True).contiguous()


def domain_probe(domain: Domain | ImageClassifier, *, n: int = defaults.PROBE_SAMPLES, seed: int = defaults.SEED,
                 threshold: float = 0.9) -> DomainResult:
    """Photo crops against the domain's held-out real images: IS, confidence (mean top-1, fraction >= threshold),
    entropies. On any domain but digits a third row scores the built-in held-out digits, out of domain there.

    ``examples`` are the first 50 crops as the classifier reads them (50, C_in, *input_size).
    """
    domain = as_domain(domain)
    domain.require_images("the domain probe")
    classifier = domain.classifier
    crops = photo_crops(n, seed=seed)
    prepared = torch.cat([classifier.preprocess(crop.unsqueeze(0)).float() for crop in crops])
    crop_logits = logits_in_one_pass_if_small(classifier, prepared, model_input=True)
    real_logits = logits_in_one_pass_if_small(classifier, domain.real)
    rows = [domain_row(f"held-out {domain.noun}", real_logits, threshold=threshold),
            domain_row("photo crops (non-digits)", crop_logits, threshold=threshold)]
    if not holds_builtin_images(domain, DIGITS):
        digits = digits_in_domain_shape(domain.image_shape, n)  # as many as the photo crops: bounded cost
        rows.append(domain_row(DIGITS_ROW, logits_in_one_pass_if_small(classifier, digits), threshold=threshold))
    return DomainResult(rows=rows, confidence_threshold=threshold, seed=seed, examples=prepared[:50],
                        domain=domain.describe())


class DomainDisplay(Display):
    """Predicted-class histograms of digits and non-digits, and their top-1 confidence."""

    figsize = (11, 3.8)
    panels = 2

    def draw(self, axes) -> None:
        rows = self.result.rows
        width = 0.8 / len(rows)
        for index, row in enumerate(rows):
            offset = (index - (len(rows) - 1) / 2) * width
            total = max(sum(row.class_histogram), 1)
            axes[0].bar(np.arange(len(row.class_histogram)) + offset, [c / total for c in row.class_histogram], width,
                        label=f"{row.name}: IS {row.is_mean:.2f}")
        axes[0].set_xlabel(f"predicted {(self.result.domain or {}).get('class_noun', 'class')}")
        axes[0].set_ylabel("fraction of samples")
        axes[0].set_title("how 'diverse' the classifier finds each set")
        axes[0].legend(fontsize=8)
        names = [r.name for r in self.result.rows]
        axes[1].bar(names, [r.mean_max_probability for r in self.result.rows], color="#8da0cb", label="mean top-1 p(y|x)")
        axes[1].bar(names, [r.fraction_confident for r in self.result.rows], color="#fc8d62", width=0.4,
                    label=f"fraction with top-1 >= {self.result.confidence_threshold}")
        axes[1].set_ylim(0, 1.05)
        axes[1].set_title("how confident it is")
        axes[1].legend(fontsize=8)
