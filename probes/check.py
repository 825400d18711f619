"""``isgame check``: audit a claimed Inception Score.

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

from attacks.inflate import InflateAttack
from probes.copy_detectors import authenticity, data_copying_test, flatten_images
from scoring.classifiers import load_classifier
from scoring.classifiers.base import ImageClassifier
from scoring.dialects import dialect_table
from scoring.errors import InvalidInputError
from scoring.inception_score import inception_score
from scoring.pipeline import classify

PREPROCESSING_VARIANTS = {
    "bilinear, antialias": {"interpolation": "bilinear", "antialias": True},
    "bilinear, no antialias": {"interpolation": "bilinear", "antialias": False},
    "bicubic, antialias": {"interpolation": "bicubic", "antialias": True},
    "nearest": {"interpolation": "nearest", "antialias": False},
}
CEILING_SAMPLES = 500
CEILING_STEPS = 20
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
        raise InvalidInputError(f"--claimed must be a finite IS >= 1, got {claimed}")
    if claimed_std < 0 or not math.isfinite(claimed_std):
        raise InvalidInputError(f"--claimed-std must be >= 0, got {claimed_std}")
    classifier = load_classifier(classifier_name)
    k, n = classifier.num_classes, samples.shape[0]
    if n < 2:
        raise InvalidInputError(f"need at least 2 samples to check a score, got {n}")
    splits = min(splits, n)
    logits = classify(classifier, samples)

    recomputed = {f"dialect {s.dialect}": s.is_mean for s in dialect_table(logits).scores}
    for label, options in PREPROCESSING_VARIANTS.items():
        variant = load_classifier(classifier_name, **options)
        recomputed[f"preprocessing: {label}"] = inception_score(classify(variant, samples), splits=splits, track_stderr=False).is_mean
    recomputed["preprocessing: uint8 quantised"] = inception_score(
        classify(classifier, (samples * 255).round() / 255), splits=splits, track_stderr=False).is_mean
    low, high = min(recomputed.values()), max(recomputed.values())
    rounding = claim_rounding(claimed)
    within = low - claimed_std - rounding <= claimed <= high + claimed_std + rounding

    scores = inception_score(logits, splits=splits, track_stderr=False)
    one_split = inception_score(logits, splits=1, track_stderr=False).is_mean
    per_split = n // splits
    sample_count = {
        "n": n, "num_classes": k, "splits": splits, "per_split": per_split, "adequate": per_split >= k,
        "split_bias_percent": 100 * (one_split - scores.is_mean) / one_split,
        "note": (f"{per_split} samples per split for K = {k} classes" + ("" if per_split >= k else
                 "; fewer samples per split than classes biases every split's marginal, and so the IS, downward")),
    }

    # Uniform noise of the samples' own shape: the baseline a classifier should be unsure about.
    noise = torch.rand((min(max(n, 100), 2000), *samples.shape[1:]), generator=torch.Generator().manual_seed(seed + 1))
    noise_h = inception_score(classify(classifier, noise), splits=1, track_stderr=False).conditional_entropy_bits
    reference_h = None
    if reference is not None:
        reference_h = inception_score(classify(classifier, reference), splits=1, track_stderr=False).conditional_entropy_bits
    noise_baseline = {"samples_bits": scores.conditional_entropy_bits, "uniform_noise_bits": noise_h,
                      "reference_bits": reference_h, "max_bits": math.log2(k)}

    ceiling_shape = (CEILING_SAMPLES, classifier.input_channels, *classifier.input_size)
    ceiling_start = torch.rand(ceiling_shape, generator=torch.Generator().manual_seed(seed))
    ceiling = InflateAttack(steps=CEILING_STEPS, splits=min(10, CEILING_SAMPLES))(classifier, ceiling_start)
    gaming_ceiling = {"inflated_is": ceiling.final_is, "from_noise_is": ceiling.initial_is, "steps": ceiling.steps,
                      "seconds": ceiling.seconds, "num_classes": k}

    noise_like = None
    if reference is not None:
        noise_like = nearest_is_noise_fraction(samples, reference, noise[: reference.shape[0]])
    images_vs_noise = {"fraction_nearer_noise_than_real": noise_like,
                       "reference_size": None if reference is None else int(reference.shape[0])}

    memorization = None
    if train is not None and reference is not None:
        train_pixels, sample_pixels = flatten_images(train), flatten_images(samples)
        memorization = {"ct_statistic": data_copying_test(train_pixels, flatten_images(reference), sample_pixels, seed=seed,
                                                          min_generated_per_cell=max(5, n // 50)).ct_statistic,
                        "authenticity": authenticity(train_pixels, sample_pixels)}

    reasons = []
    verdict = "reproduced" if within else "not reproduced"
    if noise_like is not None and noise_like >= NOISE_LIKE_LIMIT:
        verdict = "not meaningful"
        reasons.append(f"{100 * noise_like:.1f}% of the samples are nearer a noise image than any real reference image")
    if scores.conditional_entropy_bits >= noise_h:
        verdict = "not meaningful"
        reasons.append(f"the classifier is no more confident on the samples (E[H(y|x)] = {scores.conditional_entropy_bits:.3f} bits) "
                       f"than on uniform noise ({noise_h:.3f} bits): the samples are out of its domain")
    if reference_h is not None and scores.conditional_entropy_bits < 0.1 * reference_h:
        reasons.append(f"the samples are suspiciously confident: E[H(y|x)] = {scores.conditional_entropy_bits:.2e} bits "
                       f"against {reference_h:.3f} for real images, as after the inflate attack "
                       f"(which reaches IS {ceiling.final_is:.3f} of {k} from noise in {ceiling.steps} steps)")
    if memorization is not None and memorization["ct_statistic"] < -3:
        reasons.append(f"the samples look copied from the training set (C_T = {memorization['ct_statistic']:.1f}, "
                       f"authenticity {memorization['authenticity']:.2f})")
    reasons.append(f"claim {claimed:g} ± {claimed_std:g} (± {rounding:g} for its rounding) "
                   f"{'lies within' if within else 'lies outside'} the recomputed spread [{low:.4f}, {high:.4f}] over "
                   f"{len(recomputed)} dialects and preprocessing variants")
    if not sample_count["adequate"]:
        reasons.append(sample_count["note"])
    return CheckResult(
        claimed=claimed, claimed_std=claimed_std, n=n, num_classes=k, classifier=classifier_name, recomputed=recomputed,
        within_spread=within, sample_count=sample_count, noise_baseline=noise_baseline, gaming_ceiling=gaming_ceiling,
        images_vs_noise=images_vs_noise, memorization=memorization, class_histogram=scores.class_counts,
        verdict=verdict, reasons=reasons, examples=samples[:50],
    )


def claim_rounding(claimed: float) -> float:
    """Half a unit of the claim's last printed decimal: 8.67 -> 0.005, 9.0 -> 0.05, 12 -> 0.5."""
    from decimal import Decimal

    exponent = Decimal(repr(float(claimed))).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** min(exponent, 0)

