"""FID, KID and the manifold metrics against independent references."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import prdc
import pytest
from helpers import assert_statistics_close
from scipy import linalg

from isgame.scoring.metrics.fid import (
    FeatureStatisticsAccumulator,
    features_to_statistics,
    fid_sample_size_curve,
    frechet_distance,
    statistics_to_fid,
)
from isgame.scoring.metrics.kid import kernel_inception_distance, unbiased_mmd2
from isgame.scoring.metrics.prdc import precision_recall_density_coverage


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
    # Subsets of 500 out of 1000 overlap, so their mean does not average the noise away: compare with one subset's spread.
    assert abs(same.mean) < 3 * same.std
    assert different.mean > 10 * abs(same.mean)


@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_precision_recall_density_coverage_match_the_prdc_package(shift):
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

    from isgame.scoring.sources.samples import open_images

    payload = json.loads(cli("fid", "digits:test", "digits:train", "--json", "-", "--quiet").stdout)
    with torch.no_grad():
        real = digits_classifier.features(open_images("digits:test").load_all()).double().numpy()
        fake = digits_classifier.features(open_images("digits:train").load_all()).double().numpy()
    assert payload["fid"] == pytest.approx(frechet_distance(real, fake), rel=1e-6)
    assert payload["n_real"] == 540 and payload["n_fake"] == 1257


# --- FID when N <= D: the exact low-rank route ------------------------------------------------------------------

from isgame.scoring.metrics.fid import (  # noqa: E402
    FeatureStatistics,
    covariance_root_rows,
    load_statistics,
    save_statistics,
    trace_sqrt_product,
    trace_sqrt_product_low_rank,
)


def mpmath_fid(a: np.ndarray, b: np.ndarray) -> float:
    """40-digit reference from the same float64 features: ||dmu||^2 + tr S1 + tr S2 - 2 sum sqrt(eig(M M^T)),
    M = X1c X2c^T / sqrt((n1 - 1)(n2 - 1)) (the nonzero eigenvalues of S1 S2 are those of M M^T)."""
    mpmath.mp.dps = 40
    (n1, d), n2 = a.shape, b.shape[0]
    x, y = mpmath.matrix(a.tolist()), mpmath.matrix(b.tolist())
    mu1 = [mpmath.fsum(x[i, j] for i in range(n1)) / n1 for j in range(d)]
    mu2 = [mpmath.fsum(y[i, j] for i in range(n2)) / n2 for j in range(d)]
    xc = mpmath.matrix([[x[i, j] - mu1[j] for j in range(d)] for i in range(n1)])
    yc = mpmath.matrix([[y[i, j] - mu2[j] for j in range(d)] for i in range(n2)])
    m = xc * yc.T / mpmath.sqrt((n1 - 1) * (n2 - 1))
    nuclear = mpmath.fsum(mpmath.sqrt(max(v, 0)) for v in mpmath.eigsy(m * m.T, eigvals_only=True))
    traces = (mpmath.fsum(v ** 2 for v in xc) / (n1 - 1)) + (mpmath.fsum(v ** 2 for v in yc) / (n2 - 1))
    return float(mpmath.fsum((p - q) ** 2 for p, q in zip(mu1, mu2)) + traces - 2 * nuclear)


def test_covariance_root_rows_reproduce_the_covariance():
    a = correlated(9, 20, 1, 3.0)
    roots = covariance_root_rows(a)
    assert roots.shape == (8, 20)
    np.testing.assert_allclose(roots.T @ roots, np.cov(a, rowvar=False), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("n1,n2,d", [(200, 150, 6), (80, 120, 12)])
def test_low_rank_route_matches_scipy_sqrtm_and_the_eigenvalue_route_when_n_exceeds_d(n1, n2, d):
    """The identity tr((S1 S2)^1/2) = ||R1 R2^T||_* holds for any N; checked where sqrtm is well conditioned."""
    a, b = correlated(n1, d, 2), correlated(n2, d, 3, 0.4)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = float(np.trace(linalg.sqrtm(s1 @ s2).real))
    r1, r2 = covariance_root_rows(a), covariance_root_rows(b)
    assert trace_sqrt_product_low_rank(r1, r2, second_is_root=True) == pytest.approx(reference, rel=1e-10)
    assert trace_sqrt_product(s1, s2) == pytest.approx(reference, rel=1e-10)
    # N > D keeps no root rows: the one-shot FID takes the eigenvalue route, as before.
    assert features_to_statistics(a).root_rows is None


@pytest.mark.parametrize("n1,n2,d", [(12, 15, 20), (6, 40, 24)])
def test_fid_with_fewer_samples_than_dimensions_is_exact(n1, n2, d):
    a, b = correlated(n1, d, 4), correlated(n2, d, 5, 0.3)
    exact = mpmath_fid(a, b)
    assert frechet_distance(a, b) == pytest.approx(exact, rel=1e-12, abs=1e-12)
    # One side as covariance only (stored statistics): the (N - 1)-square route, exact up to sqrt of round-off.
    real_only = features_to_statistics(b)
    stored = FeatureStatistics(mean=real_only.mean, covariance=real_only.covariance, n=None)
    assert statistics_to_fid(stored, features_to_statistics(a)) == pytest.approx(exact, rel=1e-7)


def test_round_off_eigenvalues_are_clipped_so_the_eigenvalue_route_reaches_the_exact_value_below_n_lt_d():
    """With N < D, D - N + 1 'zero' eigenvalues come out at round-off level; the square root of each would add
    ~sqrt(eps). Clipped at their round-off level (as a matrix rank reads them), the eigenvalue route agrees with
    the 40-digit reference as closely as the low-rank route; unclipped, it misses by three orders more."""
    a, b = correlated(20, 64, 6), correlated(20, 64, 7, 0.2)
    exact = mpmath_fid(a, b)
    sa, sb = map(features_to_statistics, (a, b))
    eigenvalue_route = statistics_to_fid(FeatureStatistics(sa.mean, sa.covariance, sa.n),
                                         FeatureStatistics(sb.mean, sb.covariance, sb.n))
    assert eigenvalue_route == pytest.approx(exact, rel=1e-11)
    values, vectors = np.linalg.eigh(sa.covariance)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    unclipped = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sb.covariance @ root), 0, None)).sum()
    unclipped_fid = (sa.mean - sb.mean) @ (sa.mean - sb.mean) + np.trace(sa.covariance) + np.trace(sb.covariance) \
        - 2 * unclipped
    assert abs(unclipped_fid - exact) > 1e3 * max(abs(frechet_distance(a, b) - exact), 1e-15)


def test_fid_accumulator_keeps_rows_only_while_n_is_at_most_d():
    a, b = correlated(30, 40, 8), correlated(25, 40, 9, 0.5)
    accumulator = FeatureStatisticsAccumulator(40)
    for chunk in np.array_split(a, 4):
        accumulator.update(chunk)
    streamed = accumulator.compute()
    np.testing.assert_allclose(streamed.root_rows.T @ streamed.root_rows, streamed.covariance, rtol=1e-9, atol=1e-12)
    assert statistics_to_fid(streamed, features_to_statistics(b)) == pytest.approx(mpmath_fid(a, b), rel=1e-11)
    accumulator.update(correlated(20, 40, 10))  # 50 rows > D = 40: the rows go, the sums stay
    assert accumulator.compute().root_rows is None and accumulator.compute().n == 50
    accumulator.reset()
    accumulator.update(a[:5])
    assert accumulator.compute().root_rows.shape == (4, 40)


# --- FID statistics files ---------------------------------------------------------------------------------------

def test_statistics_files_round_trip_and_read_other_tools_formats(tmp_path):
    a = correlated(300, 8, 11)
    statistics = features_to_statistics(a)
    save_statistics(statistics, tmp_path / "ours.npz")
    with np.load(tmp_path / "ours.npz", allow_pickle=False) as archive:
        assert archive["mu"].dtype == archive["sigma"].dtype == np.float64 and int(archive["n"]) == 300
    loaded = load_statistics(tmp_path / "ours.npz")
    np.testing.assert_array_equal(loaded.mean, statistics.mean)
    np.testing.assert_array_equal(loaded.covariance, statistics.covariance)
    # pytorch-fid: np.savez_compressed(path, mu=..., sigma=...), float32 allowed; no n.
    np.savez_compressed(tmp_path / "pytorch_fid.npz", mu=statistics.mean.astype(np.float32),
                        sigma=statistics.covariance.astype(np.float32))
    assert load_statistics(tmp_path / "pytorch_fid.npz").n is None
    # openai's reference batches: images, mu, sigma and spatial statistics in one archive.
    np.savez(tmp_path / "openai.npz", arr_0=np.zeros((4, 8, 8, 3), np.uint8), mu=statistics.mean,
             sigma=statistics.covariance, mu_s=np.zeros(3), sigma_s=np.eye(3))
    openai = load_statistics(tmp_path / "openai.npz")
    b = correlated(200, 8, 12, 0.3)
    assert statistics_to_fid(openai, features_to_statistics(b)) == pytest.approx(frechet_distance(a, b), rel=1e-12)


def test_statistics_files_are_checked(tmp_path):
    from isgame.scoring.errors import InvalidInputError, InvalidTypeError

    np.savez(tmp_path / "images.npz", images=np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(InvalidInputError, match="expected arrays mu and sigma"):
        load_statistics(tmp_path / "images.npz")
    np.savez(tmp_path / "pickled.npz", mu=np.array([object()], dtype=object), sigma=np.eye(1))
    with pytest.raises(InvalidTypeError, match="pickled"):
        load_statistics(tmp_path / "pickled.npz")
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.eye(4))
    with pytest.raises(InvalidInputError, match=r"sigma of shape \(D, D\)"):
        load_statistics(tmp_path / "shape.npz")


def test_fid_cli_reads_and_writes_statistics(cli, tmp_path, digits_classifier):
    import json

    import torch

    from isgame.scoring.sources.samples import open_images

    saved = tmp_path / "stats" / "test.npz"
    direct = json.loads(cli("fid", "digits:train", "digits:test", "--save-stats", saved, "--json", "-", "--quiet").stdout)
    with torch.no_grad():
        test_features = digits_classifier.features(open_images("digits:test").load_all()).double().numpy()
    written = load_statistics(saved)
    assert_statistics_close(written.mean, written.covariance, test_features)  # the command batched otherwise
    # The same statistics from the file as from the images: the same FID (the eigenvalue route takes the real side's
    # square root, so the order of the two sides is kept).
    from_images = json.loads(cli("fid", "digits:test", "digits:train", "--json", "-", "--quiet").stdout)
    from_file = json.loads(cli("fid", saved, "digits:train", "--json", "-", "--quiet").stdout)
    assert from_file["fid"] == pytest.approx(from_images["fid"], rel=1e-12)
    # FID is symmetric up to the route's round-off. The digits' ReLU features leave the covariances rank-deficient,
    # and the square roots of their near-zero eigenvalues turn ~1e-13 of covariance round-off into ~1e-6 of FID:
    # np.cov's two-pass statistics alone give 2.5808956 one way round and 2.5808968 the other.
    assert from_file["fid"] == pytest.approx(direct["fid"], rel=5e-6)
    assert from_file["n_real"] == 540 and from_file["real_is_statistics"] is True


# --- KID against torch-fidelity -----------------------------------------------------------------------------------

@pytest.mark.parametrize("subsets,subset_size,seed", [(10, 50, 2020), (7, 120, 3)])
def test_kid_matches_torch_fidelity_on_identical_features(subsets, subset_size, seed):
    import torch
    from torch_fidelity import metric_kid  # the [test] extra: imported here, not at collection (seconds)

    a, b = correlated(150, 16, 13), correlated(130, 16, 14, 0.2)
    theirs = metric_kid.kid_features_to_metric(torch.from_numpy(a), torch.from_numpy(b), kid_subsets=subsets,
                                               kid_subset_size=subset_size, rng_seed=seed, verbose=False,
                                               kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                               kid_kernel_poly_coef0=1)
    ours = kernel_inception_distance(a, b, subsets=subsets, subset_size=subset_size, seed=seed)
    assert ours.mean == pytest.approx(theirs[metric_kid.KEY_METRIC_KID_MEAN], rel=1e-10)
    assert ours.std == pytest.approx(theirs[metric_kid.KEY_METRIC_KID_STD], rel=1e-8)
    assert ours.to_dict()["std_ddof"] == 0 and "torch-fidelity" in ours.to_dict()["std_convention"]


def test_kid_defaults_are_torch_fidelity_s_and_the_subset_size_is_capped_by_n():
    from torch_fidelity.defaults import DEFAULTS

    a, b = correlated(60, 4, 15), correlated(80, 4, 16)
    result = kernel_inception_distance(a, b)
    assert (result.subsets, DEFAULTS["kid_subsets"], DEFAULTS["kid_subset_size"]) == (100, 100, 1000)
    assert result.subset_size == 60
    values = []
    rng = np.random.RandomState(0)
    for _ in range(100):
        rows_a, rows_b = rng.choice(60, 60, replace=False), rng.choice(80, 60, replace=False)
        values.append(brute_force_mmd2(a[rows_a], b[rows_b]) if _ < 2 else unbiased_mmd2(a[rows_a], b[rows_b]))
    assert result.mean == pytest.approx(np.mean(values), rel=1e-10)
    assert result.stderr == pytest.approx(np.std(values, ddof=1) / 10, rel=1e-8)


def test_kid_of_sets_no_larger_than_a_subset_is_one_value_without_a_std():
    """N = 60 and 60 with subsets of 1000: every subset is a permutation of both whole sets, and the unbiased MMD^2
    does not see row order, so 100 subsets give one value and a std of pure round-off; KID says so."""
    a, b = correlated(60, 4, 15), correlated(60, 4, 16)
    result = kernel_inception_distance(a, b)
    assert result.whole_sets and result.subsets == 1 and result.subset_size == 60
    assert result.mean == pytest.approx(brute_force_mmd2(a, b), rel=1e-10)
    assert math.isnan(result.std) and math.isnan(result.stderr)
    assert "every subset is the whole of both" in result.to_dict()["note"]
    assert not kernel_inception_distance(a, correlated(80, 4, 16)).whole_sets  # the larger set's subsets vary
