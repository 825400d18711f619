"""Probes on constructed cases: copy detectors, generators, baselines and sweeps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from isgame.probes.copy_detectors import (authenticity, data_copying_test, leave_one_out_nearest_distances, mann_whitney_z,
                                   nearest_distances, nearest_training_test)
from isgame.probes.generators import KdeGenerator, replay
from isgame.probes.memorization import memorization_probe
from isgame.probes.sensitivity import (SPLIT_COUNTS, score_synthetic, split_sweep_digits, synthetic_exact_is,
                                synthetic_probabilities)
from isgame.scoring.digits_data import digits_split
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.inception_score import inception_score


def gaussian_mixture(n: int, seed: int, dim: int = 8) -> np.ndarray:
    """Samples of one fixed 5-component Gaussian mixture in ``dim`` dimensions."""
    centres = np.random.default_rng(1234).normal(scale=4.0, size=(5, dim))
    rng = np.random.default_rng(seed)
    return centres[rng.integers(0, 5, size=n)] + rng.normal(size=(n, dim))


@pytest.fixture(scope="module")
def mixture():
    return {"train": gaussian_mixture(2000, 1), "held_out": gaussian_mixture(1000, 2), "fresh": gaussian_mixture(1000, 3)}


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(0)
    reference, queries = rng.normal(size=(300, 6)), rng.normal(size=(50, 6))
    brute = np.sqrt(((queries[:, None, :] - reference[None, :, :]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(nearest_distances(reference, queries), brute, rtol=1e-12)
    pairwise = np.sqrt(((reference[:, None, :] - reference[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(pairwise, np.inf)
    np.testing.assert_allclose(leave_one_out_nearest_distances(reference), pairwise.min(axis=1), rtol=1e-12)


def test_mann_whitney_z_matches_pair_counting():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=40), rng.normal(0.3, 1, size=55)
    u = sum((x > y) + 0.5 * (x == y) for x in a for y in b)
    expected = (u - 40 * 55 / 2) / math.sqrt(40 * 55 * (40 + 55 + 1) / 12)
    assert mann_whitney_z(a, b) == pytest.approx(expected, rel=1e-12)


def test_ct_is_strongly_negative_for_replay_and_near_zero_for_fresh_data(mixture):
    replayed = mixture["train"][:1000]
    assert data_copying_test(mixture["train"], mixture["held_out"], replayed).ct_statistic < -5
    fresh = data_copying_test(mixture["train"], mixture["held_out"], mixture["fresh"])
    assert abs(fresh.ct_statistic) < 2
    assert fresh.cells_used >= 5


def test_authenticity_is_zero_for_copies_and_high_for_fresh_data(mixture):
    assert authenticity(mixture["train"], mixture["train"][:500]) == 0.0
    assert authenticity(mixture["train"], mixture["fresh"]) > 0.3


def test_nearest_training_test_flags_copies(mixture):
    copies = nearest_training_test(mixture["train"], mixture["held_out"], mixture["train"][:300])
    fresh = nearest_training_test(mixture["train"], mixture["held_out"], mixture["fresh"])
    assert copies.near_copy_fraction == 1.0 and copies.median_ratio == 0.0
    assert fresh.near_copy_fraction < 0.05 and 0.8 < fresh.median_ratio < 1.25


def test_kde_bandwidth_is_the_memorisation_knob():
    train = digits_split().train_images
    kde = KdeGenerator(train)
    flat_train = train.reshape(train.shape[0], -1).double().numpy()
    small = nearest_distances(flat_train, kde.sample(200, bandwidth=0.01).reshape(200, -1).double().numpy())
    large = nearest_distances(flat_train, kde.sample(200, bandwidth=1.0).reshape(200, -1).double().numpy())
    assert np.median(small) < 0.5 * np.median(large)
    images = kde.sample(50, bandwidth=0.5, seed=1)
    assert images.shape == (50, 1, 8, 8) and float(images.min()) >= 0 and float(images.max()) <= 1
    assert torch.equal(images, kde.sample(50, bandwidth=0.5, seed=1))


def test_replay_variants():
    train = digits_split().train_images
    assert torch.equal(replay(train), train)
    resampled = replay(train, n=300, seed=1, resample=True)
    assert resampled.shape[0] == 300
    flat = train.reshape(train.shape[0], -1)
    assert all((flat == row.reshape(1, -1)).all(dim=1).any() for row in resampled[:20])
    noisy = replay(train, pixel_noise=0.02)
    assert 0 < float((noisy - train).abs().mean()) < 0.03
    assert torch.equal(replay(train, flip_probability=1.0), torch.flip(train, dims=[3]))
    half = replay(train, seed=3, flip_probability=0.5)
    mirrored = (half == torch.flip(train, dims=[3])).flatten(1).all(dim=1)
    unchanged = (half == train).flatten(1).all(dim=1)
    assert bool((mirrored | unchanged).all())  # every row is its training image, mirrored or not
    mirrored_only = mirrored & ~unchanged  # a left-right symmetric digit counts as both
    assert abs(float(mirrored_only.float().mean()) - 0.5) < 0.05
    assert torch.equal(half, replay(train, seed=3, flip_probability=0.5))
    with pytest.raises(InvalidInputError, match="flip probability"):
        replay(train, flip_probability=1.5)


def test_flipped_replay_is_half_caught_by_near_copies(digits_classifier):
    """Mirrored digits are not pixel copies: the near-copy fraction sees about the unflipped half."""
    result = memorization_probe(digits_classifier, bandwidths=(0.1,), n=500)
    flipped, replayed = result.by_name("replay-flipped"), result.by_name("replay")
    assert replayed.near_copy_fraction == 1.0
    assert 0.4 < flipped.near_copy_fraction < 0.6
    assert flipped.ct_statistic > replayed.ct_statistic + 5


def test_split_sweep_agrees_with_the_scoring_core(digits_classifier):
    sweep = split_sweep_digits(digits_classifier)
    with torch.no_grad():
        logits = digits_classifier(digits_split().test_images)
    for splits, value in zip(SPLIT_COUNTS, sweep.is_unshuffled):
        assert value == pytest.approx(inception_score(logits, splits=splits).is_mean, rel=1e-12)
    assert sweep.is_unshuffled[0] == pytest.approx(sweep.improved_is, rel=1e-12)


def test_synthetic_set_is_batch_independent_and_matches_its_exact_score():
    whole = synthetic_probabilities(0, 700)
    pieces = torch.cat([synthetic_probabilities(0, 300), synthetic_probabilities(300, 700)])
    assert torch.equal(whole, pieces)
    assert torch.allclose(whole.sum(1), torch.ones(700, dtype=torch.float64))
    exact = synthetic_exact_is()
    # With one marginal over 50,000 rows the plug-in estimate is within 2% of the exact value; 10 splits are not.
    assert score_synthetic(50_000, splits=1, shuffle=False) == pytest.approx(exact, rel=0.02)
    assert score_synthetic(50_000, splits=10, shuffle=False) < 0.95 * exact
    # Streaming the same rows directly through the one-shot core gives the same number.
    rows = synthetic_probabilities(0, 2000)
    assert score_synthetic(2000, splits=4, shuffle=False) == pytest.approx(
        inception_score(rows, kind="probs", splits=4).is_mean, rel=1e-12)


def test_probe_cli_noise_and_memorization_json(cli, tmp_path):
    result = cli("probe", "noise", "--out", tmp_path, "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    rows = {r["name"]: r for r in payload["rows"]}
    assert rows["inflated noise"]["conditional_entropy_bits"] < rows["held-out digits"]["conditional_entropy_bits"]
    assert rows["uniform noise"]["conditional_entropy_bits"] > rows["held-out digits"]["conditional_entropy_bits"]
    assert "not measured here" in payload["published_inception_v3_conditional_entropy_bits"]["source"]
    result = cli("probe", "memorization", "--out", tmp_path, "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.stderr
    generators = {g["name"]: g for g in json.loads((tmp_path / "m.json").read_text())["generators"]}
    for g in generators.values():
        assert {"is_mean", "mutual_information_bits", "ct_statistic", "authenticity", "near_copy_fraction"} <= g.keys()
    # The story: replay scores at least as well as real held-out data, and the detectors flag it.
    assert generators["replay"]["is_mean"] >= generators["held-out"]["is_mean"]
    assert generators["replay"]["ct_statistic"] < -5 and generators["replay"]["authenticity"] == 0.0
    assert generators["kde-0.01"]["is_mean"] > generators["kde-1"]["is_mean"]
    assert (tmp_path / "memorization.png").is_file()


def test_unknown_probe_is_refused(cli):
    result = cli("probe", "telepathy")
    assert result.exit_code != 0 and "Traceback" not in result.stderr
