"""Noise baselines: how confidently does the classifier label things that are not digits?

Mean conditional entropy E[H(y|x)] and marginal entropy H(y), in bits, for uniform and Gaussian
noise, constant images, the real held-out and training digits, and noise after the inflate
attack, set against log2 K. The paper's Inception v3 figures are carried as published context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from isgame.attacks.inflate import InflateAttack
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.digits_data import digits_split
from isgame.scoring.inception_score import inception_score
from isgame.scoring.score_result import with_legacy_json_keys
from isgame.scoring.pipeline import classify
from isgame.scoring.samples import open_images

#: "A Note on the Inception Score" (Barratt & Sharma, 2018), Inception v3 — published, not measured here.
PUBLISHED_INCEPTION_V3_CONDITIONAL_ENTROPY_BITS = {
    "CIFAR-10 training images": 4.664,
    "random noise": 6.512,
    "ImageNet validation": 1.97,
}
CONSTANT_LEVELS = 256


@dataclass(frozen=True)
class BaselineRow:
    """Entropies of one kind of input, in bits; ``mean_max_probability`` is the mean top-1 confidence."""

    name: str
    n: int
    conditional_entropy_bits: float
    marginal_entropy_bits: float
    mutual_information_bits: float
    mean_max_probability: float
    is_mean: float

    def to_dict(self) -> dict[str, object]:
        return with_legacy_json_keys(dict(vars(self)), ("is_mean",))


@dataclass(frozen=True)
class NoiseBaselineResult:
    """Every row, log2 K, and the published figures (marked as such)."""

    num_classes: int
    rows: list[BaselineRow]
    seed: int

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


def noise_baselines(classifier: ImageClassifier, *, n: int = 1000, seed: int = 0,
                    inflated: torch.Tensor | None = None) -> NoiseBaselineResult:
    """Rows for noise, constants, real data and inflated noise (attacked here unless ``inflated`` is given)."""
    split = digits_split()
    size = classifier.input_size
    uniform = open_images("noise:uniform", n=n, seed=seed, image_size=size).load_all()
    gaussian = open_images("noise:gaussian", n=n, seed=seed, image_size=size).load_all()
    constant = torch.linspace(0, 1, CONSTANT_LEVELS).view(-1, 1, 1, 1).expand(-1, 1, *size).contiguous()
    if inflated is None:
        inflated = InflateAttack(steps=30)(classifier, uniform).images
    rows = [
        baseline_row("uniform noise", classifier, uniform),
        baseline_row("gaussian noise", classifier, gaussian),
        baseline_row(f"constant images ({CONSTANT_LEVELS} levels)", classifier, constant),
        baseline_row("held-out digits", classifier, split.test_images),
        baseline_row("training digits", classifier, split.train_images),
        baseline_row("inflated noise", classifier, inflated),
    ]
    return NoiseBaselineResult(num_classes=classifier.num_classes, rows=rows, seed=seed)


class NoiseBaselineDisplay:
    """Grouped bars of E[H(y|x)] and H(y) per input, with log2 K as a line."""

    def __init__(self, result: NoiseBaselineResult) -> None:
        self.result = result


    def plot(self, *, ax=None) -> "NoiseBaselineDisplay":
        import matplotlib.pyplot as plt
        import numpy as np

        if ax is None:
            _, ax = plt.subplots(figsize=(9, 4))
        rows = self.result.rows
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r.conditional_entropy_bits for r in rows], 0.4, color="#e78ac3", label="E[H(y|x)] (bits)")
        ax.bar(x + 0.2, [r.marginal_entropy_bits for r in rows], 0.4, color="#8da0cb", label="H(y) (bits)")
        ax.axhline(self.result.max_entropy_bits, color="black", linestyle=":",
                   label=f"log2 K = {self.result.max_entropy_bits:.2f}")
        ax.set_xticks(x, [r.name for r in rows], rotation=15, fontsize=8)
        ax.set_ylabel("bits")
        ax.set_title("What the digits classifier says about non-digits")
        ax.legend(fontsize=8)
        self.ax_, self.figure_ = ax, ax.figure
        return self
