"""The matrix as a statistical instrument: its one-sided test, its bootstrap, each column's draw, the new games."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isgame.probes.matrix import (
    HIGHER_IS_BETTER,
    METRIC_FAMILIES,
    METRICS,
    auxiliary_scorers,
    available_metrics,
    game_outputs,
    matrix_context,
    measure_game,
)
from isgame.probes.matrix.games import (
    GAME_FAMILIES,
    GAMES,
    REFERENCE_GAME,
    class_sorted,
    held_out_real,
    mode_dropping_half,
    mode_dropping_one,
    resampling_features,
    truncation,
)
from isgame.probes.matrix.measurements import FAMILIES, INFINITY_DRAW_POINTS, SLICED_DRAW_PROJECTIONS
from isgame.probes.matrix.significance import (
    check_test_settings,
    half_samples,
    holm,
    needed_draws,
    sign_test,
    smallest_p,
)
from isgame.probes.matrix.verdicts import relation, verdict_of
from isgame.scoring.domains import digits_domain
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.fid import frechet_distance
from isgame.scoring.metrics.inception_score import inception_score


@pytest.fixture(scope="module")
def digits():
    return digits_domain()


@pytest.fixture(scope="module")
def measured(digits):
    """Every column on 200 held-out digits, with the context and outputs they came from."""
    from isgame.scoring.runtime.threads import single_threaded

    auxiliary = auxiliary_scorers(digits, robust=None)
    context = matrix_context(digits, n=200, seed=0, auxiliary=auxiliary)
    outputs = game_outputs(digits, held_out_real(digits, 200, 0), auxiliary)
    with single_threaded():  # as the matrix runs them
        return context, outputs, measure_game(context, outputs, available_metrics(auxiliary))


def test_the_sign_test_and_the_draws_it_needs_by_hand():
    # 3 of 9 draws at least as good as the reference: p = (1 + 3) / (1 + 9) = 0.4; NaN draws are left out.
    p, exceed, drawn = sign_test(np.array([-1.0, -2.0, 0.0, 0.5, -0.1, 3.0, -4.0, -5.0, -6.0, math.nan]))
    assert (p, exceed, drawn) == (pytest.approx(0.4), 3, 9)
    assert sign_test(np.array([-1.0] * 19))[0] == pytest.approx(1 / 20) == smallest_p(19)
    # Holm's smallest level for 14 tests at 0.05 is 0.05 / 14 = 0.00357: 280 draws reach it, 279 do not.
    assert needed_draws(14, 0.05) == 280 and smallest_p(280) <= 0.05 / 14 < smallest_p(278)
    for draws, alpha in ((1, 0.05), (True, 0.05), (10, 0.0), (10, 0.5)):
        with pytest.raises(InvalidInputError):
            check_test_settings(draws, alpha)
    check_test_settings(None, 0.05)  # None: as many draws as Holm needs


def test_holm_by_hand():
    # Sorted p: 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, but never below the previous 0.06).
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "untested": math.nan}, 0.05)
    assert adjusted["a"] == (pytest.approx(0.03), True)
    assert adjusted["c"] == (pytest.approx(0.06), False) and adjusted["b"] == (pytest.approx(0.06), False)
    assert math.isnan(adjusted["untested"][0]) and not adjusted["untested"][1]


def test_half_samples_are_seeded_sorted_and_never_repeat_a_row():
    rows = half_samples(50, 3, (0, 1))
    assert [r.tolist() for r in rows] == [r.tolist() for r in half_samples(50, 3, (0, 1))]
    assert [r.tolist() for r in rows] != [r.tolist() for r in half_samples(50, 3, (0, 2))]
    assert all(r.size == 25 and np.all(np.diff(r) > 0) and r.min() >= 0 and r.max() < 50 for r in rows)


def test_a_half_sample_has_the_spread_of_the_full_sets_statistic(measured):
    """Precision is a mean of per-sample indicators: half-samples of n rows drawn without replacement spread it by
    sqrt(p (1 - p) / n) (the finite-population factor of m = n / 2), the full set's own standard error."""
    _, outputs, values = measured
    p = values["precision"].value
    draws = [values["precision"].draw(rows) for rows in half_samples(outputs.n, 400, 7)]
    assert 0 < p < 1 and np.std(draws, ddof=1) == pytest.approx(math.sqrt(p * (1 - p) / outputs.n), rel=0.15)


def test_every_draw_at_the_full_set_reproduces_its_value(measured):
    context, outputs, values = measured
    everything = np.arange(outputs.n)
    assert set(values) == set(METRICS) - {"R-IS", "R-FID"}
    independent = {"KID", "SWD", "C_T", "IS∞", "FID∞"}  # checked below against other computations
    for name, measurement in values.items():
        if name not in independent:
            assert measurement.draw(everything) == pytest.approx(measurement.value, rel=1e-9, abs=1e-12), name
    assert values["C_T"].draw is None  # C_T is tested against its null distribution, not drawn
    # KID's draw is the full-set unbiased MMD^2 under k(x, y) = (x.y / d + 1)^3, here in float64 by hand.
    x, y = outputs.outputs["main"][1], context.reference_features
    kernel = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    m, r = x.shape[0], y.shape[0]
    mmd = ((kernel(x, x).sum() - np.trace(kernel(x, x))) / (m * (m - 1))
           + (kernel(y, y).sum() - np.trace(kernel(y, y))) / (r * (r - 1)) - 2 * kernel(x, y).mean())
    assert values["KID"].draw(everything) == pytest.approx(mmd, rel=1e-9)
    # SWD's draw is POT's sliced distance on the first 50 of the value's directions.
    import ot

    directions = context.sliced_reference[0][:, :SLICED_DRAW_PROJECTIONS]
    expected = ot.sliced_wasserstein_distance(y, x, projections=directions, p=2)
    assert values["SWD"].draw(everything) == pytest.approx(float(expected), rel=1e-9)
    assert values["FID"].value == pytest.approx(frechet_distance(y, x), rel=1e-9)
    # IS∞ and FID∞ draws fit 5 points instead of 15: the library's extrapolations with those sizes.
    from isgame.scoring.metrics.infinity import default_sizes, fid_infinity, is_infinity

    sizes = default_sizes(outputs.n, points=INFINITY_DRAW_POINTS)
    logits = outputs.outputs["main"][0]
    assert values["IS∞"].draw(everything) == pytest.approx(
        is_infinity(logits, sizes=sizes, seed=0).value_at_infinity, rel=1e-9)
    assert values["FID∞"].draw(everything) == pytest.approx(
        fid_infinity(y, x, sizes=sizes, seed=0).value_at_infinity, rel=1e-7)


def test_draws_on_a_half_sample_match_the_library_on_those_rows(measured):
    """Each draw equals its metric computed afresh, by the library, on the drawn rows."""
    import ot

    from isgame.scoring.metrics.prdc import precision_recall_density_coverage
    from isgame.scoring.metrics.rbf_mmd import rbf_mmd

    context, outputs, values = measured
    rows = half_samples(outputs.n, 1, 3)[0]
    x, y = outputs.outputs["main"][1][rows], context.reference_features
    directions = context.sliced_reference[0][:, :SLICED_DRAW_PROJECTIONS]
    assert values["SWD"].draw(rows) == pytest.approx(float(ot.sliced_wasserstein_distance(y, x, projections=directions,
                                                                                           p=2)), rel=1e-9)
    assert values["RBF-MMD"].draw(rows) == pytest.approx(rbf_mmd(y, x).mmd2, rel=1e-9)
    assert values["FID"].draw(rows) == pytest.approx(frechet_distance(y, x), rel=1e-9)
    manifold = precision_recall_density_coverage(y, x, k_precision_recall=3, k_density_coverage=5)
    for name in ("precision", "recall", "density", "coverage"):
        assert values[name].draw(rows) == pytest.approx(getattr(manifold, name), rel=1e-12), name
    logits = outputs.outputs["main"][0][torch.from_numpy(rows)]
    scores = inception_score(logits, splits=10, track_stderr=False)
    assert values["IS"].draw(rows) == pytest.approx(scores.is_mean, rel=1e-12)
    assert values["exp(I)"].draw(rows) == pytest.approx(scores.improved_is, rel=1e-12)


def test_a_cells_verdict_does_not_change_under_a_monotone_change_of_scale(measured):
    """The sign test reads only whether each draw of the game is at least as good as the reference's: FID and
    log(FID), KID and KID^3, precision and its root give the same p-value from the same draws (a z test on the
    metric's own scale would not), and the reference's draws are a shrunk, shifted copy of the game's."""
    from isgame.probes.matrix.significance import ReferenceDraws, test_cell

    _, outputs, values = measured
    for name, transform in (("FID", np.log), ("KID", lambda v: v ** 3), ("precision", np.sqrt)):
        draw, results = values[name].draw, []
        for scale in (lambda v: v, transform):
            reference = ReferenceDraws({name: lambda rows, s=scale: s(draw(rows) * 0.9 + 0.01)}, {name: outputs.n},
                                       0, "reference")
            test, _ = test_cell(lambda rows, s=scale: s(draw(rows)), reference, name, HIGHER_IS_BETTER[name],
                                value=0.0, reference_value=0.0, rows=outputs.n, most=60, alpha=0.05, seed=(0, 1))
            results.append((test.p_value, test.draws, test.exceedances))
        assert results[0] == results[1], name


def test_the_verdict_table_of_scope_and_flag():
    assert relation(("fidelity",), ("fidelity", "diversity")) == "in scope"
    assert relation(("novelty",), ("fidelity", "diversity")) == "out of scope"
    assert relation((), ("novelty",)) == "none" and relation(None, ("novelty",)) == "in scope"
    assert [verdict_of("in scope", flag) for flag in (True, False)] == ["detected", "missed"]
    assert [verdict_of("none", flag) for flag in (True, False)] == ["false_alarm", "no_alarm"]
    assert verdict_of("out of scope", True) == verdict_of("out of scope", False) == "not_applicable"


def test_families_and_directions_cover_every_column_and_game():
    assert set(METRIC_FAMILIES) == set(METRICS) == set(HIGHER_IS_BETTER) and set(METRIC_FAMILIES.values()) <= set(FAMILIES)
    assert len(METRICS) >= 18 and len(GAMES) >= 16 and set(GAME_FAMILIES) == set(GAMES)
    assert GAME_FAMILIES[REFERENCE_GAME] == "reference" and HIGHER_IS_BETTER["C_T"] is None
    order = [FAMILIES.index(METRIC_FAMILIES[m]) for m in METRICS]
    assert order == sorted(order)  # columns grouped by family


def _predicted(domain, images):
    with torch.no_grad():
        return domain.classifier(images).argmax(dim=1)


def test_the_new_games(digits):
    real = held_out_real(digits, 540, 0)
    classes = _predicted(digits, real)
    ordered = class_sorted(digits, 540, 0)
    assert torch.equal(torch.sort(ordered.reshape(540, -1), dim=0).values, torch.sort(real.reshape(540, -1), dim=0).values)
    assert torch.all(torch.diff(_predicted(digits, ordered)) >= 0)
    split_is = inception_score(digits.classifier(ordered).detach(), splits=10, track_stderr=False).is_mean
    assert split_is < 0.5 * inception_score(digits.classifier(real).detach(), splits=10, track_stderr=False).is_mean
    # Truncation: half-way from each image to its class's mean training image.
    pulled = truncation(digits, 100, 0)
    means = torch.stack([digits.train[digits.train_classes == c].mean(dim=0) for c in classes[:100].tolist()])
    assert torch.allclose(pulled - means, 0.5 * (real[:100] - means), atol=1e-6)
    assert len(torch.unique(_predicted(digits, mode_dropping_one(digits, 540, 0)))) == 9
    assert len(torch.unique(_predicted(digits, mode_dropping_half(digits, 540, 0)))) == 5
    # On real images that show only 4 classes, "half" drops 2 of those 4, whatever K is.
    from dataclasses import replace

    few = replace(digits, real=digits.real[classes < 4])
    few.__dict__.pop("real_outputs", None)
    assert len(torch.unique(_predicted(few, mode_dropping_half(few, 50, 0)))) == 2


def test_feature_resampling_lowers_fid_below_the_pool(digits):
    """Resampling honest samples by weights fitted on the features lowers FID against the training set far below
    the pool's own (Kynkäänniemi et al. 2023), without changing a single image."""
    train = digits.train_outputs[1].double().numpy()
    pool = GAMES["honest KDE"](digits, 300, 0)
    resampled = resampling_features(digits, 300, 0)
    features = lambda images: digits.classifier.features(images).detach().double().numpy()  # noqa: E731
    assert frechet_distance(train, features(resampled)) < 0.5 * frechet_distance(train, features(pool))


def test_columns_are_chosen_in_any_spelling_and_missing_classifiers_are_named():
    assert available_metrics({}, ["fid", "Wavelet-FD", "c_t"]) == ["FID", "wavelet FD", "C_T"]
    with pytest.raises(InvalidInputError) as error:
        available_metrics({}, ["R-IS"])
    assert "robust classifier" in str(error.value) and "robust_classifier" in str(error.value)
    with pytest.raises(InvalidInputError, match="unknown"):
        available_metrics({}, ["inception"])


def test_the_weighted_frechet_distance_takes_the_smaller_side_with_the_same_value():
    """Both routes of the resampling game's loss equal scipy's Fréchet distance of the weighted statistics."""
    from scipy.linalg import sqrtm

    from isgame.probes.matrix.games import _weighted_frechet

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(40, 6))
    mean, covariance = reference.mean(axis=0), np.cov(reference, rowvar=False)
    values, log_weights = rng.normal(size=(5, 6)) + 0.3, rng.normal(size=5) * 0.5
    w = np.exp(log_weights)
    weighted_mean = w @ values / w.sum()
    weighted_cov = (values - weighted_mean).T @ (w[:, None] * (values - weighted_mean)) / (w.sum() - 1)
    expected = (np.sum((weighted_mean - mean) ** 2) + np.trace(weighted_cov) + np.trace(covariance)
                - 2 * np.trace(sqrtm(weighted_cov @ covariance)).real)
    root = torch.from_numpy(np.real(sqrtm(covariance)))
    as_tensor = lambda a: torch.from_numpy(np.asarray(a, np.float64))  # noqa: E731
    few = _weighted_frechet(as_tensor(values), as_tensor(log_weights), as_tensor(mean), root, as_tensor(covariance))
    many = np.vstack([values] * 2)  # 10 rows > 6 dimensions: the D x D route, same weighted statistics
    both = _weighted_frechet(as_tensor(many), as_tensor(np.concatenate([log_weights] * 2)), as_tensor(mean), root,
                             as_tensor(covariance))
    assert float(few) == pytest.approx(expected, rel=1e-6)
    # Doubling every row with its weight keeps the mean; the covariance changes only by the (total - 1) divisor.
    w2 = np.concatenate([w, w])
    m2 = np.vstack([values] * 2)
    cov2 = (m2 - weighted_mean).T @ (w2[:, None] * (m2 - weighted_mean)) / (w2.sum() - 1)
    expected2 = (np.sum((weighted_mean - mean) ** 2) + np.trace(cov2) + np.trace(covariance)
                 - 2 * np.trace(sqrtm(cov2 @ covariance)).real)
    assert float(both) == pytest.approx(expected2, rel=1e-6)


def test_games_are_chosen_by_name_with_the_reference_always_played(cli):
    from isgame.probes.matrix.games import select_games

    assert list(select_games(["uniform NOISE", "truncation (ψ = 0.5)"])) == [REFERENCE_GAME, "uniform noise",
                                                                          "truncation (ψ = 0.5)"]
    from helpers import assert_one_line_error

    assert_one_line_error(cli("matrix", "--game", "telepathy"), "--game", "unknown telepathy")


@pytest.mark.parametrize("reference_rows", [40, 6])  # the symmetric root (N > D) and the low-rank one (N <= D)
def test_a_draws_fid_through_the_projection_is_the_fid_of_its_rows(reference_rows):
    """frechet_from_projection against scipy's sqrtm on float64 features, with the reference's covariance root of
    either shape (r, D) that the FID statistics keep."""
    from scipy import linalg

    from isgame.probes.matrix.measurements import frechet_from_projection
    from isgame.scoring.metrics.fid import features_to_statistics
    from isgame.scoring.metrics.infinity import with_covariance_root

    rng = np.random.default_rng(3)
    reference_features, features = rng.normal(size=(reference_rows, 12)), rng.normal(0.3, 1.2, size=(9, 12))
    reference = with_covariance_root(features_to_statistics(reference_features))
    assert reference.root_rows.shape[0] == (12 if reference_rows > 12 else reference_rows - 1)
    value = frechet_from_projection(features, features @ reference.root_rows.T, reference)
    mean, covariance = features.mean(axis=0), np.cov(features, rowvar=False)
    reference_covariance = np.cov(reference_features, rowvar=False)
    root = linalg.sqrtm(covariance @ reference_covariance).real
    expected = np.sum((mean - reference_features.mean(axis=0)) ** 2) + np.trace(covariance) \
        + np.trace(reference_covariance) - 2 * np.trace(root)
    assert value == pytest.approx(expected, rel=1e-7)  # sqrtm of the non-symmetric product: about 1e-8


def test_too_few_draws_leave_a_cell_undecided_not_missed():
    """With 2 draws no p-value can go below 1/3, so no cell can be flagged: the unflagged cells are undecided
    (a test that cannot flag says nothing), and a note names the draws needed; with the draws Holm needs, uniform
    noise is detected by FID."""
    from isgame.probes.matrix import robustness_matrix
    from isgame.scoring.domains import digits_domain

    games = {name: GAMES[name] for name in (REFERENCE_GAME, "uniform noise", "class-sorted order")}
    few = robustness_matrix(digits_domain(), n=60, games=games, metrics=["FID"], bootstrap=2)
    assert few.cells["uniform noise"]["FID"].verdict == "undecided" and not few.cells["uniform noise"]["FID"].fooled
    assert few.cells["class-sorted order"]["FID"].verdict == "undecided"
    assert few.confusion()["FID"]["undecided"] == 2 and "FID" not in few.unfooled_metrics()
    assert any("undecided, not missed" in note for note in few.notes)
    enough = robustness_matrix(digits_domain(), n=60, games=games, metrics=["FID"])
    assert enough.cells["uniform noise"]["FID"].verdict == "detected"
    assert enough.cells["class-sorted order"]["FID"].verdict in ("no_alarm", "false_alarm")


def test_a_wavelet_draw_is_the_mean_packet_frechet_distance_of_its_rows():
    """The wavelet column's draw (every packet in one stacked eigendecomposition) against the mean of
    statistics_to_fid over the packets of the same rows, one packet at a time."""
    from isgame.probes.matrix.measurements import measure_wavelet
    from isgame.scoring.domains import digits_domain
    from isgame.scoring.metrics.fid import features_to_statistics, statistics_to_fid
    from isgame.scoring.metrics.wavelet_fd import packet_features

    domain = digits_domain()
    context = matrix_context(domain, n=120, seed=0, auxiliary={})
    outputs = game_outputs(domain, domain.real[:120], {})
    draw = measure_wavelet(context, outputs)["wavelet FD"].draw
    rows = np.sort(np.random.default_rng(2).choice(120, 60, replace=False))
    packets = packet_features(context.wavelet_images(domain.real[:120][torch.from_numpy(rows)]))
    expected = np.mean([statistics_to_fid(context.wavelet_reference[p], features_to_statistics(packets[:, p]))
                        for p in range(packets.shape[1])])
    assert draw(rows) == pytest.approx(expected, rel=1e-9)
