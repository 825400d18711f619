"""The four probes on a domain that is not digits (the shapes test domain: RGB 12x12, K = 5), and on digits.

Kept cheap: small n, two bandwidths, one perturbed copy per noise level. The synthetic K = 1000 sweeps of the
sensitivity probe are domain-free and take a minute; the tests that run the whole probe replace them with stubs
(they check nothing about them), and one test checks their per-process cache with a counting stub.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from factories import SHAPES_CLASSES, SHAPES_SIZE, train_shapes_network
from PIL import Image

from isgame.probes import noise_baselines as noise_module
from isgame.probes import sensitivity
from isgame.probes.domain import DIGITS_ROW, DomainDisplay, digits_in_domain_shape, domain_probe
from isgame.probes.memorization import memorization_probe
from isgame.probes.noise_baselines import NoiseBaselineDisplay, noise_baselines
from isgame.probes.sensitivity import (
    RESIZE_VARIANTS,
    SampleCountSweep,
    SensitivityDisplay,
    SplitSweep,
    jpeg_round_trip,
    sensitivity_probe,
)
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.domains import digits_domain, load_domain, pca_bandwidth_scale
from isgame.scoring.errors import InvalidInputError

SHAPE = (3, SHAPES_SIZE, SHAPES_SIZE)
N = 40
#: the cached sweeps themselves (the fixture below replaces the module's names while the probe runs)
SPLIT_SWEEP_SYNTHETIC, SAMPLE_COUNT_SWEEP = sensitivity.split_sweep_synthetic, sensitivity.sample_count_sweep


@pytest.fixture(scope="module")
def shapes(shapes_specs):
    specs = shapes_specs
    return load_domain(specs["classifier"], train=specs["train"], real=specs["real"])


@pytest.fixture(scope="module")
def shapes_b(tmp_path_factory):
    """A second shapes network (another seed), saved as TorchScript and loaded like a user's --classifier-b."""
    path = tmp_path_factory.mktemp("shapes_b") / "shapes_b.pt"
    torch.jit.save(torch.jit.script(train_shapes_network(seed=1)), str(path))
    return load_classifier(f"torchscript:{path}?size={SHAPES_SIZE}x{SHAPES_SIZE}")


@pytest.fixture(scope="module")
def no_synthetic_sweeps():
    """Stub the domain-free synthetic sweeps (about a minute of CPU); nothing here checks them."""
    split = SplitSweep("synthetic K = 1000", 1, 1000, [1], [1.0], [1.0], 1.0, 1.0)
    count = SampleCountSweep([500], [1.0], 1.0, 1.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sensitivity, "split_sweep_synthetic", lambda *, seed=0: split)
        patch.setattr(sensitivity, "sample_count_sweep", lambda *, seed=0: count)
        yield


@pytest.fixture(scope="module")
def shapes_memorization(shapes):
    return memorization_probe(shapes, bandwidths=(0.1, 0.4), n=N)


@pytest.fixture(scope="module")
def shapes_sensitivity(shapes, shapes_b, no_synthetic_sweeps):
    return sensitivity_probe(shapes, n=N, classifier_b=shapes_b, weight_copies=1)


def test_noise_baselines_use_the_domains_shape_and_classes(shapes, monkeypatch):
    seen = {}
    original = noise_module.baseline_row

    def spy(name, classifier, images):
        seen[name] = tuple(images.shape)
        return original(name, classifier, images)

    monkeypatch.setattr(noise_module, "baseline_row", spy)
    result = noise_baselines(shapes, n=N, steps=2)
    assert result.num_classes == SHAPES_CLASSES and result.max_entropy_bits == pytest.approx(math.log2(5), abs=1e-15)
    assert [r.name for r in result.rows] == ["uniform noise", "gaussian noise", "constant images (256 levels)",
                                             "held-out real images", "training images", "inflated noise"]
    assert seen["uniform noise"] == seen["gaussian noise"] == seen["inflated noise"] == (N, *SHAPE)
    assert seen["constant images (256 levels)"] == (256, *SHAPE)
    assert seen["held-out real images"] == (80, *SHAPE) and seen["training images"] == (120, *SHAPE)
    assert all(0 <= r.conditional_entropy_bits <= math.log2(5) + 1e-9 for r in result.rows)
    assert result.to_dict()["domain"]["image_shape"] == list(SHAPE)
    title = NoiseBaselineDisplay(result).plot().ax_.get_title()
    assert "digits" not in title and "the classifier" in title


def test_memorization_on_shapes_flags_replay_and_not_held_out(shapes, shapes_memorization):
    result = shapes_memorization
    replay, held_out = result.by_name("replay"), result.by_name("held-out")
    assert replay.ct_statistic < -5 and replay.authenticity == 0.0 and replay.near_copy_fraction == 1.0
    assert abs(held_out.ct_statistic) < 3 and held_out.ct_statistic > replay.ct_statistic + 5
    scale = math.sqrt(3 * 12 * 12 / 64)
    assert result.bandwidth_scale == pytest.approx(scale, rel=1e-12) == pca_bandwidth_scale(SHAPE)
    payload = result.to_dict()
    assert payload["effective_bandwidths"] == pytest.approx([0.1 * scale, 0.4 * scale], rel=1e-12)
    assert [g["name"] for g in payload["generators"] if g["kind"] == "kde"] == ["kde-0.1", "kde-0.4"]
    assert payload["kde_components"] == 30 and payload["ct_cells"] == 1  # 40 KDE samples: one cell of 21+
    assert payload["domain"]["name"] == "custom" and payload["domain"]["num_classes"] == SHAPES_CLASSES
    assert tuple(result.examples["kde-0.4"].shape) == (20, *SHAPE)
    # The larger bandwidth draws samples farther from the training set.
    assert result.by_name("kde-0.4").median_distance_ratio > result.by_name("kde-0.1").median_distance_ratio


@pytest.mark.slow
def test_sensitivity_on_shapes_weighs_both_classifiers(shapes, shapes_b, shapes_sensitivity):
    result = shapes_sensitivity
    assert result.splits[0].dataset == "held-out real images"
    assert result.splits[0].n == 80 and result.splits[0].num_classes == SHAPES_CLASSES
    assert result.splits[0].split_counts == [1, 2, 5, 10, 20, 50]  # 100 splits of 80 images cannot be
    first, second = shapes.classifier_name, shapes_b.name
    assert first != second
    sets = ["held-out real images", "KDE samples (bandwidth 1.04)", "uniform noise"]  # 0.4 x sqrt(432 / 64)
    assert [w.samples for w in result.weights] == sets
    for spread in result.weights:
        assert list(spread.scores)[:2] == [first, second]
        assert [label for label in spread.scores if "% noise" in label] == [
            f"{first} + {level}% noise (seed 0)" for level in (1, 2, 5)]
    held_out = result.weights[0].scores
    assert held_out[first] != held_out[second]  # two networks, two scores
    payload = result.to_dict()
    assert payload["classifier_b"] == second and payload["domain"]["image_shape"] == list(SHAPE)
    # 12x12 is the classifier's input: the preprocessing sets are upscaled so that the resize acts.
    assert [p.samples for p in result.preprocessing] == [f"{name}, bicubic-upscaled to 48x48" for name in sets]
    assert set(result.preprocessing[0].scores) == set(RESIZE_VARIANTS) | {
        "uint8 quantised (bilinear, antialias)", "float64 (bilinear, antialias)"}
    assert [j.samples for j in result.jpeg] == sets
    assert list(result.jpeg[0].scores) == ["original", "JPEG quality 95", "JPEG quality 75", "JPEG quality 50"]
    # The perturbed copies are copies: the domain's own classifier still scores as a fresh load of it does.
    assert sensitivity._is(load_classifier(first), shapes.real[:N]) == held_out[first]
    figure = SensitivityDisplay(result).plot().figure_
    assert any(label.get_text().startswith("JPEG: ") for label in figure.axes[3].get_yticklabels())


def test_jpeg_round_trip_matches_pillow_and_changes_pixels_a_little(shapes, tmp_path):
    images = shapes.real[:4]
    trip = jpeg_round_trip(images, 95)
    assert trip.shape == images.shape and trip.dtype == torch.float32
    # Independently: one image through Pillow, written to a .jpg file and read back.
    array = (images[1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(array).save(tmp_path / "one.jpg", quality=95)
    expected = np.array(Image.open(tmp_path / "one.jpg").convert("RGB"), dtype=np.float32) / 255
    assert np.array_equal(trip[1].permute(1, 2, 0).numpy(), expected)
    change_95 = float((trip - images).abs().mean())
    change_50 = float((jpeg_round_trip(images, 50) - images).abs().mean())
    assert 0 < change_95 < 0.05 and change_50 > change_95
    grey = images.mean(dim=1, keepdim=True)
    assert jpeg_round_trip(grey, 75).shape == grey.shape
    with pytest.raises(InvalidInputError, match="quality"):
        jpeg_round_trip(images, 0)


def test_domain_probe_on_shapes_scores_digits_as_out_of_domain(shapes):
    result = domain_probe(shapes, n=N)
    assert [r.name for r in result.rows] == ["held-out real images", "photo crops (non-digits)", DIGITS_ROW]
    assert [r.n for r in result.rows] == [80, N, N]  # the digits row is as large as the crops
    assert all(len(r.class_histogram) == SHAPES_CLASSES for r in result.rows)
    assert tuple(result.examples.shape) == (N, *SHAPE)
    digits = digits_in_domain_shape(SHAPE)
    assert digits.shape == (540, *SHAPE) and torch.equal(digits[:, 0], digits[:, 2])  # grey in every channel
    # The classifier knows its own domain better than digits.
    assert result.by_name("held-out real images").mean_max_probability > result.by_name(DIGITS_ROW).mean_max_probability
    axes = DomainDisplay(result).plot().axes_
    assert axes[0].get_xlabel() == "predicted class" and len(axes[0].get_legend().get_texts()) == 3


def test_synthetic_sweeps_are_computed_once_per_seed(monkeypatch):
    calls = []

    def counting(n, *, splits, shuffle, seed=0, batch=5000):
        calls.append((n, splits, shuffle, seed))
        return float(splits)

    monkeypatch.setattr(sensitivity, "score_synthetic", counting)
    # Fresh caches of the same functions, so that the process's real cached sweeps (the audit's) stay intact.
    for name in ("_split_sweep_synthetic", "_sample_count_sweep"):
        monkeypatch.setattr(sensitivity, name, functools.lru_cache(maxsize=4)(getattr(sensitivity, name).__wrapped__))
    first = SPLIT_SWEEP_SYNTHETIC(seed=7)
    count = len(calls)
    second = SPLIT_SWEEP_SYNTHETIC(seed=7)
    assert len(calls) == count == 2 * len(sensitivity.SPLIT_COUNTS) and second == first
    second.is_unshuffled.append(0.0)  # a caller's edit does not reach the cache
    assert SPLIT_SWEEP_SYNTHETIC(seed=7) == first
    SAMPLE_COUNT_SWEEP(seed=7)
    SAMPLE_COUNT_SWEEP(seed=7)
    SPLIT_SWEEP_SYNTHETIC(seed=8)
    assert len(calls) == 2 * count + len(sensitivity.SAMPLE_COUNTS) + 1


#: the JSON keys of the probes before they ran on any domain (the digits runs must still write them)
KEYS_BEFORE = {
    "memorization": {"seed", "kde_explained_variance", "generators"},
    "generator": {"name", "kind", "bandwidth", "n", "is_mean", "is_std", "mutual_information_bits", "ct_statistic",
                  "ct_statistic_features", "authenticity", "authenticity_features", "near_copy_fraction",
                  "near_copy_fraction_features", "median_distance_ratio", "median_distance_ratio_features"},
    "noise": {"num_classes", "max_entropy_bits", "seed", "rows", "published_inception_v3_conditional_entropy_bits"},
    "noise_row": {"name", "n", "conditional_entropy_bits", "marginal_entropy_bits", "mutual_information_bits",
                  "mean_max_probability", "inception_score"},
    "sensitivity": {"splits", "sample_count", "weights", "weights_published_spread_percent", "preprocessing"},
    "split": {"dataset", "exact_is", "exp_mutual_information", "is_shuffled", "is_unshuffled", "n", "num_classes",
              "split_counts", "spread_percent"},
    "spread": {"samples", "scores", "spread_percent"},
    "domain": {"confidence_threshold", "seed", "rows"},
    "domain_row": {"name", "n", "inception_score", "mean_max_probability", "fraction_confident",
                   "conditional_entropy_bits", "marginal_entropy_bits", "class_histogram"},
}


def test_digits_probes_keep_their_json_keys_and_names(digits_classifier, shapes_memorization, no_synthetic_sweeps):
    """Digits, passed the old way (a classifier) and as a domain: every key and row name of before is there.
    (Memorisation's keys are the same code on every domain: checked on shapes, where it is cheap.)"""
    noise = noise_baselines(digits_classifier, n=N, steps=2).to_dict()
    assert KEYS_BEFORE["noise"] <= noise.keys() and all(KEYS_BEFORE["noise_row"] <= r.keys() for r in noise["rows"])
    assert [r["name"] for r in noise["rows"]][3:5] == ["held-out digits", "training digits"]
    domain = domain_probe(digits_domain(), n=N)
    payload = domain.to_dict()
    assert KEYS_BEFORE["domain"] <= payload.keys() and all(KEYS_BEFORE["domain_row"] <= r.keys() for r in payload["rows"])
    assert [r["name"] for r in payload["rows"]] == ["held-out digits", "photo crops (non-digits)"]
    assert DomainDisplay(domain).plot().axes_[0].get_xlabel() == "predicted digit"
    memorization = shapes_memorization.to_dict()
    assert KEYS_BEFORE["memorization"] <= memorization.keys()
    assert all(KEYS_BEFORE["generator"] <= g.keys() for g in memorization["generators"])
    result = sensitivity_probe(digits_classifier, n=N, weight_copies=1)
    payload = result.to_dict()
    assert KEYS_BEFORE["sensitivity"] <= payload.keys() and result.classifier_b == "digits-b"
    assert KEYS_BEFORE["split"] <= payload["splits"][0].keys()
    assert all(KEYS_BEFORE["spread"] <= spread.keys() for spread in payload["weights"] + payload["preprocessing"])
    assert result.splits[0].dataset == "held-out digits" and result.splits[0].n == 540
    assert list(result.weights[0].scores)[:3] == ["digits", "digits-b", "digits + 1% noise (seed 0)"]
    assert [p.samples for p in result.preprocessing] == [
        f"{name}, bicubic-upscaled to 32x32" for name in ("held-out digits", "KDE samples (bandwidth 0.4)", "uniform noise")]


def test_a_second_classifier_must_read_the_domain_and_share_its_classes(shapes, shapes_b, digits_classifier):
    """A network that cannot read the domain's images, or has another K, is refused in one line."""
    with pytest.raises(InvalidInputError, match="cannot read"):
        sensitivity.second_classifier(digits_domain(), _RgbOnly())
    with pytest.raises(InvalidInputError, match="K = 10") as error:
        sensitivity.second_classifier(shapes, digits_classifier)  # reads RGB 12x12 (to grey 8x8), but K = 10
    assert "\n" not in str(error.value)
    assert sensitivity.second_classifier(shapes, shapes_b) is shapes_b
    assert sensitivity.second_classifier(shapes, None) is None  # no second network is built in but for digits


class _RgbOnly(torch.nn.Module):
    """Not an ImageClassifier: a stand-in whose call fails on grey images, as a mismatched network would."""

    name = "rgb-only"
    num_classes = 10

    def forward(self, images):
        if images.shape[1] != 3:
            raise RuntimeError("expected 3 channels")
        return torch.zeros(images.shape[0], 10)


def test_memorization_refuses_too_few_samples_in_one_line(shapes):
    with pytest.raises(InvalidInputError, match=r"n must be >= 21") as error:
        memorization_probe(shapes, n=20)
    assert "\n" not in str(error.value)


def test_noise_baselines_without_attack_leave_out_the_inflated_row(shapes, monkeypatch):
    def no_attack(*args, **kwargs):
        raise AssertionError("attack=False must not run the inflate attack")

    monkeypatch.setattr(noise_module.InflateAttack, "__call__", no_attack)
    result = noise_baselines(shapes, n=N, attack=False)
    assert [r.name for r in result.rows][-1] == "training images" and len(result.rows) == 5
