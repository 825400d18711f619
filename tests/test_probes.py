"""Probes on constructed cases: copy detectors, generators, baselines and sweeps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import approx_float32

from isgame.probes.generators import KdeGenerator, replay
from isgame.probes.memorization import memorization_probe
from isgame.probes.sensitivity import (
    SPLIT_COUNTS,
    score_synthetic,
    split_sweep_digits,
    synthetic_exact_is,
    synthetic_probabilities,
)
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.accumulator import InceptionScoreAccumulator
from isgame.scoring.metrics.copy_detectors import (
    authenticity,
    ct_verdict,
    data_copying_test,
    leave_one_out_nearest_distances,
    mann_whitney_z,
    nearest_distances,
    nearest_training_test,
)
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.sources.digits_data import digits_split


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


def test_mann_whitney_z_matches_pair_counting_with_the_authors_continuity_correction():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=40), rng.normal(0.3, 1, size=55)
    a[:3] = b[:3]  # a few ties, counted 1/2
    u = sum((x > y) + 0.5 * (x == y) for x in a for y in b)
    expected = (u - (40 * 55 / 2 - 0.5)) / math.sqrt(40 * 55 * (40 + 55 + 1) / 12)
    assert mann_whitney_z(a, b) == pytest.approx(expected, rel=1e-12)


def authors_ct(test, test_cells, generated, generated_cells, train, train_cells, tau):
    """Meehan et al.'s C_T transcribed step by step from data_copying_tests.py (Zu, Zu_cells, C_T) of
    github.com/casey-meehan/data-copying, as an independent reference."""
    from scipy.stats import mannwhitneyu
    from sklearn.neighbors import NearestNeighbors

    def zu(p_n, q_m, t):
        m, n = q_m.shape[0], p_n.shape[0]
        nn = NearestNeighbors(n_neighbors=1).fit(t)
        l_q, _ = nn.kneighbors(X=q_m, n_neighbors=1)
        l_p, _ = nn.kneighbors(X=p_n, n_neighbors=1)
        u, _ = mannwhitneyu(l_q, l_p, alternative="less")
        return (u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12)

    k = int(train_cells.max()) + 1
    q_share = np.bincount(generated_cells, minlength=k) / generated.shape[0]
    p_share = np.bincount(test_cells, minlength=k) / test.shape[0]
    selected = q_share > tau
    z = np.zeros(k)
    for i in range(k):
        p_i, q_i, t_i = test[test_cells == i], generated[generated_cells == i], train[train_cells == i]
        if len(p_i) * len(t_i) == 0:
            raise ValueError(f"cell {i} lacks test or training samples")
        if len(q_i) > 0:
            z[i] = np.ravel(zu(p_i, q_i, t_i))[0]
    return float(p_share[selected] @ z[selected] / p_share[selected].sum()), z, selected


def _partition(train, cells, seed=0):
    """The k-means partition data_copying_test fits: cell labels of any array."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=cells, n_init=10, random_state=seed).fit(train).predict


def test_ct_matches_a_transcription_of_the_authors_code():
    """A fixed small case with cells of exactly 20 (excluded: the rule is > 20) and 21 generated samples (included)."""
    rng = np.random.default_rng(4)
    train, held_out, pool = rng.normal(size=(400, 4)), rng.normal(size=(200, 4)), rng.normal(size=(900, 4))
    pool[:300] = train[:300] + 0.05 * rng.normal(size=(300, 4))  # near-copies in the pool
    cell_of = _partition(train, 6)
    train_cells, held_out_cells, pool_cells = cell_of(train), cell_of(held_out), cell_of(pool)
    counts = [20, 21, 35, 40, 5, 60]
    generated = np.concatenate([pool[pool_cells == c][:count] for c, count in enumerate(counts)])
    generated_cells = cell_of(generated)
    assert np.bincount(generated_cells).tolist() == counts
    expected, z, selected = authors_ct(held_out, held_out_cells, generated, generated_cells, train, train_cells,
                                       tau=20 / generated.shape[0])
    ours = data_copying_test(train, held_out, generated, cells=6, seed=0)
    assert ours.ct_statistic == pytest.approx(expected, rel=1e-12)
    assert ours.cell_labels == [c for c in range(6) if selected[c]] == [1, 2, 3, 5]
    np.testing.assert_allclose(ours.cell_z_scores, z[selected], rtol=1e-12)
    # What the authors' code changes: the nearest training point is sought in the sample's own cell (it lies in
    # another cell for some samples here), and z carries the -0.5 correction.
    in_cell = np.concatenate([nearest_distances(train[train_cells == c], generated[generated_cells == c]) for c in range(6)])
    whole = np.concatenate([nearest_distances(train, generated[generated_cells == c]) for c in range(6)])
    assert (in_cell > whole + 1e-12).sum() > 0
    assert ours.to_dict()["verdict"] == ours.verdict and "two-sided" in ours.to_dict()["rule"]


def test_ct_states_cells_without_held_out_samples():
    train, pool = gaussian_mixture(400, 1, dim=4), gaussian_mixture(1500, 3, dim=4)
    held_out_all = gaussian_mixture(300, 2, dim=4)
    cell_of = _partition(train, 5)
    train_cells, held_out_cells, pool_cells = cell_of(train), cell_of(held_out_all), cell_of(pool)
    held_out = held_out_all[held_out_cells != 4]  # cell 4 loses its held-out samples
    generated = pool[:600]
    result = data_copying_test(train, held_out, generated, cells=5, seed=0)
    assert result.cells_without_held_out == [4] and 4 not in result.cell_labels
    assert result.generated_in_cells_without_held_out == pytest.approx(float((pool_cells[:600] == 4).mean()))
    # The authors' code refuses this partition; their statistic over the other cells is ours.
    with pytest.raises(ValueError, match="cell 4"):
        authors_ct(held_out, held_out_cells[held_out_cells != 4], generated, pool_cells[:600], train, train_cells, 20 / 600)
    keep = pool_cells[:600] != 4
    expected, _, _ = authors_ct(held_out, held_out_cells[held_out_cells != 4], generated[keep], pool_cells[:600][keep],
                                train[train_cells != 4], train_cells[train_cells != 4], 20 / 600 * 600 / keep.sum())
    assert result.ct_statistic == pytest.approx(expected, rel=1e-12)


def test_ct_is_two_sided():
    """Samples farther from the training set than unseen real data (blurred) score far above 0: underfitting."""
    train, held_out, fresh = gaussian_mixture(500, 1), gaussian_mixture(300, 2), gaussian_mixture(300, 3)
    blurred = fresh + np.random.default_rng(7).normal(scale=1.5, size=fresh.shape)
    result = data_copying_test(train, held_out, blurred, cells=5)
    assert result.ct_statistic > 3 and result.verdict == "underfitting"
    assert [ct_verdict(v) for v in (-9.0, -2.9, 0.0, 2.9, 9.2)] == [
        "copying", "like held-out data", "like held-out data", "like held-out data", "underfitting"]


def test_ct_is_strongly_negative_for_replay_and_near_zero_for_fresh_data(mixture):
    replayed = mixture["train"][:1000]
    assert data_copying_test(mixture["train"], mixture["held_out"], replayed).ct_statistic < -5
    fresh = data_copying_test(mixture["train"], mixture["held_out"], mixture["fresh"])
    assert abs(fresh.ct_statistic) < 2 and fresh.verdict == "like held-out data"
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


@pytest.mark.slow
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
    for splits, value in zip(SPLIT_COUNTS, sweep.is_unshuffled):  # the sweep classified in batches: float32 rounding
        assert value == approx_float32(inception_score(logits, splits=splits).is_mean)
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
    # The closed form from class counts is what the streaming accumulator computes, shuffled splits included.
    for n, splits, shuffle in ((2000, 4, False), (1999, 7, True), (500, 1, True)):
        streamed = InceptionScoreAccumulator(1000, splits=splits, total=n, shuffle=shuffle, seed=3, kind="probs",
                                             track_stderr=False)
        for start in range(0, n, 600):
            streamed.update(synthetic_probabilities(start, min(start + 600, n), seed=3))
        assert score_synthetic(n, splits=splits, shuffle=shuffle, seed=3) == pytest.approx(
            streamed.compute().is_mean, rel=1e-12)


@pytest.mark.slow
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


def test_matrix_ct_is_judged_against_its_null_distribution_with_a_fair_reference(digits_classifier, monkeypatch):
    """C_T's cells compare a game's C_T with C_T's null distribution on the domain (random halves of the held-out
    images tested against each other); the reference row is one held-out half against the other, not held-out data
    against itself; replayed training images are detected, uniform noise is outside C_T's scope."""
    from isgame.probes import matrix
    from isgame.probes.matrix import FOOLED_RULES, METRICS, held_out_halves, robustness_matrix
    from isgame.probes.matrix.games import held_out_real, training_replay, uniform_noise
    from isgame.probes.matrix.measurements import Measurement, measure_copying
    from isgame.scoring.domains import digits_domain

    def only_ct(context, game, metrics):
        """The matrix's C_T alone (the other metrics are tested elsewhere), to keep this test fast."""
        return {m: Measurement(0.0) for m in metrics} | {"C_T": measure_copying(context, game)["C_T"]}

    monkeypatch.setattr(matrix, "measure_game", only_ct)
    first, second = held_out_halves(540, 0)
    assert len(first) == len(second) == 270 and not set(first) & set(second)
    assert np.array_equal(first, held_out_halves(540, 0)[0]) and not np.array_equal(first, held_out_halves(540, 1)[0])
    assert set(FOOLED_RULES) == set(METRICS)

    games = {"held-out real": held_out_real, "uniform noise": uniform_noise, "training replay": training_replay}
    result = robustness_matrix(digits_classifier, games=games, metrics=["C_T"])
    domain = digits_domain(classifier=digits_classifier).in_seeded_order(0, first=540)
    pixels = lambda images: images.reshape(images.shape[0], -1).double().numpy()  # noqa: E731
    held_out = pixels(domain.real)
    expected = data_copying_test(pixels(domain.train), held_out[first], held_out[second]).ct_statistic
    reference = result.cells["held-out real"]["C_T"]
    assert reference.value == reference.reference == pytest.approx(expected, rel=1e-12)
    null = result.to_dict()["test"]["ct_null"]
    # Real data the training set never saw reads as real: the reference lies inside the null's central 95%.
    assert null["draws"] >= 200 and null["band_95"][0] < reference.value < null["band_95"][1] and null["std"] < 1
    noise, replay = result.cells["uniform noise"]["C_T"], result.cells["training replay"]["C_T"]
    assert noise.value > 3 and noise.verdict == "not_applicable" and noise.fooled is False
    assert replay.value < null["band_95"][0] and replay.verdict == "detected"
    assert replay.p_value == pytest.approx(1 / (null["draws"] + 1))  # below every null draw
    payload = result.to_dict()
    assert payload["higher_is_better"]["C_T"] is None and "null distribution" in payload["fooled_rules"]["C_T"]


def test_ct_cells_shrink_below_a_domains_fixed_count_when_the_sets_are_small():
    """The digits fix 10 k-means cells; 100 samples cannot fill 10 cells of 21, so C_T gets 4 (100 // 21)."""
    from isgame.scoring.metrics.copy_detectors import CT_SAMPLES_PER_CELL, ct_cells

    assert ct_cells(540, fixed=10) == 10 and ct_cells(210, fixed=10) == 10
    assert ct_cells(100, fixed=10) == 100 // CT_SAMPLES_PER_CELL == 4 and ct_cells(20, fixed=10) == 1
    assert ct_cells(100) == 4 and ct_cells(5000) == 10


def test_the_memorisation_probe_runs_at_100_samples_on_the_digits():
    from isgame.probes.memorization import memorization_probe
    from isgame.scoring.domains import digits_domain

    result = memorization_probe(digits_domain(), n=100, bandwidths=(0.5,))
    assert result.ct_cells == 4 and all(math.isfinite(g.ct_statistic) for g in result.generators)
