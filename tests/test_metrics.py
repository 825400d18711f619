"""FID, KID and the manifold metrics against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from isgame.scoring.fid import FeatureStatisticsAccumulator, features_to_statistics, fid_sample_size_curve, frechet_distance, statistics_to_fid
from isgame.scoring.kid import kernel_inception_distance, unbiased_mmd2
from isgame.scoring.prdc import precision_recall_density_coverage


def correlated(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(99).normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mixing + shift


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Reference: scipy.linalg.sqrtm of the covariance product, as the original TTUR code."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


@pytest.mark.parametrize("d,shift", [(4, 0.0), (16, 0.3), (64, 1.0)])
def test_fid_matches_scipy_sqrtm(d, shift):
    a, b = correlated(800, d, 1), correlated(600, d, 2, shift)
    assert frechet_distance(a, b) == pytest.approx(scipy_fid(a, b), rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero():
    a = correlated(500, 32, 3)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fid_accumulator_equals_the_one_shot_statistics():
    a = correlated(1000, 12, 4)
    accumulator = FeatureStatisticsAccumulator(12)
    for chunk in np.array_split(a, 7):
        accumulator.update(chunk)
    streamed, direct = accumulator.compute(), features_to_statistics(a)
    np.testing.assert_allclose(streamed.mean, direct.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.covariance, direct.covariance, rtol=1e-9, atol=1e-12)
    b = correlated(300, 12, 5, 0.5)
    assert statistics_to_fid(streamed, features_to_statistics(b)) == pytest.approx(frechet_distance(a, b), rel=1e-8)


def test_fid_sample_size_bias_shrinks_with_n():
    reference, pool = correlated(4000, 8, 6), correlated(4000, 8, 7)
    curve = fid_sample_size_curve(reference, pool, (50, 200, 1000, 4000))
    assert curve[0] > curve[-1] and all(value >= 0 for value in curve)


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], x.shape[0]

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_brute_force():
    x, y = correlated(30, 5, 8), correlated(30, 5, 9, 0.4)
    assert unbiased_mmd2(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-10)


def test_kid_between_halves_of_one_set_is_near_zero():
    features = correlated(2000, 16, 10)
    same = kernel_inception_distance(features[:1000], features[1000:], subsets=20, subset_size=500)
    different = kernel_inception_distance(features[:1000], correlated(1000, 16, 11, 0.5), subsets=20, subset_size=500)
    assert abs(same.mean) < 3 * same.std / np.sqrt(20) + 1e-3
    assert different.mean > 10 * abs(same.mean)


@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_precision_recall_density_coverage_match_the_prdc_package(shift):
    prdc = pytest.importorskip("prdc")
    real, fake = correlated(400, 6, 12), correlated(350, 6, 13, shift)
    expected = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    ours = precision_recall_density_coverage(real, fake, k_precision_recall=5, k_density_coverage=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert getattr(ours, key) == pytest.approx(expected[key], rel=1e-6), key
    default = precision_recall_density_coverage(real, fake)
    expected3 = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=3)
    assert default.precision == pytest.approx(expected3["precision"], rel=1e-6)
    assert default.recall == pytest.approx(expected3["recall"], rel=1e-6)


def test_fid_cli_matches_the_in_memory_computation(cli, digits_classifier):
    import json

    import torch

    from isgame.scoring.samples import open_images

    payload = json.loads(cli("fid", "digits:test", "digits:train", "--json", "-", "--quiet").stdout)
    with torch.no_grad():
        real = digits_classifier.features(open_images("digits:test").load_all()).double().numpy()
        fake = digits_classifier.features(open_images("digits:train").load_all()).double().numpy()
    assert payload["fid"] == pytest.approx(frechet_distance(real, fake), rel=1e-6)
    assert payload["n_real"] == 540 and payload["n_fake"] == 1257
