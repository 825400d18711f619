"""Noise baselines: how confidently does the classifier label things that are not of its domain?

Mean conditional entropy E[H(y|x)] and marginal entropy H(y), in bits, for uniform and Gaussian
noise, constant images, the domain's held-out real and training images, and noise after the inflate
attack, set against log2 K. Noise and constants have the domain's (C, H, W). The paper's Inception v3
figures are carried as published context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from isgame import defaults
from isgame.attacks.inflate import InflateAttack
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import Domain, as_domain
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.pipeline import classify
from isgame.scoring.plotting import Display
from isgame.scoring.results import FieldsAsDict

#: "A Note on the Inception Score" (Barratt & Sharma, 2018), Inception v3 — published, not measured here.
PUBLISHED_INCEPTION_V3_CONDITIONAL_ENTROPY_BITS = {
    "CIFAR-10 training images": 4.664,
    "random noise": 6.512,
    "ImageNet validation": 1.97,
}
CONSTANT_LEVELS = 256
INFLATE_STEPS = 30


@dataclass(frozen=True)
class BaselineRow(FieldsAsDict):
    """Entropies of one kind of input, in bits; ``mean_max_probability`` is the mean top-1 confidence."""

    published = ("is_mean",)

    name: str
    n: int
    conditional_entropy_bits: float
    marginal_entropy_bits: float
    mutual_information_bits: float
    mean_max_probability: float
    is_mean: float


@dataclass(frozen=True)
class NoiseBaselineResult:
    """Every row, log2 K, and the published figures (marked as such)."""

    num_classes: int
    rows: list[BaselineRow]
    seed: int
    domain: dict[str, object] | None = None

    @property
    def max_entropy_bits(self) -> float:
        return math.log2(self.num_classes)

    def by_name(self, name: str) -> BaselineRow:
        return next(r for r in self.rows if r.name == name)

    def to_dict(self) -> dict[str, object]:
        return {
            "num_classes": self.num_classes,
            "max_entropy_bits": self.max_entropy_bits,
            "seed": self.seed,
            "rows": [r.to_dict() for r in self.rows],
            "domain": self.domain,
            "published_inception_v3_conditional_entropy_bits": {
                "source": "Barratt & Sharma (2018), A Note on the Inception Score; published figures, not measured here",
                "num_classes": 1000,
                "max_entropy_bits": math.log2(1000),
                "values": PUBLISHED_INCEPTION_V3_CONDITIONAL_ENTROPY_BITS,
            },
        }


def baseline_row(name: str, classifier: ImageClassifier, images: torch.Tensor) -> BaselineRow:
    """Entropies of ``classifier`` on ``images`` (N, C, H, W) in [0, 1]."""
    logits = classify(classifier, images, batch_size=1024)
    scores = inception_score(logits, splits=1, track_stderr=False)
    return BaselineRow(
        name=name, n=images.shape[0], conditional_entropy_bits=scores.conditional_entropy_bits,
        marginal_entropy_bits=scores.marginal_entropy_bits, mutual_information_bits=scores.mutual_information_bits,
        mean_max_probability=float(torch.softmax(logits.double(), 1).max(dim=1).values.mean()),
        is_mean=scores.is_mean,
    )


def real_row_names(domain: Domain) -> tuple[str, str]:
    """The rows of the held-out real and the training images: "held-out digits" / "training digits" on digits."""
    return f"held-out {domain.noun}", domain.train_noun


def constant_images(image_shape: tuple[int, int, int], levels: int = CONSTANT_LEVELS) -> torch.Tensor:
    """``levels`` flat images (levels, C, H, W), grey values 0..1 evenly spaced, the same in every channel."""
    channels, height, width = image_shape
    return torch.linspace(0, 1, levels).view(-1, 1, 1, 1).expand(-1, channels, height, width).contiguous()


def noise_baselines(domain: Domain | ImageClassifier, *, n: int = defaults.PROBE_SAMPLES, seed: int = defaults.SEED,
                    inflated: torch.Tensor | None = None, steps: int = INFLATE_STEPS,
                    attack: bool = True) -> NoiseBaselineResult:
    """Rows for noise, constants, real data and inflated noise, in the domain's (C, H, W).

    ``n`` uniform and Gaussian noise images are seeded; the inflated noise is the uniform noise after
    ``steps`` steps of the inflate attack unless ``inflated`` (N, C, H, W) in [0, 1] is given; with
    ``attack=False`` and no ``inflated`` the inflated row is left out (no attack runs).
    """
    domain = as_domain(domain)
    classifier = domain.classifier
    uniform = domain.noise("uniform", n, seed=seed)
    gaussian = domain.noise("gaussian", n, seed=seed)
    if inflated is None and attack:
        inflated = InflateAttack(steps=steps)(classifier, uniform).images
    held_out_name, train_name = real_row_names(domain)
    rows = [
        baseline_row("uniform noise", classifier, uniform),
        baseline_row("gaussian noise", classifier, gaussian),
        baseline_row(f"constant images ({CONSTANT_LEVELS} levels)", classifier, constant_images(domain.image_shape)),
        baseline_row(held_out_name, classifier, domain.real),
        baseline_row(train_name, classifier, domain.train),
    ]
    if inflated is not None:
        rows.append(baseline_row("inflated noise", classifier, inflated))
    return NoiseBaselineResult(num_classes=domain.num_classes, rows=rows, seed=seed, domain=domain.describe())


class NoiseBaselineDisplay(Display):
    """Grouped bars of E[H(y|x)] and H(y) per input, with log2 K as a line."""

    figsize = (9, 4)

    def draw(self, ax) -> None:
        import numpy as np
        rows = self.result.rows
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r.conditional_entropy_bits for r in rows], 0.4, color="#e78ac3", label="E[H(y|x)] (bits)")
        ax.bar(x + 0.2, [r.marginal_entropy_bits for r in rows], 0.4, color="#8da0cb", label="H(y) (bits)")
        ax.axhline(self.result.max_entropy_bits, color="black", linestyle=":",
                   label=f"log2 K = {self.result.max_entropy_bits:.2f}")
        ax.set_xticks(x, [r.name for r in rows], rotation=15, fontsize=8)
        ax.set_ylabel("bits")
        ax.set_title("What the classifier says about images outside its domain")
        ax.legend(fontsize=8)
