"""The newer metrics of issue 14 against independent computations: Vendi, sliced Wasserstein, RBF MMD, FLD,
the Haar wavelet Fréchet distance, FID∞ and IS∞."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from vendi_score import vendi

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.fld import feature_likelihood_divergence, fit_log_variances, mean_dim_adjusted_nll
from isgame.scoring.metrics.infinity import default_sizes, fid_infinity, fit_against_inverse_n, is_infinity
from isgame.scoring.metrics.rbf_mmd import rbf_mmd
from isgame.scoring.metrics.sliced_wasserstein import sliced_wasserstein
from isgame.scoring.metrics.vendi import vendi_score, vendi_score_of_kernel
from isgame.scoring.metrics.wavelet_fd import (
    haar_packets,
    inverse_haar_packets,
    packet_features,
    wavelet_frechet_distance,
)

# ---- Vendi ------------------------------------------------------------------------------------------------------

def test_vendi_paper_example_is_three():
    samples = np.array([0, 0, 10, 10, 20, 20], dtype=np.float64)
    kernel = np.exp(-np.abs(samples[:, None] - samples[None, :]))
    value = vendi_score_of_kernel(kernel)
    assert value == pytest.approx(3.0, abs=1e-7) and value < 3.0  # 2.99999…


def test_vendi_matches_the_package_and_the_n_by_n_route():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 6))
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    ours = vendi_score(features).vendi
    assert ours == pytest.approx(vendi_score_of_kernel(unit @ unit.T), rel=1e-10)  # dual (D, D) == primal (n, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the package reads scipy.sparse.csr
        assert ours == pytest.approx(vendi.score_dual(features), rel=1e-10)
        assert vendi_score(features, q=2).vendi == pytest.approx(vendi.score_K(unit @ unit.T, q=2), rel=1e-10)


def test_vendi_bounds_identical_and_orthogonal_rows():
    assert vendi_score(np.ones((5, 3))).vendi == pytest.approx(1.0)
    assert vendi_score(np.eye(4)).vendi == pytest.approx(4.0)
    with pytest.raises(InvalidInputError, match="all zeros"):
        vendi_score(np.zeros((3, 2)))


# ---- sliced Wasserstein -----------------------------------------------------------------------------------------

def test_sliced_wasserstein_in_one_dimension_is_the_exact_distance():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 1)), rng.normal(1.0, 2.0, size=(70, 1))
    result = sliced_wasserstein(a, b, p=1, projections=5, seed=3)
    assert result.distance == pytest.approx(scipy.stats.wasserstein_distance(a[:, 0], b[:, 0]), rel=1e-10)


def test_sliced_wasserstein_is_seeded_zero_on_itself_and_grows_with_a_shift():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(60, 8))
    assert sliced_wasserstein(a, a).distance == pytest.approx(0.0, abs=1e-12)  # POT's own docstring example
    near, far = sliced_wasserstein(a, a + 0.5, seed=4), sliced_wasserstein(a, a + 2.0, seed=4)
    assert near.distance < far.distance
    assert sliced_wasserstein(a, a + 0.5, seed=4) == near and near.projections == 200
    # a pure translation by t moves every projection by θ·t: SW_2² = |t|² E[θ1²] = |t|² / D per unit coordinate
    assert far.distance**2 == pytest.approx(4.0 * 8 / 8, rel=0.15)


# ---- RBF MMD ----------------------------------------------------------------------------------------------------

def test_rbf_mmd_matches_a_hand_computation():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    y = np.array([[1.0, 1.0], [3.0, 0.0]])
    sigma = 1.5

    def k(a, b):
        return math.exp(-sum((ai - bi) ** 2 for ai, bi in zip(a, b)) / (2 * sigma**2))

    xx = sum(k(x[i], x[j]) for i in range(3) for j in range(3) if i != j) / 6
    yy = sum(k(y[i], y[j]) for i in range(2) for j in range(2) if i != j) / 2
    xy = sum(k(a, b) for a in x for b in y) / 6
    result = rbf_mmd(x, y, bandwidth=sigma)
    assert result.mmd2 == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    biased = (sum(k(a, b) for a in x for b in x) / 9 + sum(k(a, b) for a in y for b in y) / 4 - 2 * xy)
    assert result.mmd2_biased == pytest.approx(biased, rel=1e-12)
    # median heuristic: distances 1, 2, sqrt(5) between the three rows -> median 2
    assert rbf_mmd(x, y).bandwidth == pytest.approx(2.0)


def test_rbf_mmd_near_zero_for_the_same_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(300, 16))
    same = rbf_mmd(reference, rng.normal(size=(300, 16)))
    shifted = rbf_mmd(reference, rng.normal(size=(300, 16)) + 0.5)
    assert abs(same.mmd2) < 2e-3 < shifted.mmd2
    assert shifted.mmd2_x1000 == pytest.approx(1000 * shifted.mmd2)


# ---- FLD --------------------------------------------------------------------------------------------------------

def _torch_reference_fit(centres: np.ndarray, data: np.ndarray, epochs: int) -> np.ndarray:
    """marcojira/fld MoG.fit transcribed with torch autograd (float64) and textbook Adam (Kingma & Ba, Algorithm 1,
    torch.optim.Adam's defaults; torch.optim itself is not used: constructing it first imports for seconds)."""
    m, dim = centres.shape
    mus, x = torch.from_numpy(centres), torch.from_numpy(data)
    dists = torch.cdist(x, mus) ** 2
    params = torch.cat([((dists.min(0).values + 1e-3) / dim).log(), torch.zeros(1, dtype=torch.float64)])
    origin_d = 0.81 * torch.cdist(x, x.mean(0, keepdim=True)) ** 2
    first, second = torch.zeros_like(params), torch.zeros_like(params)
    for t in range(1, epochs + 1):
        p = params.clone().requires_grad_(True)
        log_sigmas, origin = p[:m], p[m]
        pair = -0.5 * dists / log_sigmas.exp() - dim / 2 * log_sigmas - dim / 2 * math.log(2 * math.pi) - math.log(m)
        orig = -0.5 * origin_d / origin.exp() - dim / 2 * origin - dim / 2 * math.log(2 * math.pi)
        loss = -torch.logsumexp(torch.cat([pair, orig], 1), 1).mean() / dim
        (gradient,) = torch.autograd.grad(loss, p)
        first = 0.9 * first + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient**2
        params = params - 0.5 * (first / (1 - 0.9**t)) / ((second / (1 - 0.999**t)).sqrt() + 1e-8)
        params[:m] = params[:m].clamp(-40, 20)
    return params[:m].numpy()


def test_fld_fit_matches_torch_autograd_and_adam():
    rng = np.random.default_rng(4)
    centres, data = rng.normal(size=(7, 3)), rng.normal(size=(20, 3))
    ours = fit_log_variances(centres, data, epochs=12)
    assert np.allclose(ours, _torch_reference_fit(centres, data, 12), rtol=1e-9, atol=1e-9)


def test_fld_nll_by_hand_on_one_component():
    centre, point, log_variance = np.array([[0.0, 0.0]]), np.array([[1.0, 2.0]]), np.array([math.log(2.0)])
    density = math.exp(-5 / (2 * 2.0)) / (2 * math.pi * 2.0)  # N(x | 0, 2 I) in 2-D
    assert mean_dim_adjusted_nll(point, centre, log_variance) == pytest.approx(-math.log(density) / 2, rel=1e-12)


def test_fld_copying_the_training_set_widens_the_gap():
    rng = np.random.default_rng(5)
    train, test = rng.normal(size=(120, 6)), rng.normal(size=(60, 6))
    honest = feature_likelihood_divergence(train, test, rng.normal(size=(50, 6)), seed=0)
    copied = feature_likelihood_divergence(train, test, train[:50], seed=0)
    assert abs(honest.gap) < 50 and copied.gap < -1000 and copied.fld > honest.fld
    assert honest.gap == pytest.approx(honest.fld_train - honest.fld)
    again = feature_likelihood_divergence(train, test, rng.normal(size=(50, 6)), seed=0, baseline_nll=honest.baseline_nll)
    assert again.baseline_nll == honest.baseline_nll


# ---- wavelet Fréchet distance ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "levels"), [((1, 8, 8), 1), ((1, 8, 8), 2), ((3, 16, 16), 3)])
def test_haar_packets_are_orthonormal_and_invertible(shape, levels):
    images = np.random.default_rng(6).random((4, *shape))
    packets = haar_packets(images, levels)
    assert packets.shape == (4, 4**levels, shape[0], shape[1] >> levels, shape[2] >> levels)
    assert np.allclose((packets**2).sum(axis=(1, 2, 3, 4)), (images**2).sum(axis=(1, 2, 3)))
    assert np.allclose(inverse_haar_packets(packets, levels), images)


def test_one_haar_step_by_hand():
    image = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert np.allclose(haar_packets(image, 1).ravel(), [5.0, -1.0, -2.0, 0.0])


def _scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def test_wavelet_distance_is_the_mean_scipy_frechet_distance_over_packets():
    rng = np.random.default_rng(7)
    real, fake = rng.random((60, 1, 8, 8)), np.clip(rng.random((50, 1, 8, 8)) * 0.8 + 0.1, 0, 1)
    result = wavelet_frechet_distance(real, fake)
    assert (result.levels, result.packets, result.packet_dim) == (2, 16, 4)
    pr, pf = packet_features(real, 2), packet_features(fake, 2)
    expected = np.mean([_scipy_frechet(pr[:, p], pf[:, p]) for p in range(16)])
    assert result.distance == pytest.approx(expected, rel=1e-8)
    assert wavelet_frechet_distance(real, real).distance == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(InvalidInputError, match="levels"):
        wavelet_frechet_distance(real, fake, levels=4)


# ---- FID∞ and IS∞ -----------------------------------------------------------------------------------------------

def test_fit_against_inverse_n_matches_polyfit_and_recovers_an_exact_line():
    sizes = np.array([50, 80, 120, 200, 500])
    values = np.array([3.1, 2.7, 2.2, 2.05, 1.9])
    intercept, slope = fit_against_inverse_n(sizes, values)
    poly_slope, poly_intercept = np.polyfit(1.0 / sizes, values, 1)
    assert (intercept, slope) == pytest.approx((poly_intercept, poly_slope), rel=1e-10)
    assert fit_against_inverse_n(sizes, 4.0 + 30.0 / sizes) == pytest.approx((4.0, 30.0), rel=1e-12)


def test_default_sizes_scale_the_reference_points():
    assert default_sizes(50_000) == tuple(np.linspace(5000, 50000, 15).astype(int))
    assert default_sizes(540)[0] == 54 and default_sizes(540)[-1] == 540 and len(default_sizes(540)) == 15


def test_fid_infinity_points_are_fids_of_subsets_and_the_intercept_is_their_fit():
    from isgame.scoring.metrics.fid import frechet_distance

    rng = np.random.default_rng(8)
    real, fake = rng.normal(size=(400, 5)), rng.normal(size=(200, 5)) + 0.3
    result = fid_infinity(real, fake, seed=2)
    order = np.random.default_rng(2)
    expected = [frechet_distance(real, fake[order.permutation(200)[:size]]) for size in result.sizes]
    assert np.allclose(result.values, expected, rtol=1e-9)
    assert result.value_at_infinity == pytest.approx(np.polyfit(1 / np.array(result.sizes), expected, 1)[1], rel=1e-9)
    # the bias in 1/N is positive, so FID∞ is below FID at the largest N
    assert result.value_at_infinity < result.values[-1] and result.slope > 0


def test_is_infinity_uses_isgame_inception_score():
    from isgame.scoring.metrics.inception_score import inception_score

    logits = np.random.default_rng(9).normal(size=(300, 10)) * 3
    result = is_infinity(logits, sizes=(100, 200, 300), seed=1)
    assert result.values[-1] == pytest.approx(inception_score(logits, splits=1).is_mean, rel=1e-12)
    assert result.value_at_infinity == pytest.approx(np.polyfit(1 / np.array([100, 200, 300]), result.values, 1)[1])


# ---- isgame metrics and the Python API ---------------------------------------------------------------------------

def test_metrics_command_gives_the_library_values_on_the_same_features(tmp_path):
    import isgame
    from isgame.scoring.classifiers import load_classifier
    from isgame.scoring.sources.digits_data import digits_split
    from isgame.scoring.sources.samples import open_images

    np.save(tmp_path / "train.npy", digits_split().train_images[:150].numpy())
    names = ["vendi", "sliced-wasserstein", "rbf-mmd", "fld", "fid-infinity", "is-infinity", "wavelet-fd"]
    result = isgame.compute_metrics("digits:test", "noise:uniform", metrics=names, train=str(tmp_path / "train.npy"),
                                    n=60, seed=3, progress=False)
    classifier = load_classifier("digits")
    with torch.no_grad():
        real_images = open_images("digits:test", n=60).load_all()
        fake_images = open_images("noise:uniform", n=60, seed=3).load_all()
        train_images = open_images(str(tmp_path / "train.npy")).load_all()
        real, train = (classifier.features(x).double().numpy() for x in (real_images, train_images))
        logits, fake = (t.double().numpy() for t in classifier.logits_and_features(fake_images))
    values = result.values
    assert list(values) == names
    assert values["vendi"]["vendi"] == pytest.approx(isgame.vendi_score(fake).vendi, rel=1e-6)
    assert values["sliced-wasserstein"]["distance"] == pytest.approx(isgame.sliced_wasserstein(real, fake, seed=3).distance,
                                                                    rel=1e-6)
    assert values["rbf-mmd"]["mmd2"] == pytest.approx(isgame.rbf_mmd(real, fake).mmd2, rel=1e-5)
    assert values["fld"]["fld"] == pytest.approx(isgame.feature_likelihood_divergence(train, real, fake, seed=3).fld,
                                                 rel=1e-5)
    assert values["fid-infinity"]["value_at_infinity"] == pytest.approx(
        isgame.fid_infinity(real, fake, seed=3).value_at_infinity, rel=1e-5)
    assert values["is-infinity"]["value_at_infinity"] == pytest.approx(
        isgame.is_infinity(logits, seed=3).value_at_infinity, rel=1e-5)
    assert values["wavelet-fd"]["distance"] == pytest.approx(
        isgame.wavelet_frechet_distance(real_images.numpy(), fake_images.numpy()).distance, rel=1e-5)
