"""Sensitivity: how much do splits, sample count, weights, preprocessing and JPEG move the IS?

* Splits: IS for 1..100 splits (shuffled or not) against the split-free mutual information,
  on the domain's held-out real images and on a synthetic K = 1000 set.
* Sample count: IS against N on the synthetic set, against its exact value.
* Weights: the same samples under the domain's classifier, a second one (``digits-b`` for digits)
  and randomly perturbed copies of the first.
* Preprocessing: resize interpolation and antialias, uint8 quantisation, float32 vs float64.
* JPEG: the same samples after a JPEG round trip at qualities 95, 75 and 50.
* Precision: IS and FID (against the domain's training images) of the same samples with the classifier
  in float32 and under bf16 autocast.

The sample sets are the domain's real images, KDE samples of its training images and uniform noise,
all of the domain's (C, H, W); any :class:`~isgame.scoring.domains.Domain` works, digits is built in.

The synthetic set: class c uniform over K, p(y|x) = 1 - eps on c and eps / (K - 1) elsewhere.
Its marginal is uniform, so its exact IS is K exp(-(h(eps) + eps ln(K - 1))), with h the
binary entropy in nats; finite samples estimate the marginal, and so the IS, with a downward bias.
"""

from __future__ import annotations

import copy
import functools
import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from isgame import defaults
from isgame.probes.memorization import domain_kde
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import Domain, as_domain, check_classifier_fits, digits_domain, pca_bandwidth_scale
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.accumulator import split_of_rows
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.metrics.score_result import spread_percent
from isgame.scoring.pipeline import classify, logits_in_one_pass_if_small
from isgame.scoring.plotting import Display
from isgame.scoring.results import FieldsAsDict
from isgame.scoring.sources.preprocessing import RESIZE_VARIANTS, quantise_to_uint8

SPLIT_COUNTS = (1, 2, 5, 10, 20, 50, 100)
SAMPLE_COUNTS = (500, 1000, 2000, 5000, 10_000, 20_000, 50_000)
SYNTHETIC_CLASSES = 1000
SYNTHETIC_EPSILON = 0.1
SYNTHETIC_SAMPLES = 50_000
WEIGHT_NOISE_LEVELS = (0.01, 0.02, 0.05)
WEIGHT_NOISE_SEEDS = 5
#: KDE bandwidth of the KDE sample set, in PCA units for 8x8 digits (scaled by sqrt(D / 64) elsewhere)
KDE_BANDWIDTH = 0.4
#: images already at the classifier's input size are bicubic-upscaled this much, so the resize acts
UPSCALE_FACTOR = 4
JPEG_QUALITIES = (95, 75, 50)
#: images per set (and training images) on the precision axis
PRECISION_SAMPLES = 500
#: Barratt & Sharma (2018): the same CIFAR-10 images under Inception v3 in Torch vs Keras. Published, not measured.
PUBLISHED_WEIGHTS_SPREAD_PERCENT = 11.5


def synthetic_exact_is(num_classes: int = SYNTHETIC_CLASSES, epsilon: float = SYNTHETIC_EPSILON) -> float:
    """Exact IS of the synthetic set: K exp(-(h(eps) + eps ln(K - 1)))."""
    h = -(1 - epsilon) * math.log(1 - epsilon) - epsilon * math.log(epsilon)
    return num_classes * math.exp(-(h + epsilon * math.log(num_classes - 1)))


def synthetic_classes(*, num_classes: int = SYNTHETIC_CLASSES, seed: int = 0) -> np.ndarray:
    """The true class of each of the SYNTHETIC_SAMPLES rows: uniform over K, seeded; shape (50000,)."""
    return np.random.default_rng(seed).integers(0, num_classes, size=SYNTHETIC_SAMPLES)


def synthetic_probabilities(start: int, stop: int, *, num_classes: int = SYNTHETIC_CLASSES,
                            epsilon: float = SYNTHETIC_EPSILON, seed: int = 0) -> torch.Tensor:
    """Rows start..stop-1 of the synthetic set, float64 (stop - start, K); row i is the same for any batching."""
    classes = torch.from_numpy(synthetic_classes(num_classes=num_classes, seed=seed)[start:stop])
    probs = torch.full((stop - start, num_classes), epsilon / (num_classes - 1), dtype=torch.float64)
    probs[torch.arange(stop - start), classes] = 1 - epsilon
    return probs


def score_synthetic(n: int, *, splits: int, shuffle: bool, seed: int = 0) -> float:
    """Classic IS of the first ``n`` synthetic rows over ``splits`` splits, in closed form from class counts.

    Every row has the same conditional entropy H_c = h(eps) + eps ln(K - 1) (nats), and a split of m rows whose
    true classes have counts c (K,) has the marginal p = ((1 - eps) c + eps (m - c) / (K - 1)) / m, so its IS is
    exp(H(p) - H_c): what :class:`~isgame.scoring.metrics.accumulator.InceptionScoreAccumulator` computes streaming those
    rows, to float64 rounding (a test streams them), in one pass over n class labels instead of n x K probabilities.
    The splits are the accumulator's (:func:`~isgame.scoring.metrics.accumulator.split_of_rows`).
    """
    if not 1 <= splits <= n <= SYNTHETIC_SAMPLES:
        raise InvalidInputError(f"the synthetic set needs 1 <= splits <= n <= {SYNTHETIC_SAMPLES}, got splits = "
                                f"{splits}, n = {n}")
    classes = synthetic_classes(seed=seed)[:n]
    split_of_row = split_of_rows(n, splits, shuffle=shuffle, seed=seed)
    counts = np.bincount(split_of_row * SYNTHETIC_CLASSES + classes,
                         minlength=splits * SYNTHETIC_CLASSES).reshape(splits, SYNTHETIC_CLASSES).astype(np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    eps, k = SYNTHETIC_EPSILON, SYNTHETIC_CLASSES
    marginal = ((1 - eps) * counts + eps * (rows - counts) / (k - 1)) / rows
    conditional = -(1 - eps) * math.log(1 - eps) - eps * math.log(eps / (k - 1))
    marginal_entropy = -(marginal * np.log(marginal)).sum(axis=1)
    return float(np.mean(np.exp(marginal_entropy - conditional)))


@dataclass(frozen=True)
class SplitSweep(FieldsAsDict):
    """IS per split count (shuffled and not) and exp(I) of the same rows."""

    published = ("improved_is",)

    dataset: str
    n: int
    num_classes: int
    split_counts: list[int]
    is_unshuffled: list[float]
    is_shuffled: list[float]
    improved_is: float
    exact_is: float | None

    @property
    def spread_percent(self) -> float:
        return spread_percent(self.is_unshuffled + self.is_shuffled)

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "spread_percent": self.spread_percent}


@dataclass(frozen=True)
class SampleCountSweep(FieldsAsDict):
    """IS (one split) against N on the synthetic set, and its exact value."""

    sample_counts: list[int]
    inception_scores: list[float]
    exact_is: float
    is_with_5000_per_split: float


@dataclass(frozen=True)
class VariantSpread:
    """IS of one sample set under named variants (weights or preprocessing), and their spread."""

    samples: str
    scores: dict[str, float]

    @property
    def spread_percent(self) -> float:
        return spread_percent(list(self.scores.values()))

    def to_dict(self) -> dict[str, object]:
        return {"samples": self.samples, "scores": self.scores, "spread_percent": self.spread_percent}


@dataclass(frozen=True)
class PrecisionShift(FieldsAsDict):
    """One sample set's IS and FID (against the domain's training images) in fp32 and under bf16 autocast."""

    samples: str
    is_fp32: float
    is_bf16: float
    fid_fp32: float
    fid_bf16: float

    @property
    def is_shift_percent(self) -> float:
        return 100 * (self.is_bf16 - self.is_fp32) / self.is_fp32

    @property
    def fid_shift_percent(self) -> float:
        return 100 * (self.fid_bf16 - self.fid_fp32) / self.fid_fp32 if self.fid_fp32 else math.nan

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "is_shift_percent": self.is_shift_percent, "fid_shift_percent": self.fid_shift_percent}


@dataclass(frozen=True)
class SensitivityResult:
    """The four sweeps, and JPEG: per sample set, IS as is and after a JPEG round trip at each quality.

    ``classifier_b`` names the second classifier of the weights axis (None when there is none).
    """

    splits: list[SplitSweep]
    sample_count: SampleCountSweep
    weights: list[VariantSpread]
    preprocessing: list[VariantSpread]
    jpeg: list[VariantSpread] = field(default_factory=list)
    classifier_b: str | None = None
    domain: dict[str, object] | None = None
    precision: list[PrecisionShift] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "splits": [s.to_dict() for s in self.splits],
            "sample_count": self.sample_count.to_dict(),
            "weights": [w.to_dict() for w in self.weights],
            "weights_published_spread_percent": {
                "value": PUBLISHED_WEIGHTS_SPREAD_PERCENT,
                "source": "Barratt & Sharma (2018): CIFAR-10, Inception v3 in Torch vs Keras; published, not measured here",
            },
            "preprocessing": [p.to_dict() for p in self.preprocessing],
            "jpeg": [j.to_dict() for j in self.jpeg],
            "classifier_b": self.classifier_b,
            "domain": self.domain,
            "precision": [shift.to_dict() for shift in self.precision],
        }


def split_sweep_real(domain: Domain | ImageClassifier, *, seed: int = 0) -> SplitSweep:
    """Split sweep on the domain's held-out real images (all N of them), for the SPLIT_COUNTS up to N."""
    domain = as_domain(domain)
    logits = logits_in_one_pass_if_small(domain.classifier, domain.real)
    counts = [s for s in SPLIT_COUNTS if s <= logits.shape[0]]
    unshuffled = [inception_score(logits, splits=s, track_stderr=False).is_mean for s in counts]
    shuffled = [inception_score(logits, splits=s, shuffle=True, seed=seed, track_stderr=False).is_mean for s in counts]
    return SplitSweep(f"held-out {domain.noun}", logits.shape[0], domain.num_classes, counts, unshuffled,
                      shuffled, inception_score(logits, splits=1, track_stderr=False).improved_is, None)


def split_sweep_digits(classifier: ImageClassifier, *, seed: int = 0) -> SplitSweep:
    """Split sweep on the held-out digits (:func:`split_sweep_real` of the digits domain)."""
    return split_sweep_real(classifier, seed=seed)


def split_sweep_synthetic(*, seed: int = 0) -> SplitSweep:
    """Split sweep on the synthetic K = 1000 set of 50,000 rows (computed once per seed and process)."""
    return copy.deepcopy(_split_sweep_synthetic(seed))


def sample_count_sweep(*, seed: int = 0) -> SampleCountSweep:
    """IS against N (one split) on the synthetic set (computed once per seed and process)."""
    return copy.deepcopy(_sample_count_sweep(seed))


# The synthetic sweeps depend on the seed alone (closed forms, the same on every torchrun rank): a second call in one
# process is free.
@functools.lru_cache(maxsize=4)
def _split_sweep_synthetic(seed: int) -> SplitSweep:
    unshuffled = [score_synthetic(SYNTHETIC_SAMPLES, splits=s, shuffle=False, seed=seed) for s in SPLIT_COUNTS]
    shuffled = [score_synthetic(SYNTHETIC_SAMPLES, splits=s, shuffle=True, seed=seed) for s in SPLIT_COUNTS]
    return SplitSweep("synthetic K = 1000", SYNTHETIC_SAMPLES, SYNTHETIC_CLASSES, list(SPLIT_COUNTS), unshuffled, shuffled,
                      unshuffled[0], synthetic_exact_is())


@functools.lru_cache(maxsize=4)
def _sample_count_sweep(seed: int) -> SampleCountSweep:
    scores = [score_synthetic(n, splits=1, shuffle=False, seed=seed) for n in SAMPLE_COUNTS]
    return SampleCountSweep(list(SAMPLE_COUNTS), scores, synthetic_exact_is(),
                            score_synthetic(SYNTHETIC_SAMPLES, splits=10, shuffle=False, seed=seed))


def perturbed_copy(classifier: ImageClassifier, relative_noise: float, seed: int) -> ImageClassifier:
    """A copy of ``classifier`` with N(0, (relative_noise * std(w))^2) added to every weight tensor.

    The noise is drawn on the CPU from a generator seeded with ``seed``, tensor by tensor in parameter order.
    """
    copied = copy.deepcopy(classifier)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weights in copied.parameters():
            noise = torch.randn(weights.shape, generator=generator, dtype=weights.dtype)
            weights.add_(relative_noise * weights.std() * noise.to(weights.device))
    return copied


def _is(classifier: ImageClassifier, images: torch.Tensor) -> float:
    return inception_score(classify(classifier, images), splits=1, track_stderr=False).is_mean


def weight_variants(classifier: ImageClassifier, label: str, *, classifier_b: ImageClassifier | None = None,
                    label_b: str | None = None, copies: int = WEIGHT_NOISE_SEEDS) -> dict[str, ImageClassifier]:
    """The weights axis: ``classifier``, ``classifier_b`` if given, and ``copies`` perturbed copies of
    ``classifier`` at each of WEIGHT_NOISE_LEVELS (relative std), labelled "LABEL + 1% noise (seed 0)"."""
    variants = {label: classifier}
    if classifier_b is not None:
        variants[label_b if label_b and label_b != label else f"{label_b or classifier_b.name} (second)"] = classifier_b
    for level in WEIGHT_NOISE_LEVELS:
        for seed in range(copies):
            variants[f"{label} + {int(100 * level)}% noise (seed {seed})"] = perturbed_copy(classifier, level, seed)
    return variants


def weight_sensitivity(sample_sets: dict[str, torch.Tensor],
                       classifiers: dict[str, ImageClassifier] | None = None) -> list[VariantSpread]:
    """Per sample set: IS under each of ``classifiers`` (default: the digits domain's classifier, its second
    classifier and perturbed copies of the first)."""
    if classifiers is None:
        domain = digits_domain()
        second = domain.auxiliary_classifier("second")
        classifiers = weight_variants(domain.classifier, domain.classifier_name, classifier_b=second,
                                      label_b=second.name)
    return [VariantSpread(name, {label: _is(c, images) for label, c in classifiers.items()})
            for name, images in sample_sets.items()]


def preprocessing_sensitivity(sample_sets: dict[str, torch.Tensor],
                              domain: Domain | ImageClassifier | None = None) -> list[VariantSpread]:
    """Per sample set: IS under each resize (RESIZE_VARIANTS), uint8 quantisation, and float64, with the domain's
    classifier reloaded under each option (default: digits). The sets should differ in size from its input."""
    domain = digits_domain() if domain is None else as_domain(domain)
    resized = {label: domain.classifier_variant(**options) for label, options in RESIZE_VARIANTS.items()}
    default = domain.classifier_variant()
    wide = domain.classifier_variant().to(torch.float64)
    results = []
    for name, images in sample_sets.items():
        scores = {label: _is(classifier, images) for label, classifier in resized.items()}
        scores["uint8 quantised (bilinear, antialias)"] = _is(default, quantise_to_uint8(images))
        scores["float64 (bilinear, antialias)"] = _is(wide, images.double())
        results.append(VariantSpread(name, scores))
    return results


def jpeg_round_trip(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Each image (N, C, H, W) in [0, 1], C = 1 (grey) or 3 (RGB), rounded to 8 bits, saved as JPEG at
    ``quality`` (1..100; Pillow's other defaults, e.g. 4:2:0 chroma subsampling for RGB) in memory and decoded:
    float32 (N, C, H, W) in [0, 1]. The 8-bit rounding is part of the round trip."""
    from PIL import Image

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise InvalidInputError(f"JPEG holds grey or RGB images: expected (N, 1 or 3, H, W), got {tuple(images.shape)}")
    if not 1 <= quality <= 100:
        raise InvalidInputError(f"{parameter('quality')} must be in 1..100 (JPEG's quality scale), got {quality}")
    pixels = (images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    decoded = []
    for array in pixels:
        buffer = io.BytesIO()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        decoded.append(np.asarray(Image.open(buffer)).reshape(array.shape))
    return torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float().div(255).contiguous()


def jpeg_sensitivity(classifier: ImageClassifier, sample_sets: dict[str, torch.Tensor],
                     qualities: tuple[int, ...] = JPEG_QUALITIES) -> list[VariantSpread]:
    """Per sample set: IS of the images as they are ("original") and after a JPEG round trip at each quality."""
    results = []
    for name, images in sample_sets.items():
        scores = {"original": _is(classifier, images)}
        scores.update({f"JPEG quality {q}": _is(classifier, jpeg_round_trip(images, q)) for q in qualities})
        results.append(VariantSpread(name, scores))
    return results


def precision_sensitivity(domain: Domain, sample_sets: dict[str, torch.Tensor], *,
                          n: int = PRECISION_SAMPLES) -> list[PrecisionShift]:
    """Per sample set (its first ``n`` images): IS, and FID against the domain's first ``n`` training images, in fp32
    and under bf16 autocast. ``n`` is small because bf16 is emulated, and slow, on CPUs without bf16 instructions."""
    from isgame.scoring.metrics.fid import frechet_distance
    from isgame.scoring.pipeline import classify_with_features

    half = domain.classifier_variant().set_precision("bf16")
    train = {"fp32": domain.train_outputs[1][:n], "bf16": classify_with_features(half, domain.train[:n])[1]}
    shifts = []
    for name, images in sample_sets.items():
        scores, distances = {}, {}
        for label, classifier in (("fp32", domain.classifier), ("bf16", half)):
            logits, features = classify_with_features(classifier, images[:n])
            scores[label] = inception_score(logits, splits=1, track_stderr=False).is_mean
            distances[label] = frechet_distance(train[label].double(), features.double())
        shifts.append(PrecisionShift(name, scores["fp32"], scores["bf16"], distances["fp32"], distances["bf16"]))
    return shifts


def sample_sets(domain: Domain, *, n: int = defaults.PROBE_SAMPLES, seed: int = defaults.SEED) -> dict[str, torch.Tensor]:
    """The probe's sample sets, (M, C, H, W) of the domain: its real images (at most ``n``), ``n`` KDE samples of
    its training images (bandwidth 0.4 x sqrt(D / 64)) and ``n`` uniform noise images."""
    bandwidth = KDE_BANDWIDTH * pca_bandwidth_scale(domain.image_shape)
    kde_samples = domain_kde(domain, seed=seed).sample(n, bandwidth=bandwidth, seed=seed)
    return {f"held-out {domain.noun}": domain.real[:n], f"KDE samples (bandwidth {bandwidth:.3g})": kde_samples,
            "uniform noise": domain.noise("uniform", n, seed=seed)}


#: images at the classifier's input of at least this many pixels a side are halved, not upscaled, for the resize axis
DOWNSCALE_FROM = 64


def at_another_size(domain: Domain, sets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The sets for the preprocessing axis: as they are when their size differs from the classifier's input,
    else bicubic-upscaled 4x (digits: 8x8 -> 32x32) so the classifier's resize acts; images of 64 px and more
    are instead halved (antialiased bilinear), which keeps memory at a quarter of the domain's, not 16 times it."""
    _, height, width = domain.image_shape
    if (height, width) != tuple(domain.classifier.input_size):
        return {f"{name}, {height}x{width} as they are": images for name, images in sets.items()}
    if min(height, width) >= DOWNSCALE_FROM:
        size = (height // 2, width // 2)
        return {f"{name}, halved to {size[0]}x{size[1]}": torch.nn.functional.interpolate(
                    images, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
                for name, images in sets.items()}

    def upscale(images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(images, scale_factor=UPSCALE_FACTOR, mode="bicubic",
                                               align_corners=False).clamp(0, 1)

    size = f"{UPSCALE_FACTOR * height}x{UPSCALE_FACTOR * width}"
    return {f"{name}, bicubic-upscaled to {size}": upscale(images) for name, images in sets.items()}


def second_classifier(domain: Domain, classifier_b: ImageClassifier | None) -> ImageClassifier | None:
    """``classifier_b`` once it reads the domain's images; by default the domain's own second classifier (the
    digits: the other shipped network), or None."""
    if classifier_b is None:
        return domain.auxiliary_classifier("second")
    if classifier_b is not None:
        check_classifier_fits(classifier_b, domain.real[:2], classifier_b.name)
        if classifier_b.num_classes != domain.num_classes:
            raise InvalidInputError(f"{parameter('classifier_b')} {classifier_b.name} has K = {classifier_b.num_classes} "
                                    f"classes but the domain's classifier has K = {domain.num_classes}; give a second "
                                    "classifier of the same classes")
    return classifier_b


def sensitivity_probe(domain: Domain | ImageClassifier, *, seed: int = defaults.SEED, n: int = defaults.PROBE_SAMPLES,
                      classifier_b: ImageClassifier | None = None,
                      weight_copies: int = WEIGHT_NOISE_SEEDS) -> SensitivityResult:
    """All the sweeps on ``domain``; ``classifier_b`` is the weights axis's second classifier (digits: digits-b),
    and ``weight_copies`` the perturbed copies of the domain's classifier per noise level."""
    domain = as_domain(domain)
    sets = sample_sets(domain, n=n, seed=seed)
    second = second_classifier(domain, classifier_b)
    variants = weight_variants(domain.classifier, domain.classifier_name, classifier_b=second,
                               label_b=None if second is None else second.name, copies=weight_copies)
    return SensitivityResult(
        splits=[split_sweep_real(domain, seed=seed), split_sweep_synthetic(seed=seed)],
        sample_count=sample_count_sweep(seed=seed),
        weights=weight_sensitivity(sets, variants),
        preprocessing=preprocessing_sensitivity(at_another_size(domain, sets), domain),
        jpeg=jpeg_sensitivity(domain.classifier, sets),
        classifier_b=None if second is None else second.name,
        domain=domain.describe(),
        precision=precision_sensitivity(domain, sets),
    )


class SensitivityDisplay(Display):
    """Four panels: IS vs splits (two datasets), IS vs N, and the weight / preprocessing spreads."""

    # Two rows of two: one row of four would be 21 in wide, shrunk to the report's page and its text with it.
    figsize = (12, 8.4)
    panels = 4
    rows = 2
    subplot_options = {"layout": "constrained"}

    def draw(self, axes) -> None:
        for ax, sweep in zip(axes[:2], self.result.splits):
            ax.plot(sweep.split_counts, sweep.is_unshuffled, marker="o", label="IS, contiguous splits")
            ax.plot(sweep.split_counts, sweep.is_shuffled, marker="x", linestyle="--", label="IS, shuffled splits")
            ax.axhline(sweep.improved_is, color="#e78ac3", label=f"exp(I), all rows = {sweep.improved_is:.2f}")
            if sweep.exact_is is not None:
                ax.axhline(sweep.exact_is, color="black", linestyle=":", label=f"exact IS = {sweep.exact_is:.1f}")
            ax.set_xscale("log")
            ax.set_xlabel("number of splits")
            ax.set_ylabel("Inception Score")
            ax.set_title(f"{sweep.dataset}, N = {sweep.n}")
            ax.legend(fontsize=7)
        count = self.result.sample_count
        ax = axes[2]
        ax.plot(count.sample_counts, count.inception_scores, marker="o", label="IS, one split")
        ax.axhline(count.exact_is, color="black", linestyle=":", label=f"exact IS = {count.exact_is:.1f}")
        ax.axvline(5000, color="grey", linestyle="--", label="5,000 (one customary split)")
        ax.set_xscale("log")
        ax.set_xlabel("N samples")
        ax.set_ylabel("Inception Score")
        ax.set_title("synthetic K = 1000: IS vs N")
        ax.legend(fontsize=7)
        ax = axes[3]
        groups = [("weights", self.result.weights, "#66c2a5"), ("preproc.", self.result.preprocessing, "#fc8d62"),
                  ("JPEG", self.result.jpeg, "#8da0cb")]
        bars = [(f"{group}: {spread.samples.split(',')[0]}", spread.spread_percent, colour)
                for group, spreads, colour in groups for spread in spreads]
        bars += [(f"bf16: {shift.samples.split(',')[0]}", abs(shift.is_shift_percent), "#e78ac3")
                 for shift in self.result.precision]
        ax.barh(range(len(bars)), [value for _, value, _ in bars], color=[colour for _, _, colour in bars])
        ax.axvline(PUBLISHED_WEIGHTS_SPREAD_PERCENT, color="black", linestyle=":", label="11.5% (published, Inception v3)")
        ax.set_yticks(range(len(bars)), [label for label, _, _ in bars], fontsize=7)
        ax.set_xlabel("IS spread, % of mean (bf16: |shift| from fp32)")
        ax.set_title("weights, preprocessing, JPEG and precision" if self.result.precision else
                     "weights, preprocessing and JPEG" if self.result.jpeg else "weights and preprocessing")
        ax.legend(fontsize=7)
