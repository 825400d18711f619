"""Sensitivity: how much do splits, sample count, weights and preprocessing move the IS?

* Splits: IS for 1..100 splits (shuffled or not) against the split-free mutual information,
  on the held-out digits and on a synthetic K = 1000 set.
* Sample count: IS against N on the synthetic set, against its exact value.
* Weights: the same samples under ``digits``, ``digits-b`` and randomly perturbed weights.
* Preprocessing: resize interpolation and antialias, uint8 quantisation, float32 vs float64.

The synthetic set: class c uniform over K, p(y|x) = 1 - eps on c and eps / (K - 1) elsewhere.
Its marginal is uniform, so its exact IS is K exp(-(h(eps) + eps ln(K - 1))), with h the
binary entropy in nats; finite samples estimate the marginal, and so the IS, with a downward bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from isgame.probes.generators import KdeGenerator
from isgame.scoring.accumulator import InceptionScoreAccumulator
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.digits_data import digits_split
from isgame.scoring.distributed import current_group
from isgame.scoring.inception_score import inception_score
from isgame.scoring.preprocessing import RESIZE_VARIANTS, quantise_to_uint8
from isgame.scoring.score_result import spread_percent, with_legacy_json_keys
from isgame.scoring.pipeline import classify
from isgame.scoring.samples import open_images

SPLIT_COUNTS = (1, 2, 5, 10, 20, 50, 100)
SAMPLE_COUNTS = (500, 1000, 2000, 5000, 10_000, 20_000, 50_000)
SYNTHETIC_CLASSES = 1000
SYNTHETIC_EPSILON = 0.1
SYNTHETIC_SAMPLES = 50_000
WEIGHT_NOISE_LEVELS = (0.01, 0.02, 0.05)
WEIGHT_NOISE_SEEDS = 5
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


def score_synthetic(n: int, *, splits: int, shuffle: bool, seed: int = 0, batch: int = 5000) -> float:
    """Classic IS of the first ``n`` synthetic rows, streamed (sharded by global row under torchrun)."""
    accumulator = InceptionScoreAccumulator(SYNTHETIC_CLASSES, splits=splits, total=n, shuffle=shuffle, seed=seed,
                                            kind="probs", track_stderr=False)
    first, last = current_group().shard(n)
    accumulator.seek(first)
    for start in range(first, last, batch):
        accumulator.update(synthetic_probabilities(start, min(start + batch, last), seed=seed))
    accumulator.all_reduce()
    return accumulator.compute().is_mean


@dataclass(frozen=True)
class SplitSweep:
    """IS per split count (shuffled and not) and exp(I) of the same rows."""

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
        return {**with_legacy_json_keys(dict(vars(self)), ("improved_is",)), "spread_percent": self.spread_percent}


@dataclass(frozen=True)
class SampleCountSweep:
    """IS (one split) against N on the synthetic set, and its exact value."""

    sample_counts: list[int]
    inception_scores: list[float]
    exact_is: float
    is_with_5000_per_split: float

    def to_dict(self) -> dict[str, object]:
        return dict(vars(self))


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
class SensitivityResult:
    splits: list[SplitSweep]
    sample_count: SampleCountSweep
    weights: list[VariantSpread]
    preprocessing: list[VariantSpread]

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
        }


def split_sweep_digits(classifier: ImageClassifier, *, seed: int = 0) -> SplitSweep:
    """Split sweep on the held-out digits."""
    with torch.no_grad():
        logits = classifier(digits_split().test_images)
    unshuffled = [inception_score(logits, splits=s, track_stderr=False).is_mean for s in SPLIT_COUNTS]
    shuffled = [inception_score(logits, splits=s, shuffle=True, seed=seed, track_stderr=False).is_mean for s in SPLIT_COUNTS]
    return SplitSweep("held-out digits", logits.shape[0], classifier.num_classes, list(SPLIT_COUNTS), unshuffled, shuffled,
                      inception_score(logits, splits=1, track_stderr=False).improved_is, None)


def split_sweep_synthetic(*, seed: int = 0) -> SplitSweep:
    """Split sweep on the synthetic K = 1000 set of 50,000 rows."""
    unshuffled = [score_synthetic(SYNTHETIC_SAMPLES, splits=s, shuffle=False, seed=seed) for s in SPLIT_COUNTS]
    shuffled = [score_synthetic(SYNTHETIC_SAMPLES, splits=s, shuffle=True, seed=seed) for s in SPLIT_COUNTS]
    return SplitSweep("synthetic K = 1000", SYNTHETIC_SAMPLES, SYNTHETIC_CLASSES, list(SPLIT_COUNTS), unshuffled, shuffled,
                      unshuffled[0], synthetic_exact_is())


def sample_count_sweep(*, seed: int = 0) -> SampleCountSweep:
    """IS against N (one split) on the synthetic set."""
    scores = [score_synthetic(n, splits=1, shuffle=False, seed=seed) for n in SAMPLE_COUNTS]
    return SampleCountSweep(list(SAMPLE_COUNTS), scores, synthetic_exact_is(),
                            score_synthetic(SYNTHETIC_SAMPLES, splits=10, shuffle=False, seed=seed))


def perturbed_copy(classifier: ImageClassifier, relative_noise: float, seed: int) -> ImageClassifier:
    """A copy of ``classifier`` with N(0, (relative_noise * std(w))^2) added to every weight tensor."""
    copy = load_classifier(classifier.name)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in copy.parameters():
            parameter.add_(relative_noise * parameter.std() * torch.randn(parameter.shape, generator=generator))
    return copy


def _is(classifier: ImageClassifier, images: torch.Tensor) -> float:
    return inception_score(classify(classifier, images), splits=1, track_stderr=False).is_mean


def weight_sensitivity(sample_sets: dict[str, torch.Tensor]) -> list[VariantSpread]:
    """Per sample set: IS under digits, digits-b and perturbed copies of digits."""
    base = {name: load_classifier(name) for name in ("digits", "digits-b")}
    perturbed = {f"digits + {int(100 * level)}% noise (seed {seed})": perturbed_copy(base["digits"], level, seed)
                 for level in WEIGHT_NOISE_LEVELS for seed in range(WEIGHT_NOISE_SEEDS)}
    return [VariantSpread(name, {label: _is(c, images) for label, c in {**base, **perturbed}.items()})
            for name, images in sample_sets.items()]


def preprocessing_sensitivity(sample_sets: dict[str, torch.Tensor]) -> list[VariantSpread]:
    """Per 32x32 sample set: IS under each resize, uint8 quantisation, and float64."""
    results = []
    for name, images in sample_sets.items():
        scores = {label: _is(load_classifier("digits", **options), images) for label, options in RESIZE_VARIANTS.items()}
        default = load_classifier("digits")
        scores["uint8 quantised (bilinear, antialias)"] = _is(default, quantise_to_uint8(images))
        scores["float64 (bilinear, antialias)"] = _is(default.to(torch.float64), images.double())
        results.append(VariantSpread(name, scores))
    return results


def sensitivity_probe(classifier: ImageClassifier, *, seed: int = 0) -> SensitivityResult:
    """All four sweeps; the sample sets are the held-out digits, KDE samples and uniform noise."""
    split = digits_split()
    kde_samples = KdeGenerator(split.train_images, seed=seed).sample(1000, bandwidth=0.4, seed=seed)
    noise = open_images("noise:uniform", n=1000, seed=seed).load_all()
    sets_8 = {"held-out digits": split.test_images, "KDE samples (bandwidth 0.4)": kde_samples, "uniform noise": noise}

    def upscale(images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(images, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)

    sets_32 = {f"{name}, bicubic-upscaled to 32x32": upscale(images) for name, images in sets_8.items()}
    return SensitivityResult(
        splits=[split_sweep_digits(classifier, seed=seed), split_sweep_synthetic(seed=seed)],
        sample_count=sample_count_sweep(seed=seed),
        weights=weight_sensitivity(sets_8),
        preprocessing=preprocessing_sensitivity(sets_32),
    )


class SensitivityDisplay:
    """Four panels: IS vs splits (two datasets), IS vs N, and the weight / preprocessing spreads."""

    def __init__(self, result: SensitivityResult) -> None:
        self.result = result


    def plot(self, *, axes=None) -> "SensitivityDisplay":
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 4, figsize=(21, 4.2), gridspec_kw={"width_ratios": [1, 1, 1, 1.4]}, layout="constrained")
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
        labels = [f"weights: {w.samples}" for w in self.result.weights] + [
            f"preproc.: {p.samples.split(',')[0]}" for p in self.result.preprocessing]
        spreads = [w.spread_percent for w in self.result.weights] + [p.spread_percent for p in self.result.preprocessing]
        ax.barh(range(len(spreads)), spreads, color=["#66c2a5"] * len(self.result.weights) + ["#fc8d62"] * len(self.result.preprocessing))
        ax.axvline(PUBLISHED_WEIGHTS_SPREAD_PERCENT, color="black", linestyle=":", label="11.5% (published, Inception v3)")
        ax.set_yticks(range(len(spreads)), labels, fontsize=7)
        ax.set_xlabel("IS spread, % of mean")
        ax.set_title("weights and preprocessing")
        ax.legend(fontsize=7)
        self.axes_, self.figure_ = axes, axes[0].figure
        return self
