"""The leaderboard (``isgame robustness``): each metric's differentiable loss is the metric's own number, the
ε-bounded attack on it keeps its loss monotone and beats a random perturbation, and the leaderboard reports the
ε that fools each metric."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from helpers import assert_one_line_error
from isgame.attacks.metric_attack import MetricAttack, check_grid, random_sign_baseline
from isgame.attacks.metric_losses import (
    MetricLoss,
    frechet_loss,
    gaussian_mmd_loss,
    haar_packets,
    inception_loss,
    polynomial_mmd_loss,
    sliced_wasserstein_loss,
    vendi_loss,
    wavelet_frechet_loss,
)
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.runtime.threads import single_threaded

SMALL_N = 60


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@pytest.fixture(scope="module")
def features():
    """(300, 6) reference and (80, 6) sample features, float64, the samples shifted and scaled."""
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(300, 6))
    samples = 1.3 * rng.normal(size=(80, 6)) + 0.4
    return reference, samples


def test_frechet_loss_is_statistics_to_fid(features):
    from isgame.scoring.metrics.fid import features_to_statistics, statistics_to_fid

    reference, samples = features
    statistics = features_to_statistics(reference)
    loss = frechet_loss(_identity, statistics.mean, statistics.covariance)(torch.from_numpy(samples))
    assert float(loss) == pytest.approx(statistics_to_fid(statistics, features_to_statistics(samples)), rel=1e-10)


def test_polynomial_mmd_loss_is_the_whole_set_unbiased_kid(features):
    from isgame.scoring.metrics.kid import kernel_inception_distance

    reference, samples = features
    equal = reference[:80]  # equal sizes: KID of the whole sets is one unbiased MMD^2
    expected = kernel_inception_distance(equal, samples, subset_size=80).mean
    assert float(polynomial_mmd_loss(_identity, equal)(torch.from_numpy(samples))) == pytest.approx(expected, rel=1e-10)


def test_gaussian_mmd_loss_is_rbf_mmd(features):
    from isgame.scoring.metrics.rbf_mmd import rbf_mmd

    reference, samples = features
    expected = rbf_mmd(reference, samples, bandwidth=2.5).mmd2
    assert float(gaussian_mmd_loss(_identity, reference, 2.5)(torch.from_numpy(samples))) == pytest.approx(
        expected, rel=1e-10)


def test_sliced_wasserstein_loss_is_pots_on_the_same_directions(features):
    import ot
    from isgame.scoring.metrics.sliced_wasserstein import sliced_wasserstein

    reference, samples = features
    directions = ot.sliced.get_random_projections(6, 40, seed=7)
    expected = sliced_wasserstein(reference, samples, projections=40, seed=7).distance
    value = sliced_wasserstein_loss(_identity, reference, directions)(torch.from_numpy(samples))
    assert float(value) == pytest.approx(expected, rel=1e-10)


def test_vendi_loss_is_minus_vendi_score(features):
    from isgame.scoring.metrics.vendi import vendi_score

    _, samples = features
    assert -float(vendi_loss(_identity)(torch.from_numpy(samples))) == pytest.approx(vendi_score(samples).vendi,
                                                                                      rel=1e-10)


@pytest.mark.parametrize("splits", [1, 4])
def test_inception_loss_is_minus_the_inception_score(splits):
    from isgame.scoring.metrics.inception_score import inception_score

    logits = torch.from_numpy(np.random.default_rng(1).normal(scale=3.0, size=(40, 5)))
    result = inception_score(logits, splits=splits, track_stderr=False)
    assert -float(inception_loss(_identity, splits, one_marginal=False)(logits)) == pytest.approx(result.is_mean,
                                                                                                   rel=1e-10)
    assert -float(inception_loss(_identity, splits, one_marginal=True)(logits)) == pytest.approx(result.improved_is,
                                                                                                  rel=1e-10)


def test_wavelet_loss_is_the_wavelet_frechet_distance():
    from isgame.scoring.metrics.fid import features_to_statistics
    from isgame.scoring.metrics.wavelet_fd import packet_features, wavelet_frechet_distance

    rng = np.random.default_rng(2)
    real, fake = rng.uniform(size=(50, 1, 8, 8)), rng.uniform(size=(40, 1, 8, 8)) ** 2
    packets = packet_features(real, 2)
    reference = [(s.mean, s.covariance) for s in (features_to_statistics(packets[:, p])
                                                  for p in range(packets.shape[1]))]
    loss = wavelet_frechet_loss(lambda images: haar_packets(images, 2), reference)
    np.testing.assert_allclose(haar_packets(torch.from_numpy(fake), 2).numpy(), packet_features(fake, 2), atol=1e-15)
    assert float(loss(torch.from_numpy(fake))) == pytest.approx(wavelet_frechet_distance(real, fake, levels=2).distance,
                                                                rel=1e-10)


@pytest.fixture(scope="module")
def reference():
    """The matrix's reference on the digits at a small n, built once."""
    from isgame.probes.matrix import matrix_reference
    from isgame.scoring.domains import load_domain

    return matrix_reference(load_domain("digits"), n=SMALL_N, seed=0, most_draws=20)


@pytest.fixture(scope="module")
def kde_images(reference):
    from isgame.probes.matrix.games import GAMES

    return GAMES["honest KDE"](reference.domain, SMALL_N, 0)


@pytest.mark.parametrize("metric", ["IS", "exp(I)", "R-IS", "FID", "FID-b", "R-FID", "KID", "RBF-MMD", "SWD",
                                    "wavelet FD", "Vendi"])
def test_each_loss_is_the_matrix_measurement_on_images(metric, reference, kde_images):
    """At equal images, the loss is the number the matrix measures (KID: its whole-set draw), with a finite gradient."""
    from isgame.probes.leaderboard import metric_loss, metric_value

    loss = metric_loss(metric, reference.context, reference.domain.classifier)
    measured = reference.measure(reference.outputs(kde_images), [metric])[metric]
    expected = measured.draw(np.arange(SMALL_N)) if metric == "KID" else measured.value
    images = kde_images.clone().requires_grad_(True)
    with single_threaded():  # as the attack runs it (small eigendecompositions, no waiting threads)
        value = loss.loss(images)
        (gradient,) = torch.autograd.grad(value, images)
    # float32 networks: batch composition moves features by round-off; the wavelet distance reads pixels alone
    assert metric_value(metric, float(value.detach())) == pytest.approx(expected, rel=1e-9 if metric == "wavelet FD" else 1e-5)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0


def test_no_loss_for_a_metric_without_one(reference):
    from isgame.probes.leaderboard import metric_loss

    with pytest.raises(InvalidInputError, match="no differentiable loss"):
        metric_loss("precision", reference.context, reference.domain.classifier)


@pytest.fixture(scope="module")
def fid_attack(reference, kde_images):
    from isgame.probes.leaderboard import metric_loss

    loss = metric_loss("FID", reference.context, reference.domain.classifier)
    return loss, MetricAttack(steps=5)(loss, kde_images, epsilons=[1 / 255, 4 / 255, 8 / 255])


def test_attack_loss_starts_clean_and_never_rises(fid_attack, kde_images):
    loss, result = fid_attack
    assert result.epsilons == [0.0, 1 / 255, 4 / 255, 8 / 255]
    # a float32 network: one thread or two move the features by round-off
    assert result.losses[0] == pytest.approx(MetricAttack.evaluate(loss, kde_images), rel=1e-6)
    assert torch.equal(result.sets[0].images, kde_images)
    assert all(later <= earlier for earlier, later in zip(result.losses, result.losses[1:]))
    assert result.losses[-1] < result.losses[0]
    for attacked in result.sets:
        assert float((attacked.images - kde_images).abs().max()) <= attacked.epsilon + 1e-6
        assert 0.0 <= float(attacked.images.min()) and float(attacked.images.max()) <= 1.0


def test_attack_beats_a_random_sign_perturbation(fid_attack, kde_images):
    loss, result = fid_attack
    baseline = random_sign_baseline(loss, kde_images, 8 / 255, seed=0)
    assert result.losses[-1] < baseline.loss
    assert float((baseline.images - kde_images).abs().max()) <= 8 / 255 + 1e-6


@pytest.mark.parametrize("metric", ["IS", "KID", "wavelet FD"])
def test_attack_on_other_metrics_beats_a_random_sign_perturbation(metric, reference, kde_images):
    from isgame.probes.leaderboard import metric_loss

    loss = metric_loss(metric, reference.context, reference.domain.classifier)
    result = MetricAttack(steps=4)(loss, kde_images, epsilons=[8 / 255])
    assert result.losses[-1] < random_sign_baseline(loss, kde_images, 8 / 255, seed=0).loss < float("inf")


def test_attack_keeps_the_start_when_no_step_helps(kde_images):
    """A loss that every move raises: the best set at each ε is the clean one, loss unchanged."""
    clean = kde_images.clone()
    loss = MetricLoss(metric="toy", loss=lambda images: (images - clean).abs().sum())
    result = MetricAttack(steps=3)(loss, kde_images, epsilons=[2 / 255])
    assert result.losses == [0.0, 0.0]
    assert torch.equal(result.sets[-1].images, clean)


@pytest.mark.parametrize("bad", [[-1 / 255], [math.nan], []])
def test_grid_refused_in_one_line(bad):
    with pytest.raises(InvalidInputError, match="ε"):
        check_grid(bad)


def test_steps_refused():
    with pytest.raises(InvalidInputError, match="steps"):
        MetricAttack(steps=0)


@pytest.fixture(scope="module")
def small_board():
    """FID (white-box) and precision (transfer from FID) on uniform noise, a grid too short to fool either."""
    from isgame.probes.leaderboard import robustness_leaderboard
    from isgame.scoring.domains import load_domain

    return robustness_leaderboard(load_domain("digits"), n=SMALL_N, epsilons=[1 / 255], metrics=["FID", "precision"],
                                  sources=["uniform-noise"], steps=2, most_draws=20)


def test_small_leaderboard_structure(small_board):
    payload = json.loads(json.dumps(small_board.to_dict()))
    assert payload["epsilons"] == [0.0, 1 / 255]
    assert payload["sources"] == ["uniform noise"] and payload["metrics"] == ["FID", "precision"]
    entries = {(e["metric"], e["source"]): e for e in payload["entries"]}
    assert entries[("FID", "uniform noise")]["attack"] == "white-box"
    assert entries[("precision", "uniform noise")]["attack"] == "transfer from FID"
    for entry in entries.values():
        assert entry["status"] == "not fooled within the grid"
        assert entry["epsilon_to_fool"] is None and entry["epsilon_to_fool_label"] == "> 1/255"
        assert [g["verdict"] for g in entry["grid"]] == ["detected", "detected"]
        assert entry["normalised"][0] == 0.0 and len(entry["normalised"]) == 2
        assert set(entry) >= {"value_clean", "value_at_max_epsilon", "held_out_real", "bisection"}
    assert entries[("FID", "uniform noise")]["attack_losses"][1] <= entries[("FID", "uniform noise")]["attack_losses"][0]
    assert payload["transfer"] == []  # FID-b and the wavelet distance were not asked for


def test_normalised_is_zero_clean_and_one_at_held_out_real():
    from isgame.probes.leaderboard_result import EpsilonVerdict, LeaderboardEntry

    grid = [EpsilonVerdict(e, v, 0.01, 20, "detected") for e, v in ((0.0, 50.0), (1 / 255, 30.0), (2 / 255, 10.0))]
    entry = LeaderboardEntry(metric="FID", source="honest KDE", attack="white-box", status="fooled",
                             epsilon_to_fool=2 / 255, reference_value=10.0, higher_is_better=False, grid=grid)
    assert entry.normalised == [0.0, 0.5, 1.0]
    assert entry.epsilon_label() == "2/255"


def test_leaderboard_display_draws_one_panel_per_source(small_board):
    import matplotlib

    matplotlib.use("Agg")
    from isgame.probes.leaderboard import LeaderboardDisplay

    display = LeaderboardDisplay(small_board).plot()
    assert display.ax_.get_title().startswith("uniform noise")
    labels = [line.get_label() for line in display.ax_.get_lines() if not line.get_label().startswith("_")]
    assert "FID" in labels and "precision (transfer from FID)" in labels
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["0", "1/255"]
    # readable at 800 px wide: a 9 pt text is 9 * 800 / (72 W) px high on a figure W inches wide
    texts = [*display.ax_.get_xticklabels(), *display.ax_.get_legend().get_texts(), display.ax_.title]
    assert min(t.get_fontsize() for t in texts) >= 9
    assert display.figure_.get_figwidth() <= 800 / 72


def test_leaderboard_is_exported():
    import isgame
    import isgame.probes
    from isgame.probes.leaderboard import robustness_leaderboard

    assert isgame.probes.robustness_leaderboard is robustness_leaderboard
    assert isgame.robustness_leaderboard is robustness_leaderboard


def test_unknown_source_refused(digits_classifier):
    from isgame.probes.leaderboard import robustness_leaderboard

    with pytest.raises(InvalidInputError, match="sources"):
        robustness_leaderboard(digits_classifier, sources=["gaussian blobs"])


def test_cli_robustness_writes_json_and_figure(cli, tmp_path):
    out = tmp_path / "board"
    result = cli("robustness", "--n", SMALL_N, "--eps", "0,1/255", "--metric", "FID", "--source", "uniform-noise",
                 "--steps", 2, "--out", out, "--json", tmp_path / "board.json", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert (out / "robustness.png").stat().st_size > 0
    written = json.loads((out / "robustness.json").read_text())
    assert written["files"] == {"figure": "robustness.png", "json": "robustness.json"}
    assert written["entries"][0]["metric"] == "FID" and "provenance" in written
    assert json.loads((tmp_path / "board.json").read_text())["entries"] == written["entries"]
    assert "ε to fool" in result.stdout and "> 1/255" in result.stdout


def test_cli_robustness_bad_eps_is_one_line(cli, tmp_path):
    result = cli("robustness", "--eps", "0,-1/255", "--out", tmp_path / "x", "--quiet")
    assert_one_line_error(result, "--eps")


class _FakeChain:
    """A chain whose set at ε measures ε itself (a metric that falls as the attack grows, lower is better)."""

    def __init__(self):
        from isgame.attacks.metric_losses import MetricLoss

        self.loss, self.grid_losses, self.asked = MetricLoss(metric="FID", loss=lambda images: images.sum()), [], []

    def at(self, epsilon, below):
        assert below < epsilon
        self.asked.append(epsilon)

    def measured(self, epsilon, metric):
        from isgame.probes.matrix.measurements import Measurement

        return Measurement(epsilon)


class _FakeReference:
    """Flags (detected) a set while its value is below ``threshold`` ε, misses it from there on."""

    def __init__(self, threshold):
        from isgame.probes.matrix.measurements import Measurement

        self.threshold, self.row = threshold, {"FID": Measurement(1.0)}

    def judge(self, measured, column, game, *, name=None):
        from isgame.probes.matrix.verdicts import MatrixCell

        missed = measured.value >= self.threshold
        return MatrixCell(value=measured.value, reference=1.0, fooled=missed, margin=0.0, p_value=0.5 if missed else 0.01,
                          verdict="missed" if missed else "detected", draws=39)


@pytest.mark.parametrize("threshold", [3 / 255, 5 / 255, 0.5 / 255, 0.0])
def test_bisection_brackets_the_epsilon_that_fools(threshold):
    """The ε to fool is the upper end of a bracket around the threshold, within 2^(1/8) of it after 3 geometric
    steps (the first bracket from 0 is halved); a threshold on the grid is found exactly."""
    from isgame.probes.leaderboard import _entry
    from isgame.probes.matrix.games import GAMES

    grid = [e / 255 for e in (0, 1, 2, 4, 8)]
    chain = _FakeChain()
    entry = _entry("FID", GAMES["honest KDE"], chain, grid, _FakeReference(threshold), 3)
    assert entry.status == "fooled" and entry.epsilon_to_fool >= threshold
    if threshold == 0.0:
        assert entry.epsilon_to_fool == 0.0 and entry.bisection == []
    elif threshold < 1 / 255:  # bracket (0, 1/255]: halving
        assert entry.epsilon_to_fool - threshold <= (1 / 255) / 8
    else:
        assert entry.epsilon_to_fool / threshold <= 2 ** (1 / 8) + 1e-12
    assert [b.epsilon for b in entry.bisection] == chain.asked
