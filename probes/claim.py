"""Checking a claimed Inception Score: evidence functions and two pure answers (behind ``isgame check``).

A claim is a number computed under a protocol: a dialect (:mod:`scoring.dialects`, default the
original openai code), a split count (default 10) and a sample count (default all samples). The
check gives two answers, each with its reasons:

* **reproduced**: the claim lies within the protocol's value ± its spread on these samples, the
  spread being the protocol's own std over its splits (in its dialect's convention) plus half a unit
  of the claim's last printed decimal (a claim of 8.67 stands for 8.665 to 8.675). The other dialects
  and preprocessing variants (resize filter, antialias, uint8) are recomputed as *context*: when the
  claim misses its protocol they say which convention would give it; they never widen the range.
* **meaningful**: the number says something about the samples. It does not when most samples sit
  nearer uniform noise than real reference images, when the classifier is no more confident on them
  than on uniform noise at its own input size (out of its domain), or when they are copied from the
  training set, wholly (C_T below ``COPYING_CT_LIMIT``) or in part (more near-copies than held-out
  images give: :func:`near_copy_test`); the copying tests need ``train`` and ``reference``.

Every set is scored at its own stored size (the classifier resizes it on the way in), so the resize
variants are recomputed from the samples as stored. The pixel tests (nearer noise, C_T, authenticity,
near-copies) compare flattened pixels, which needs one shape: the sets' own when they agree, else the
samples' stored shape (``pixel_space`` in the result says which, :func:`pixel_space` why).

Further evidence: the sample count (N against K and the splits), the noise baseline, the gaming
ceiling (how far the inflate attack lifts noise in 20 steps), the predicted-class histogram, and
the claim's gameability (:func:`gameability_evidence`): how many inflate steps take noise to the
claim, the smallest L∞ ε at which these samples themselves reach it, and whether the training images
already exceed it. Gameability informs the meaningfulness reasons; it decides neither answer.
Only the application maps the two answers to exit codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from isgame import defaults
from isgame._moved import warn_renamed
from isgame.attacks.inflate import InflateAttack
from isgame.attacks.score_protocol import ScoreProtocol
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.base import ImageClassifier, resize, to_channels
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.copy_detectors import (
    CT_BAND,
    CT_CELLS,
    authenticity,
    ct_verdict,
    data_copying_test,
    flatten_images,
    nearest_distances,
)
from isgame.scoring.metrics.dialects import DIALECTS, DialectScore, dialect_table, logits_of_truncated, score_dialect
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.metrics.sample_order import sample_order_of_logits
from isgame.scoring.pipeline import classify
from isgame.scoring.plotting import Display
from isgame.scoring.sources.preprocessing import RESIZE_VARIANTS, quantise_to_uint8

#: the resize variants a claim is recomputed under, in report order (labels of RESIZE_VARIANTS)
CHECK_RESIZE_VARIANTS = ("bilinear, antialias", "bilinear, no antialias", "bicubic, antialias", "nearest")
#: samples the check's grid shows, a seeded random draw
EXAMPLE_COUNT = 50
#: the gaming ceiling: how many noise images the inflate attack lifts, and in how many steps
CEILING_SAMPLES, CEILING_STEPS = 500, 20
#: a C_T cell counts in check's copying test with at least this many samples (more for large N: N / 50)
CHECK_CT_MIN_PER_CELL = 5
#: the noise baseline scores at least this many noise images (and as many as the samples, up to 2000)
NOISE_BASELINE_MIN = 20
#: the samples are "not meaningful" when at least this fraction sits nearer noise than real images
NOISE_LIKE_LIMIT = 0.5
#: the samples are "not meaningful" (copied) when C_T is at or below this: the band of every C_T verdict
COPYING_CT_LIMIT = -CT_BAND
#: a sample is a near-copy when nearer the training set than this quantile of the held-out images' distances (the
#: memorisation probe's :func:`~isgame.scoring.metrics.copy_detectors.nearest_training_test` threshold)
NEAR_COPY_QUANTILE = 0.01
#: the samples are "not meaningful" (partly copied) when the near-copy test's p-value is below this
NEAR_COPY_ALPHA = 0.01
#: most pixel values the reference and training images may hold once resized to the samples' shape for the pixel
#: tests (2 GB as float64); beyond, every set is compared at the smallest stored shape
PIXEL_SPACE_BUDGET = 250_000_000
#: the protocol a claim is taken to use unless told otherwise: the original openai code, 10 splits
DEFAULT_CLAIMED_DIALECT, DEFAULT_CLAIMED_SPLITS = "openai", 10
#: gameability: the bytes of saved activations the ε-bounded ascent may hold (it runs all samples as one batch)
GAMEABILITY_ACTIVATION_BUDGET = 2**31


@dataclass(frozen=True)
class CheckResult:
    """The evidence about a claim and the two answers: ``reproduced`` and ``meaningful``, each with its reasons.

    ``verdict`` names both answers in one string; ``reasons`` is ``reproduced_reasons + meaningful_reasons``.
    ``recomputed`` holds the context (every dialect and preprocessing variant); ``within_spread`` says
    whether the claim lies anywhere in that context's range, which is *not* the reproduction test.
    """

    claimed: float
    claimed_std: float
    claimed_splits: int
    claimed_n: int
    claimed_dialect: str
    n: int
    num_classes: int
    classifier: str
    protocol: dict[str, object]
    reproduced: bool
    meaningful: bool
    reproduced_reasons: list[str]
    meaningful_reasons: list[str]
    recomputed: dict[str, float]
    within_spread: bool
    sample_count: dict[str, object]
    noise_baseline: dict[str, float | None]
    gaming_ceiling: dict[str, float] | None
    images_vs_noise: dict[str, float | None]
    memorization: dict[str, float] | None
    class_histogram: list[int]
    verdict: str
    reasons: list[str]
    examples: torch.Tensor = field(repr=False, default=None)
    #: the runs test of the samples' top-1 labels (:mod:`isgame.scoring.metrics.sample_order`), with the IS both ways
    #: when class-sorted samples meet the claim's contiguous splits
    sample_order: dict[str, object] | None = None
    #: what it takes to reach the claim (:func:`gameability_evidence`): inflate steps from noise, the samples' own
    #: smallest L∞ ε, the training images' score; None without the attacks
    gameability: dict[str, object] | None = None
    #: where the pixel tests compare (:func:`pixel_space`): ``shape`` (C, H, W), the sets' stored ``shapes``, whether
    #: some were ``resized`` to get one shape, and ``at`` which shape
    pixel_space: dict[str, object] | None = None
    #: the rows of ``examples`` among the samples: a seeded random draw (a folder sorted by kind would show one kind)
    example_rows: list[int] | None = None

    @property
    def spread(self) -> tuple[float, float]:
        """The lowest and highest figure over every dialect and preprocessing variant (context)."""
        values = list(self.recomputed.values())
        return min(values), max(values)

    def to_dict(self) -> dict[str, object]:
        low, high = self.spread
        out = {key: value for key, value in vars(self).items() if key != "examples"}
        for key in ("within_spread", "reproduced", "meaningful"):
            out[key] = bool(out[key])
        return {**out, "spread_min": low, "spread_max": high}


@dataclass(frozen=True)
class ClaimAnswers:
    """The two answers about a claim, each with the reasons that decided it (and those that inform it)."""

    reproduced: bool
    reproduced_reasons: list[str]
    meaningful: bool
    meaningful_reasons: list[str]
    within_spread: bool

    @property
    def verdict(self) -> str:
        """Both answers in one string: ``reproduced, meaningful``, ``not reproduced, not meaningful``, ..."""
        return (f"{'' if self.reproduced else 'not '}reproduced, "
                f"{'' if self.meaningful else 'not '}meaningful")

    @property
    def reasons(self) -> list[str]:
        return [*self.reproduced_reasons, *self.meaningful_reasons]


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


def pixel_space(classifier: ImageClassifier, samples: torch.Tensor,
                others: dict[str, torch.Tensor | None]) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, object]]:
    """The samples and the other sets (``reference``, ``train``; None left out) at one (C, H, W) for the pixel tests,
    and a record of it (``shape``, the stored ``shapes``, ``resized``, ``at``).

    As stored when they agree. Otherwise at the samples' stored shape, the other sets converted and resized to it
    with the classifier's filter: shrinking the samples would blur a copy of a training image as much as the
    training image differs from its neighbours (a 32 px copy of an 8 px digit, shrunk back, is no nearer its
    original than held-out digits are). When the other sets at that shape would exceed
    :data:`PIXEL_SPACE_BUDGET` values, every set goes to the smallest stored shape instead."""
    present = {name: images for name, images in others.items() if images is not None}
    shapes = {"samples": list(samples.shape[1:])} | {name: list(images.shape[1:]) for name, images in present.items()}
    if len({tuple(shape) for shape in shapes.values()}) <= 1:
        return samples, present, {"shape": shapes["samples"], "shapes": shapes, "resized": False, "at": "as stored"}
    target, at = tuple(samples.shape[1:]), "the samples' stored shape"
    if math.prod(target) * sum(images.shape[0] for images in present.values()) > PIXEL_SPACE_BUDGET:
        target, at = min((tuple(shape) for shape in shapes.values()), key=math.prod), "the smallest stored shape"

    def conformed(images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[1:]) == target:
            return images
        with torch.no_grad():
            return torch.cat([resize(to_channels(batch.float(), target[0]), target[1:],
                                     interpolation=classifier.interpolation, antialias=classifier.antialias)
                              for batch in images.split(256)])

    return conformed(samples), {name: conformed(images) for name, images in present.items()}, {
        "shape": list(target), "shapes": shapes, "resized": True, "at": at}


def protocol_score(logits: torch.Tensor, *, dialect: str, splits: int,
                   truncated_logits: torch.Tensor | None = None) -> DialectScore:
    """The claim's protocol on these logits: ``dialect`` with ``splits`` splits (barratt-sharma has none).

    ``truncated_logits`` are those of the uint8-truncated images, which torchmetrics scores.
    """
    use = truncated_logits if dialect == "torchmetrics" and truncated_logits is not None else logits
    return score_dialect(use, dialect, splits=splits)


def recompute_claim(classifier: ImageClassifier, classifier_name: str, samples: torch.Tensor, logits: torch.Tensor, *,
                    splits: int, dialect: str = DEFAULT_CLAIMED_DIALECT,
                    truncated_logits: torch.Tensor | None = None, weights=None) -> dict[str, float]:
    """Context for a claim: the samples' IS under every dialect (each at its own defaults) and under every
    preprocessing variant (resize filter, antialias, uint8), the latter scored with the claim's protocol.

    ``classifier`` is ``load_classifier(classifier_name, weights=weights)``, ``logits`` its logits of ``samples``
    and ``truncated_logits`` those of their uint8-truncated copies (torchmetrics' dialect scores those).
    """
    recomputed = {}
    # Every dialect's default is 10 splits; fewer samples than that get one sample a split (context only).
    few = None if logits.shape[0] >= DEFAULT_CLAIMED_SPLITS else logits.shape[0]
    for score in dialect_table(logits, splits=few).scores:
        if score.dialect == "torchmetrics" and truncated_logits is not None:
            score = score_dialect(truncated_logits, "torchmetrics", splits=few)
        recomputed[f"dialect {score.dialect}"] = score.is_mean
    # Samples already at the classifier's input size are not resized, so every filter gives the same logits;
    # samples already on the uint8 grid do not change when quantised. Neither runs the network again.
    unresized = tuple(samples.shape[-2:]) == tuple(classifier.input_size)
    for label in CHECK_RESIZE_VARIANTS:
        if unresized:
            variant_logits = logits
        else:
            variant = load_classifier(classifier_name, weights=weights, device=classifier.device,
                                      **RESIZE_VARIANTS[label])
            variant_logits = classify(variant, samples)
        recomputed[f"preprocessing: {label}"] = score_dialect(variant_logits, dialect, splits=splits).is_mean
    quantised = quantise_to_uint8(samples)
    quantised_logits = logits if torch.equal(quantised, samples) else classify(classifier, quantised)
    recomputed["preprocessing: uint8 quantised"] = score_dialect(quantised_logits, dialect, splits=splits).is_mean
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
    """E[H(y|x)] in bits of the samples, of uniform noise (at the classifier's input size) and of real reference
    images, against log2 K."""
    def conditional_bits(images: torch.Tensor) -> float:
        return inception_score(classify(classifier, images), splits=1, track_stderr=False).conditional_entropy_bits

    return {"samples_bits": samples_bits, "uniform_noise_bits": conditional_bits(noise),
            "uniform_noise_shape": list(noise.shape[1:]),
            "reference_bits": None if reference is None else conditional_bits(reference),
            "max_bits": math.log2(classifier.num_classes)}


def gaming_ceiling(classifier: ImageClassifier, *, seed: int = 0, samples: int = CEILING_SAMPLES,
                   steps: int = CEILING_STEPS) -> dict[str, float]:
    """How far the inflate attack lifts ``samples`` uniform noise images in a fixed budget of ``steps`` steps."""
    if samples < 1 or steps < 1:
        raise InvalidInputError(f"the gaming ceiling needs {parameter('steps')} >= 1 and at least one sample, got "
                                f"steps={steps}, samples={samples}")
    shape = (samples, classifier.input_channels, *classifier.input_size)
    start = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    ceiling = InflateAttack(steps=steps, splits=min(10, samples))(classifier, start)
    return {"inflated_is": ceiling.final_is, "from_noise_is": ceiling.initial_is, "steps": ceiling.steps,
            "seconds": ceiling.seconds, "num_classes": classifier.num_classes, "samples": samples}


def gameability_evidence(classifier: ImageClassifier, samples: torch.Tensor, *, claimed: float, dialect: str,
                         splits: int, logits: torch.Tensor, train: torch.Tensor | None = None, seed: int = 0,
                         steps: int = CEILING_STEPS) -> dict[str, object]:
    """What it takes to reach ``claimed`` under the claim's protocol (``dialect``, ``splits``), on these samples.

    * ``inflate``: the inflate attack (:class:`~isgame.attacks.inflate.InflateAttack`) on min(500, N) uniform noise
      images of the samples' shape, at most ``steps`` steps, stopping at the claim: the steps its trace (the
      contiguous-split IS with the claim's split count) needs, None when not within the budget.
    * ``samples``: the smallest L∞ ε at which the samples themselves reach the claim (the ε-bounded ascent,
      :func:`~isgame.attacks.ball_ascent.maximise_score`, strategy auto without the own-class PGD, its grid
      0..32/255 and bisection, stopping at the claim), 0 when
      they already do, None when no grid ε does; the protocol's exact ceiling over any predictions says when no
      perturbation can (then the attack is not run), and a set whose gradients would not fit
      :data:`GAMEABILITY_ACTIVATION_BUDGET` in one batch is not attacked either (``skipped`` says why).
    * ``train``: the training images' score under the protocol, and whether it reaches the claim.

    ``logits`` are the classifier's logits of ``samples``. ``sentence`` says it in one line.
    """
    protocol = ScoreProtocol(dialect, splits)
    n, k = logits.shape
    out: dict[str, object] = {"claimed": claimed, "protocol": protocol.to_dict()}
    count = min(CEILING_SAMPLES, n)
    noise_protocol = ScoreProtocol("openai", min(protocol.split_count, count))
    if claimed > noise_protocol.balanced_ceiling(count, k):
        out["inflate"] = {"steps": None, "samples": count, "skipped": f"the claim is above the ceiling of "
                          f"{noise_protocol.balanced_ceiling(count, k):.4f} for {count} samples"}
    else:
        start = torch.rand((count, *samples.shape[1:]), generator=torch.Generator().manual_seed(seed))
        inflated = InflateAttack(steps=steps, splits=noise_protocol.split_count,
                                 target_fraction_of_k=claimed / k)(classifier, start)
        reached = next((t.step for t in inflated.trace if t.is_mean >= claimed), None)
        out["inflate"] = {"steps": reached, "samples": count, "budget": steps, "final_is": inflated.final_is,
                          "protocol_score": protocol.score(classify(classifier, inflated.images))
                          if count >= protocol.split_count else None}
    out["samples"] = _samples_epsilon(classifier, samples, logits, protocol, claimed=claimed, steps=steps, seed=seed)
    if train is None:
        out["train"] = None
    else:
        train_score = ScoreProtocol(dialect, min(splits, train.shape[0])).score(classify(classifier, train))
        out["train"] = {"score": train_score, "n": int(train.shape[0]), "exceeds_claim": train_score >= claimed}
    out["sentence"] = gameability_sentence(out)
    return out


def _samples_epsilon(classifier: ImageClassifier, samples: torch.Tensor, logits: torch.Tensor,
                     protocol: ScoreProtocol, *, claimed: float, steps: int, seed: int) -> dict[str, object]:
    """The smallest L∞ ε at which ``samples`` reach ``claimed`` under ``protocol`` (see
    :func:`gameability_evidence`): 0 when they already do; ``skipped`` says why they were not attacked."""
    from isgame.attacks.ball_ascent import ASCENT_STEPS, maximise_score
    from isgame.attacks.chunk_size import saved_activation_bytes_per_row

    n, k = logits.shape
    clean = protocol.score(logits)
    ceiling = protocol.balanced_ceiling(n, k)
    answer: dict[str, object] = {"norm": "linf", "clean_score": clean, "ceiling": ceiling, "epsilon": None,
                                 "bracket": None, "best_score": None, "largest_epsilon": None, "skipped": None}
    if clean >= claimed:
        answer.update(epsilon=0.0, bracket=[0.0, 0.0], best_score=clean)
    elif claimed > ceiling:
        answer["skipped"] = (f"the claim is above {ceiling:.4f}, the most any predictions of {n} samples can score "
                             "under its protocol")
    else:
        model_input = classifier.preprocess(samples[:1]).float()
        needed = saved_activation_bytes_per_row(classifier, model_input) * n
        if needed > GAMEABILITY_ACTIVATION_BUDGET:
            answer["skipped"] = (f"attacking all {n} samples in one batch would hold about {needed / 2**30:.1f} GiB "
                                 "of activations; pass fewer samples")
        else:
            result = maximise_score(classifier, samples, norm="linf", protocol=protocol, percents=(),
                                    goals={"claim": claimed}, compare_cycling=False, baseline=False,
                                    stop_at_goals=True, steps=min(steps, ASCENT_STEPS), seed=seed)
            search = result.thresholds["claim"]
            answer.update(epsilon=search.epsilon, bracket=None if search.bracket is None else list(search.bracket),
                          best_score=max(s.is_mean for s in result.scores), largest_epsilon=result.epsilons[-1],
                          seconds=result.seconds)
    return answer


def _eps255(epsilon: float) -> str:
    return f"{epsilon * 255:.3g}/255"


def gameability_sentence(gameability: dict[str, object]) -> str:
    """One sentence: the samples' own ε, the inflate steps from noise, and the training images against the claim."""
    claimed = f"{gameability['claimed']:g}"
    answer = gameability["samples"]
    if answer["epsilon"] == 0:
        parts = [f"these samples already score {answer['clean_score']:.4f}, at or above the claimed {claimed}, with "
                 "no perturbation"]
    elif answer["epsilon"] is not None:
        parts = [f"a perturbation of {_eps255(answer['epsilon'])} of these samples reaches the claimed {claimed} "
                 f"(L∞; bracket {_eps255(answer['bracket'][0])}-{_eps255(answer['bracket'][1])})"]
    elif answer["skipped"] is not None:
        parts = [f"the samples were not attacked: {answer['skipped']}"]
    else:
        parts = [f"no L∞ perturbation up to {_eps255(answer['largest_epsilon'])} of these samples reaches the claimed "
                 f"{claimed} (best {answer['best_score']:.4f})"]
    inflate = gameability["inflate"]
    if inflate["steps"] is not None:
        parts.append(f"the inflate attack takes uniform noise there in {inflate['steps']} "
                     f"step{'' if inflate['steps'] == 1 else 's'}")
    else:
        parts.append("the inflate attack does not take uniform noise there " +
                     (f"within {inflate['budget']} steps" if "budget" in inflate else f"({inflate['skipped']})"))
    train = gameability.get("train")
    if train is not None:
        parts.append(f"the training images {'already exceed' if train['exceeds_claim'] else 'stay below'} it "
                     f"({train['score']:.4f})")
    return "Gameability: " + "; ".join(parts) + "."


def near_copy_test(train: np.ndarray, held_out: np.ndarray, generated: np.ndarray, *,
                   quantile: float = NEAR_COPY_QUANTILE) -> dict[str, float | int]:
    """How many generated rows (M, D) are near-copies of ``train`` (N, D), against what ``held_out`` rows (m, D)
    of the same kind show: a row is a near-copy when its nearest training row lies within the threshold, the
    ``quantile`` quantile of the held-out rows' nearest-training distances (numpy's linear interpolation, as
    :func:`~isgame.scoring.metrics.copy_detectors.nearest_training_test`).

    The test is one-sided and exact without a distribution of the distances. If the samples lie as far from the
    training set as held-out images do, the share of that distribution below the j-th smallest of m held-out
    distances is Beta(j, m - j + 1), so the count of M samples below it is beta-binomial(M, j, m - j + 1). The
    threshold lies at or below the j-th smallest distance with j = ceil((m - 1) q) + 1, so that count's upper
    tail bounds the p-value of the count observed (conservative: it allows for the threshold's own sampling
    error, which a binomial test against q ignores). ``expected_fraction`` is j / (m + 1)."""
    from scipy.stats import betabinom

    d_generated, d_held_out = nearest_distances(train, generated), nearest_distances(train, held_out)
    threshold = float(np.quantile(d_held_out, quantile))
    count, rows, m = int(np.sum(d_generated <= threshold)), generated.shape[0], held_out.shape[0]
    j = math.ceil((m - 1) * quantile) + 1
    p_value = float(betabinom.sf(count - 1, rows, j, m - j + 1)) if count > 0 else 1.0
    return {"near_copy_fraction": count / rows, "near_copy_count": count, "near_copy_samples": rows,
            "near_copy_threshold": threshold,
            "near_copy_quantile": quantile, "near_copy_expected_fraction": j / (m + 1),
            "near_copy_p_value": p_value, "near_copies": p_value < NEAR_COPY_ALPHA,
            "median_distance_ratio": float(np.median(d_generated) / np.median(d_held_out))
            if np.median(d_held_out) > 0 else math.inf}


def memorization_evidence(samples: torch.Tensor, train: torch.Tensor, reference: torch.Tensor, *,
                          seed: int = 0) -> dict[str, object]:
    """C_T, authenticity and the near-copy test of the samples against the training images, with the reference
    images as the held-out set, all in pixel space (the three sets at one shape, :func:`pixel_space`)."""
    train_pixels, sample_pixels, reference_pixels = (flatten_images(x) for x in (train, samples, reference))
    # A cell enters C_T with at least 5 samples here: fewer than 10 cells when the samples or the real images
    # number under 50, so that one can fill (a handful of 299 px images).
    per_cell = max(CHECK_CT_MIN_PER_CELL, samples.shape[0] // 50)
    cells = min(CT_CELLS, max(1, min(samples.shape[0], reference.shape[0]) // per_cell))
    copying = data_copying_test(train_pixels, reference_pixels, sample_pixels, seed=seed, cells=cells,
                                generated_per_cell_above=per_cell - 1)
    return {"space": "pixels " + "x".join(str(d) for d in samples.shape[1:]), "held_out": "the real reference images",
            "ct_statistic": copying.ct_statistic, "authenticity": authenticity(train_pixels, sample_pixels),
            "ct_cells": cells, **near_copy_test(train_pixels, reference_pixels, sample_pixels),
            "near_copy_rule": (f"a sample is a near-copy when nearer a training image than the {NEAR_COPY_QUANTILE:g} "
                               "quantile of the reference images' distances; copies when the one-sided beta-binomial "
                               f"p-value of the count is below {NEAR_COPY_ALPHA:g}"),
            "metrics_differ": ("isgame metrics computes C_T and authenticity on the classifier's features with REAL "
                               "as the held-out set; check compares pixels, where a near-copy is a copy whatever "
                               "the classifier makes of it, so the two differ")}


def reproduction_answer(*, claimed: float, claimed_std: float, protocol: dict[str, object],
                        recomputed: dict[str, float], sample_count: dict[str, object]) -> tuple[bool, list[str]]:
    """Is the claim its protocol's value on these samples, within the protocol's std and the claim's rounding?

    The context (``recomputed``) never widens the range; when the claim misses, it names the conventions
    that would give the claim.
    """
    value, tolerance = protocol["is_mean"], protocol["tolerance"]
    reproduced = abs(claimed - value) <= tolerance
    std = protocol["is_std"]
    spread = ("it has no spread" if std is None else f"the ± is its {protocol['std_convention']} ({std:.4f})")
    reasons = [f"claim {claimed:g} {'lies within' if reproduced else 'lies outside'} the claimed protocol's "
               f"{value:.4f} ± {tolerance:.4f} ({protocol['dialect']}, {protocol['splits']} split"
               f"{'' if protocol['splits'] == 1 else 's'}, N = {protocol['n']}; {spread} plus "
               f"{protocol['rounding']:g} for the claim's rounding): off by {abs(claimed - value):.4f}"]
    if not reproduced:
        matches = {name: v for name, v in recomputed.items() if abs(claimed - v) <= tolerance}
        if matches:
            reasons.append("within the same ± the claim is what " + ", ".join(f"{name} ({v:.4f})" for name, v in matches.items())
                           + f" give{'s' if len(matches) == 1 else ''}: the claim may have used that convention rather "
                           "than the one given")
        else:
            nearest = min(recomputed, key=lambda name: abs(claimed - recomputed[name]))
            low, high = min(recomputed.values()), max(recomputed.values())
            where = "; the claim lies above them all" if claimed > high else "; the claim lies below them all" \
                if claimed < low else ""
            reasons.append(f"no dialect or preprocessing variant gives it either ({len(recomputed)} of them in "
                           f"[{low:.4f}, {high:.4f}]{where}); the nearest is {nearest} ({recomputed[nearest]:.4f})")
    if claimed_std > 0 and std is not None:
        reasons.append(f"the claimed std {claimed_std:g} against the protocol's {std:.4f} (context; it does not "
                       f"decide)")
    if not sample_count["adequate"]:
        reasons.append(sample_count["note"])
    return reproduced, reasons


def meaningfulness_answer(*, noise_baseline: dict[str, float | None], gaming_ceiling: dict[str, float] | None,
                          noise_like: float | None, memorization: dict[str, float] | None,
                          gameability: dict[str, object] | None = None) -> tuple[bool, list[str]]:
    """Does the score say anything about these samples? Not when they look like noise, sit outside the
    classifier's domain or are copies of the training set; every check that ran gives a reason either way.
    ``gameability``'s sentence is added as context: it never changes the answer."""
    samples_bits, noise_bits = noise_baseline["samples_bits"], noise_baseline["uniform_noise_bits"]
    reference_bits = noise_baseline["reference_bits"]
    meaningful, reasons = True, []
    if noise_like is None:
        reasons.append("not compared with real images: no reference images were given")
    elif noise_like >= NOISE_LIKE_LIMIT:
        meaningful = False
        reasons.append(f"{100 * noise_like:.1f}% of the samples are nearer a noise image than any real reference image")
    else:
        reasons.append(f"{100 * noise_like:.1f}% of the samples are nearer a noise image than any real reference "
                       f"image (not meaningful from {100 * NOISE_LIKE_LIMIT:.0f}%)")
    shape = noise_baseline.get("uniform_noise_shape")
    noise_name = "uniform noise" + ("" if shape is None else f" at its {'x'.join(map(str, shape))} input")
    if samples_bits >= noise_bits:
        meaningful = False
        reasons.append(f"the classifier is no more confident on the samples (E[H(y|x)] = {samples_bits:.3f} bits) "
                       f"than on {noise_name} ({noise_bits:.3f} bits): the samples are out of its domain")
    else:
        reasons.append(f"the classifier is more confident on the samples (E[H(y|x)] = {samples_bits:.3g} bits) "
                       f"than on {noise_name} ({noise_bits:.3f} bits)")
    if memorization is None:
        reasons.append("copying from the training set not tested: that needs the training images and real reference "
                       "images")
    else:
        copying, copy_reasons = copying_answer(memorization)
        meaningful = meaningful and not copying
        reasons.extend(copy_reasons)
    if reference_bits is not None and samples_bits < 0.1 * reference_bits:
        ceiling = ("" if gaming_ceiling is None else
                   f" (which reaches IS {gaming_ceiling['inflated_is']:.3f} of {gaming_ceiling['num_classes']} "
                   f"from noise in {gaming_ceiling['steps']} steps)")
        reasons.append(f"the samples are suspiciously confident: E[H(y|x)] = {samples_bits:.2e} bits "
                       f"against {reference_bits:.3f} for real images, as after the inflate attack{ceiling}")
    if gameability is not None:
        reasons.append(gameability["sentence"])
    return meaningful, reasons


def copying_answer(memorization: dict[str, object]) -> tuple[bool, list[str]]:
    """Are the samples copied from the training set, wholly (C_T) or in part (the near-copy test)? With the
    reasons, each naming the space it measured in."""
    space, ct = memorization.get("space", "pixels"), memorization["ct_statistic"]
    whole = ct_verdict(ct) == "copying"
    reasons = [f"C_T = {ct:.1f} in {space} ({'at or below' if whole else 'above'} {COPYING_CT_LIMIT:g}: "
               + ("the samples look copied from the training set as a whole, nearer it than held-out images are; "
                  "the score is the training set's, not a generator's" if whole else
                  "no copying of the set as a whole, which C_T averages over its cells")
               + f"); authenticity {memorization['authenticity']:.2f}"]
    part = bool(memorization.get("near_copies"))
    if "near_copy_fraction" in memorization:
        count, fraction = memorization["near_copy_count"], memorization["near_copy_fraction"]
        reasons.append(
            f"{100 * fraction:.1f}% of the samples ({count} of {memorization['near_copy_samples']}) are near-copies of training images: nearer one in {space} "
            f"(distance <= {memorization['near_copy_threshold']:.4g}) than {100 * memorization['near_copy_quantile']:g}% "
            f"of the held-out reference images are; held-out data puts {100 * memorization['near_copy_expected_fraction']:.1f}% "
            f"there, one-sided {_p_value(memorization['near_copy_p_value'])}"
            + (f" < {NEAR_COPY_ALPHA:g}: copies, so the score is at least in part the training set's" if part else
               f" (copies from p < {NEAR_COPY_ALPHA:g})"))
    return whole or part, reasons


def _p_value(p: float) -> str:
    """``p = 0.03``; a p-value below float64's range reads ``p < 1e-300``."""
    return "p < 1e-300" if p < 1e-300 else f"p = {p:.2g}"


def claim_verdict(*, claimed: float, claimed_std: float, protocol: dict[str, object], recomputed: dict[str, float],
                  noise_baseline: dict[str, float | None], gaming_ceiling: dict[str, float] | None,
                  noise_like: float | None, memorization: dict[str, float] | None,
                  sample_count: dict[str, object], gameability: dict[str, object] | None = None) -> ClaimAnswers:
    """Both answers from the evidence alone (pure: no classifier runs)."""
    rounding = claim_rounding(claimed)
    low, high = min(recomputed.values()), max(recomputed.values())
    within = low - claimed_std - rounding <= claimed <= high + claimed_std + rounding
    reproduced, reproduced_reasons = reproduction_answer(claimed=claimed, claimed_std=claimed_std, protocol=protocol,
                                                         recomputed=recomputed, sample_count=sample_count)
    meaningful, meaningful_reasons = meaningfulness_answer(noise_baseline=noise_baseline, gaming_ceiling=gaming_ceiling,
                                                           noise_like=noise_like, memorization=memorization,
                                                           gameability=gameability)
    return ClaimAnswers(reproduced, reproduced_reasons, meaningful, meaningful_reasons, within)


def protocol_evidence(score: DialectScore, *, claimed: float, n: int) -> dict[str, object]:
    """The protocol's figure and the range a claim of ``claimed`` must fall in: value ± (std + rounding)."""
    std = None if math.isnan(score.is_std) else score.is_std
    rounding = claim_rounding(claimed)
    tolerance = (std or 0.0) + rounding
    return {"dialect": score.dialect, "splits": score.splits, "n": n, "rows_used": score.rows_used,
            "is_mean": score.is_mean, "is_std": std, "std_convention": score.std_convention, "rounding": rounding,
            "tolerance": tolerance, "low": score.is_mean - tolerance, "high": score.is_mean + tolerance}


def validated_claim(samples: torch.Tensor, *, claimed: float, claimed_std: float, claimed_splits: int,
                     claimed_n: int | None, claimed_dialect: str) -> tuple[torch.Tensor, int]:
    """Check the claim's figures and protocol; return the samples behind it (the first ``claimed_n``) and its splits."""
    if not math.isfinite(claimed) or claimed < 1:
        raise InvalidInputError(f"{parameter('claimed')} must be a finite IS >= 1, got {claimed}")
    if claimed_std < 0 or not math.isfinite(claimed_std):
        raise InvalidInputError(f"{parameter('claimed_std')} must be >= 0, got {claimed_std}")
    if claimed_dialect not in DIALECTS:
        raise InvalidInputError(f"{parameter('claimed_dialect')} must be one of {', '.join(DIALECTS)}, "
                                f"got {claimed_dialect!r}")
    n = samples.shape[0]
    if n < 2:
        raise InvalidInputError(f"need at least 2 samples to check a score, got {n}")
    if claimed_n is not None:
        if claimed_n < 2:
            raise InvalidInputError(f"{parameter('claimed_n')} must be >= 2, got {claimed_n}")
        if claimed_n > n:
            raise InvalidInputError(
                f"{parameter('claimed_n', claimed_n)} but only {n} samples were given; pass all the samples behind "
                f"the claim (fewer samples per split bias the IS), or {parameter('claimed_n', n)} or fewer")
        samples, n = samples[:claimed_n], claimed_n
    if not 1 <= claimed_splits <= n:
        raise InvalidInputError(f"{parameter('claimed_splits')} must be between 1 and N = {n}, got {claimed_splits}")
    return samples, claimed_splits


def check_claim(
    samples: torch.Tensor,
    *,
    claimed: float,
    claimed_std: float = 0.0,
    claimed_splits: int = DEFAULT_CLAIMED_SPLITS,
    claimed_n: int | None = None,
    claimed_dialect: str = DEFAULT_CLAIMED_DIALECT,
    classifier_name: str = defaults.CLASSIFIER,
    reference: torch.Tensor | None = None,
    train: torch.Tensor | None = None,
    splits: int | None = None,
    seed: int = 0,
    weights=None,
    classifier: ImageClassifier | None = None,
    steps: int = CEILING_STEPS,
    attack: bool = True,
) -> CheckResult:
    """Audit ``claimed`` for ``samples`` (N, C, H, W) in [0, 1]; ``reference`` are real images of the domain.

    The claim is taken to be ``claimed_dialect``'s IS with ``claimed_splits`` splits over the first
    ``claimed_n`` samples (default: all of them); ``splits`` is the deprecated name of ``claimed_splits`` (removed in
    isgame 0.4).
    ``classifier`` is ``load_classifier(classifier_name, weights=weights)`` when given (it is loaded otherwise).
    The gaming ceiling attacks min(500, N) noise images for ``steps`` steps, and the gameability
    (:func:`gameability_evidence`) noise and the samples themselves; ``attack=False`` skips both (None).
    """
    if splits is not None:
        warn_renamed("check_claim(splits=...)", "claimed_splits=...")
    samples, claimed_splits = validated_claim(samples, claimed=claimed, claimed_std=claimed_std,
                                               claimed_splits=claimed_splits if splits is None else splits,
                                               claimed_n=claimed_n, claimed_dialect=claimed_dialect)
    classifier = load_classifier(classifier_name, weights=weights) if classifier is None else classifier
    logits = classify(classifier, samples)  # at the samples' stored size: the classifier resizes on the way in
    # torchmetrics truncates float images to uint8 before its network: only the images this changes run again.
    truncated_logits, _ = logits_of_truncated(classifier, samples, logits)
    claim = {"claimed": claimed, "claimed_std": claimed_std, "claimed_splits": claimed_splits,
             "claimed_dialect": claimed_dialect}
    protocol = protocol_evidence(protocol_score(logits, dialect=claimed_dialect, splits=claimed_splits,
                                                truncated_logits=truncated_logits), claimed=claimed, n=len(samples))
    evidence, space, scores = _claim_evidence(classifier, classifier_name, samples, logits, truncated_logits, claim,
                                              reference=reference, train=train, seed=seed, weights=weights,
                                              steps=steps, attack=attack)
    return _check_result(classifier, classifier_name, samples, logits, claim, protocol, evidence, space, scores,
                         reference=reference, seed=seed)


def _claim_evidence(classifier: ImageClassifier, classifier_name: str, samples: torch.Tensor, logits: torch.Tensor,
                    truncated_logits: torch.Tensor, claim: dict, *, reference, train, seed: int, weights, steps: int,
                    attack: bool) -> tuple[dict, dict, object]:
    """Every piece of evidence :func:`claim_verdict` weighs (the attacks' only with ``attack``), the pixel space
    the pixel tests compare in, and the samples' IS under the claim's splits."""
    n, splits, dialect = samples.shape[0], claim["claimed_splits"], claim["claimed_dialect"]
    scores = inception_score(logits, splits=splits, track_stderr=False)
    # Uniform noise at the classifier's own input: the baseline a classifier should be unsure about. At the samples'
    # stored size it would be averaged by the resize (32 px noise shrunk to 8 px is nearly flat grey), so the
    # baseline would follow how the files happen to be stored.
    count = noise_baseline_count(n)
    noise = uniform_noise((count, classifier.input_channels, *classifier.input_size), seed=seed + 1)
    pixel_samples, pixel_others, space = pixel_space(classifier, samples, {"reference": reference, "train": train})
    pixel_reference, pixel_train = pixel_others.get("reference"), pixel_others.get("train")
    evidence = {
        "recomputed": recompute_claim(classifier, classifier_name, samples, logits, splits=splits, dialect=dialect,
                                      truncated_logits=truncated_logits, weights=weights),
        "sample_count": sample_count_evidence(logits, splits=splits),
        "noise_baseline": noise_baseline_evidence(classifier, scores.conditional_entropy_bits, noise, reference),
        "gaming_ceiling": (gaming_ceiling(classifier, seed=seed, samples=min(CEILING_SAMPLES, n), steps=steps)
                           if attack else None),
        "noise_like": None if reference is None else nearest_is_noise_fraction(
            pixel_samples, pixel_reference,
            uniform_noise((min(count, reference.shape[0]), *space["shape"]), seed=seed + 1)),
        "memorization": (None if train is None or reference is None
                         else memorization_evidence(pixel_samples, pixel_train, pixel_reference, seed=seed)),
        "gameability": (gameability_evidence(classifier, samples, claimed=claim["claimed"], dialect=dialect,
                                             splits=splits, logits=logits, train=train, seed=seed, steps=steps)
                        if attack else None),
    }
    return evidence, space, scores


def _check_result(classifier: ImageClassifier, classifier_name: str, samples: torch.Tensor, logits: torch.Tensor,
                  claim: dict, protocol: dict, evidence: dict, space: dict, scores, *, reference,
                  seed: int) -> CheckResult:
    """Both answers from the evidence, as a :class:`CheckResult` with a seeded random grid of examples."""
    n = samples.shape[0]
    answers = claim_verdict(claimed=claim["claimed"], claimed_std=claim["claimed_std"], protocol=protocol, **evidence)
    rows = example_rows(n, seed=seed)
    noise_like = evidence.pop("noise_like")
    images_vs_noise = {"fraction_nearer_noise_than_real": noise_like,
                       "reference_size": None if reference is None else int(reference.shape[0])}
    return CheckResult(
        **claim, claimed_n=n, n=n, num_classes=classifier.num_classes, classifier=classifier_name,
        protocol=protocol, reproduced=answers.reproduced, meaningful=answers.meaningful,
        reproduced_reasons=answers.reproduced_reasons, meaningful_reasons=answers.meaningful_reasons,
        within_spread=answers.within_spread, images_vs_noise=images_vs_noise, class_histogram=scores.class_counts,
        verdict=answers.verdict, reasons=answers.reasons, examples=samples[rows], example_rows=rows.tolist(),
        **evidence,
        sample_order=sample_order_of_logits(logits, splits=claim["claimed_splits"], dialect=claim["claimed_dialect"],
                                            seed=seed, is_contiguous=float(protocol["is_mean"])).to_dict(),
        pixel_space=space,
    )


def example_rows(n: int, *, seed: int, count: int = EXAMPLE_COUNT) -> torch.Tensor:
    """``count`` of the rows 0..n-1 (all when fewer), a seeded random draw in ascending order: the rows the sample
    grid shows."""
    return torch.sort(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count]).values


def uniform_noise(shape: tuple[int, ...], *, seed: int) -> torch.Tensor:
    """Seeded uniform noise images of ``shape`` (N, C, H, W) in [0, 1]."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def noise_baseline_count(n: int) -> int:
    """Uniform noise images the noise baseline scores for N samples: N, within [NOISE_BASELINE_MIN, 2000]."""
    return min(max(n, NOISE_BASELINE_MIN), 2000)


def check_cost_passes(n: int, *, reference: int = 0, attack: bool = True, steps: int = CEILING_STEPS,
                      resized: bool = True) -> int:
    """Image passes through the classifier a check of N samples makes (an upper bound): the samples under the
    protocol, every resize variant (only when ``resized``: the samples are not at the classifier's input size),
    uint8 and torchmetrics' truncation; the noise baseline and the reference; and the forward and backward passes
    (about 3 forward passes each) of the gaming ceiling and the gameability attacks."""
    samples = n * (3 + (len(CHECK_RESIZE_VARIANTS) if resized else 0))
    ceiling = 3 * min(CEILING_SAMPLES, n) * steps if attack else 0
    # Gameability: the inflate attack again (it stops at the claim), and the samples' own ascent: at most six grid
    # ε of three strategies, then two bisections.
    strategy = min(steps, 10)
    gameable = 3 * (min(CEILING_SAMPLES, n) * steps + n * (6 + 2) * 3 * strategy) if attack else 0
    return samples + noise_baseline_count(n) + 2 * reference + ceiling + gameable


def claim_rounding(claimed: float) -> float:
    """Half a unit of the claim's last printed decimal: 8.67 -> 0.005, 9.3 -> 0.05, 12 -> 0.5.

    A float keeps no trailing zeros, so 9.0 reads as 9 (-> 0.5); a claim printed as 9.00 loses its precision.
    """
    from decimal import Decimal

    exponent = Decimal(repr(float(claimed))).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** min(exponent, 0)


class ClassHistogramDisplay(Display):
    """Bars of the samples' predicted-class counts; keeps ``ax_`` and ``figure_``."""

    figsize = (7, 3.2)

    def __init__(self, class_histogram: list[int]) -> None:
        self.class_histogram = class_histogram

    def draw(self, ax) -> None:
        ax.bar(range(len(self.class_histogram)), self.class_histogram, color="#8da0cb")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("samples")
        ax.set_title("class histogram of the samples")
