"""Checking a claimed Inception Score: evidence functions and a pure verdict (behind ``isgame check``).

Given samples and a claim, it gathers evidence and reaches a verdict:

* **recomputed** under every dialect (:mod:`scoring.dialects`) and preprocessing variant (resize
  filter, antialias, uint8); the claim is *within the spread* if it lies in
  [min - claimed_std - r, max + claimed_std + r] of those figures, r being half a unit of the
  claim's last printed decimal (a claim of 8.67 stands for 8.665 to 8.675);
* **sample count**: N against K and the splits, with how much the split count alone moves the IS;
* **noise baseline**: E[H(y|x)] of uniform noise, of the samples and of real reference images;
* **gaming ceiling**: how far the inflate attack lifts noise in a fixed budget (20 steps);
* **images vs noise**: for each sample, whether its nearest neighbour (pixels) among the real
  reference images and as many fresh noise images is a noise image;
* **memorisation** against ``--train`` (C_T, authenticity), when given with a reference;
* the predicted-class histogram.

Verdict: *not meaningful* when most samples sit nearer noise than real images, or the classifier
is no more confident on them than on noise (out of domain); else *reproduced* when the claim is
within the spread, *not reproduced* otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from isgame.attacks.inflate import InflateAttack
from isgame.probes.copy_detectors import authenticity, data_copying_test, flatten_images
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.dialects import dialect_table
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.inception_score import inception_score
from isgame.scoring.pipeline import classify
from isgame.scoring.preprocessing import RESIZE_VARIANTS, quantise_to_uint8

#: the resize variants a claim is recomputed under, in report order (labels of RESIZE_VARIANTS)
CHECK_RESIZE_VARIANTS = ("bilinear, antialias", "bilinear, no antialias", "bicubic, antialias", "nearest")
#: the gaming ceiling: how many noise images the inflate attack lifts, and in how many steps
CEILING_SAMPLES, CEILING_STEPS = 500, 20
#: the samples are "not meaningful" when at least this fraction sits nearer noise than real images
NOISE_LIKE_LIMIT = 0.5


@dataclass(frozen=True)
class CheckResult:
    claimed: float
    claimed_std: float
    n: int
    num_classes: int
    classifier: str
    recomputed: dict[str, float]
    within_spread: bool
    sample_count: dict[str, object]
    noise_baseline: dict[str, float | None]
    gaming_ceiling: dict[str, float]
    images_vs_noise: dict[str, float | None]
    memorization: dict[str, float] | None
    class_histogram: list[int]
    verdict: str
    reasons: list[str]
    examples: torch.Tensor = field(repr=False, default=None)

    @property
    def spread(self) -> tuple[float, float]:
        values = list(self.recomputed.values())
        return min(values), max(values)

    def to_dict(self) -> dict[str, object]:
        low, high = self.spread
        out = {key: value for key, value in vars(self).items() if key != "examples"}
        out["within_spread"] = bool(self.within_spread)
        return {**out, "spread_min": low, "spread_max": high}


def nearest_is_noise_fraction(samples: torch.Tensor, reference: torch.Tensor, noise: torch.Tensor) -> float:
    """Fraction of samples whose nearest neighbour in reference ∪ noise (flattened pixels) is a noise image."""
    from sklearn.neighbors import NearestNeighbors

    size = samples.shape[-2:]
    def flat(x):
        x = x.mean(dim=1, keepdim=True) if x.shape[1] > 1 else x
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True) if x.shape[-2:] != size else x
        return flatten_images(x)

    pool = np.concatenate([flat(reference), flat(noise)])
    is_noise = np.concatenate([np.zeros(reference.shape[0], bool), np.ones(noise.shape[0], bool)])
    _, index = NearestNeighbors(n_neighbors=1).fit(pool).kneighbors(flat(samples))
    return float(is_noise[index[:, 0]].mean())


def recompute_claim(classifier: ImageClassifier, classifier_name: str, samples: torch.Tensor, logits: torch.Tensor, *,
                    splits: int) -> dict[str, float]:
    """The samples' IS under every dialect and every preprocessing variant (resize filter, antialias, uint8).

    ``classifier`` is ``load_classifier(classifier_name)`` and ``logits`` its logits of ``samples``.
    """
    recomputed = {f"dialect {s.dialect}": s.is_mean for s in dialect_table(logits).scores}
    for label in CHECK_RESIZE_VARIANTS:
        variant = load_classifier(classifier_name, **RESIZE_VARIANTS[label])
        recomputed[f"preprocessing: {label}"] = _is_mean(classify(variant, samples), splits)
    recomputed["preprocessing: uint8 quantised"] = _is_mean(classify(classifier, quantise_to_uint8(samples)), splits)
    return recomputed


def _is_mean(logits: torch.Tensor, splits: int) -> float:
    return inception_score(logits, splits=splits, track_stderr=False).is_mean


def sample_count_evidence(logits: torch.Tensor, *, splits: int) -> dict[str, object]:
    """N against K and the splits, and how far the split count alone moves the IS (percent of the one-split IS)."""
    n, k = logits.shape
    one_split = _is_mean(logits, 1)
    per_split = n // splits
    return {
        "n": n, "num_classes": k, "splits": splits, "per_split": per_split, "adequate": per_split >= k,
        "split_bias_percent": 100 * (one_split - _is_mean(logits, splits)) / one_split,
        "note": (f"{per_split} samples per split for K = {k} classes" + ("" if per_split >= k else
                 "; fewer samples per split than classes biases every split's marginal, and so the IS, downward")),
    }


def noise_baseline_evidence(classifier: ImageClassifier, samples_bits: float, noise: torch.Tensor,
                            reference: torch.Tensor | None) -> dict[str, float | None]:
    """E[H(y|x)] in bits of the samples, of uniform noise and of real reference images, against log2 K."""
    def conditional_bits(images: torch.Tensor) -> float:
        return inception_score(classify(classifier, images), splits=1, track_stderr=False).conditional_entropy_bits

    return {"samples_bits": samples_bits, "uniform_noise_bits": conditional_bits(noise),
            "reference_bits": None if reference is None else conditional_bits(reference),
            "max_bits": math.log2(classifier.num_classes)}


def gaming_ceiling(classifier: ImageClassifier, *, seed: int = 0) -> dict[str, float]:
    """How far the inflate attack lifts uniform noise in a fixed budget (CEILING_STEPS steps)."""
    shape = (CEILING_SAMPLES, classifier.input_channels, *classifier.input_size)
    start = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    ceiling = InflateAttack(steps=CEILING_STEPS, splits=min(10, CEILING_SAMPLES))(classifier, start)
    return {"inflated_is": ceiling.final_is, "from_noise_is": ceiling.initial_is, "steps": ceiling.steps,
            "seconds": ceiling.seconds, "num_classes": classifier.num_classes}


def memorization_evidence(samples: torch.Tensor, train: torch.Tensor, reference: torch.Tensor, *,
                          seed: int = 0) -> dict[str, float]:
    """C_T and authenticity of the samples against the training images, in pixel space."""
    train_pixels, sample_pixels = flatten_images(train), flatten_images(samples)
    copying = data_copying_test(train_pixels, flatten_images(reference), sample_pixels, seed=seed,
                                min_generated_per_cell=max(5, samples.shape[0] // 50))
    return {"ct_statistic": copying.ct_statistic, "authenticity": authenticity(train_pixels, sample_pixels)}


def claim_verdict(*, claimed: float, claimed_std: float, recomputed: dict[str, float],
                  noise_baseline: dict[str, float | None], gaming_ceiling: dict[str, float],
                  noise_like: float | None, memorization: dict[str, float] | None,
                  sample_count: dict[str, object]) -> tuple[bool, str, list[str]]:
    """The verdict from the evidence alone: (claim within the spread, verdict, the reasons in order)."""
    low, high = min(recomputed.values()), max(recomputed.values())
    rounding = claim_rounding(claimed)
    within = low - claimed_std - rounding <= claimed <= high + claimed_std + rounding
    samples_bits, noise_bits = noise_baseline["samples_bits"], noise_baseline["uniform_noise_bits"]
    reference_bits = noise_baseline["reference_bits"]
    reasons = []
    verdict = "reproduced" if within else "not reproduced"
    if noise_like is not None and noise_like >= NOISE_LIKE_LIMIT:
        verdict = "not meaningful"
        reasons.append(f"{100 * noise_like:.1f}% of the samples are nearer a noise image than any real reference image")
    if samples_bits >= noise_bits:
        verdict = "not meaningful"
        reasons.append(f"the classifier is no more confident on the samples (E[H(y|x)] = {samples_bits:.3f} bits) "
                       f"than on uniform noise ({noise_bits:.3f} bits): the samples are out of its domain")
    if reference_bits is not None and samples_bits < 0.1 * reference_bits:
        reasons.append(f"the samples are suspiciously confident: E[H(y|x)] = {samples_bits:.2e} bits "
                       f"against {reference_bits:.3f} for real images, as after the inflate attack "
                       f"(which reaches IS {gaming_ceiling['inflated_is']:.3f} of {gaming_ceiling['num_classes']} "
                       f"from noise in {gaming_ceiling['steps']} steps)")
    if memorization is not None and memorization["ct_statistic"] < -3:
        reasons.append(f"the samples look copied from the training set (C_T = {memorization['ct_statistic']:.1f}, "
                       f"authenticity {memorization['authenticity']:.2f})")
    reasons.append(f"claim {claimed:g} ± {claimed_std:g} (± {rounding:g} for its rounding) "
                   f"{'lies within' if within else 'lies outside'} the recomputed spread [{low:.4f}, {high:.4f}] over "
                   f"{len(recomputed)} dialects and preprocessing variants")
    if not sample_count["adequate"]:
        reasons.append(sample_count["note"])
    return within, verdict, reasons


def check_claim(
    samples: torch.Tensor,
    *,
    claimed: float,
    claimed_std: float = 0.0,
    classifier_name: str = "digits",
    reference: torch.Tensor | None = None,
    train: torch.Tensor | None = None,
    splits: int = 10,
    seed: int = 0,
) -> CheckResult:
    """Audit ``claimed`` for ``samples`` (N, C, H, W) in [0, 1]; ``reference`` are real images of the domain."""
    if not math.isfinite(claimed) or claimed < 1:
        raise InvalidInputError(f"{parameter('claimed')} must be a finite IS >= 1, got {claimed}")
    if claimed_std < 0 or not math.isfinite(claimed_std):
        raise InvalidInputError(f"{parameter('claimed_std')} must be >= 0, got {claimed_std}")
    classifier = load_classifier(classifier_name)
    n = samples.shape[0]
    if n < 2:
        raise InvalidInputError(f"need at least 2 samples to check a score, got {n}")
    splits = min(splits, n)
    logits = classify(classifier, samples)
    scores = inception_score(logits, splits=splits, track_stderr=False)
    # Uniform noise of the samples' own shape: the baseline a classifier should be unsure about.
    noise = torch.rand((min(max(n, 100), 2000), *samples.shape[1:]), generator=torch.Generator().manual_seed(seed + 1))
    evidence = {
        "recomputed": recompute_claim(classifier, classifier_name, samples, logits, splits=splits),
        "sample_count": sample_count_evidence(logits, splits=splits),
        "noise_baseline": noise_baseline_evidence(classifier, scores.conditional_entropy_bits, noise, reference),
        "gaming_ceiling": gaming_ceiling(classifier, seed=seed),
        "noise_like": None if reference is None else nearest_is_noise_fraction(samples, reference, noise[: reference.shape[0]]),
        "memorization": (None if train is None or reference is None
                         else memorization_evidence(samples, train, reference, seed=seed)),
    }
    within, verdict, reasons = claim_verdict(claimed=claimed, claimed_std=claimed_std, **evidence)
    noise_like = evidence.pop("noise_like")
    images_vs_noise = {"fraction_nearer_noise_than_real": noise_like,
                       "reference_size": None if reference is None else int(reference.shape[0])}
    return CheckResult(
        claimed=claimed, claimed_std=claimed_std, n=n, num_classes=classifier.num_classes, classifier=classifier_name,
        within_spread=within, images_vs_noise=images_vs_noise, class_histogram=scores.class_counts,
        verdict=verdict, reasons=reasons, examples=samples[:50], **evidence,
    )


def claim_rounding(claimed: float) -> float:
    """Half a unit of the claim's last printed decimal: 8.67 -> 0.005, 9.0 -> 0.05, 12 -> 0.5."""
    from decimal import Decimal

    exponent = Decimal(repr(float(claimed))).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** min(exponent, 0)


class ClassHistogramDisplay:
    """Bars of the samples' predicted-class counts; keeps ``ax_`` and ``figure_``."""

    def __init__(self, class_histogram: list[int]) -> None:
        self.class_histogram = class_histogram

    def plot(self, *, ax=None) -> "ClassHistogramDisplay":
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.2))
        ax.bar(range(len(self.class_histogram)), self.class_histogram, color="#8da0cb")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("samples")
        ax.set_title("class histogram of the samples")
        self.ax_, self.figure_ = ax, ax.figure
        return self
