"""Sample order: the K-category runs test against brute force, streamed counting, and the warning on sorted digits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import approx_float32

from isgame.app.scoring_commands import score_source
from isgame.scoring.metrics.sample_order import RunsCounter, count_runs, runs_moments, runs_test, sample_order_of_logits
from isgame.scoring.sources.digits_data import digits_split


def exact_moments_by_enumeration(counts: tuple[int, ...]) -> tuple[float, float]:
    """Mean and variance of the runs count over every distinct arrangement of the multiset (each equally likely)."""
    labels = [k for k, c in enumerate(counts) for _ in range(c)]
    runs = np.array([count_runs(order) for order in set(itertools.permutations(labels))], dtype=np.float64)
    return float(runs.mean()), float(runs.var())


@pytest.mark.parametrize("counts", [(3, 2, 2), (4, 1, 2), (2, 2, 2, 1), (5, 3), (1, 1, 1, 1)])
def test_runs_moments_match_exact_enumeration(counts):
    mean, variance = runs_moments(counts)
    expected_mean, expected_variance = exact_moments_by_enumeration(counts)
    assert mean == pytest.approx(expected_mean, rel=1e-12)
    assert variance == pytest.approx(expected_variance, rel=1e-12, abs=1e-12)


def test_two_categories_give_wald_wolfowitz():
    n1, n2 = 17, 9
    n = n1 + n2
    mean, variance = runs_moments((n1, n2))
    assert mean == pytest.approx(2 * n1 * n2 / n + 1)
    assert variance == pytest.approx(2 * n1 * n2 * (2 * n1 * n2 - n) / (n ** 2 * (n - 1)))


def test_runs_moments_match_a_permutation_simulation():
    counts = (30, 20, 10, 5, 1)
    labels = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(0)
    runs = np.array([count_runs(rng.permutation(labels)) for _ in range(20_000)], dtype=np.float64)
    mean, variance = runs_moments(counts)
    # Monte Carlo: the mean within 4 standard errors, the variance within 5%.
    assert abs(runs.mean() - mean) < 4 * np.sqrt(variance / runs.size)
    assert runs.var() == pytest.approx(variance, rel=0.05)


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_streamed_runs_equal_one_shot(batch):
    labels = np.random.default_rng(1).integers(0, 4, size=200)
    labels[50:80] = 2  # a long run across batch boundaries
    counter = RunsCounter(4)
    for start in range(0, labels.size, batch):
        counter.update_labels(labels[start : start + batch])
    assert counter.runs == count_runs(labels)
    assert counter.compute() == runs_test(labels, 4)


@pytest.fixture(scope="module")
def sorted_digits(tmp_path_factory):
    """The 540 held-out digits sorted by label, as a .npy file."""
    split = digits_split()
    order = np.argsort(split.test_labels.numpy(), kind="stable")
    path = tmp_path_factory.mktemp("order") / "sorted.npy"
    np.save(path, split.test_images.numpy()[order])
    return path


def test_class_sorted_digits_warn_with_both_scores(sorted_digits):
    report = score_source(str(sorted_digits), progress=False).to_dict()
    order = report["sample_order"]
    assert order["warned"] and order["z"] < -3 and order["runs"] <= 30
    assert order["is_contiguous"] == report["is_mean"] < 2
    shuffled = score_source(str(sorted_digits), shuffle=True, progress=False).to_dict()
    # The shuffled re-read classifies the images in other batches than the first read: float32 rounding.
    assert order["is_shuffled"] == approx_float32(shuffled["is_mean"])
    assert not shuffled["sample_order"]["warned"]  # already shuffled: nothing to warn about
    assert any("class-sorted" in note and "shuffle=True" in note for note in report["notes"])
    # The fingerprint covers the first read only: the shuffled re-read did not change it.
    assert report["provenance"]["inputs"][0]["fingerprint"]["sha256"] == \
        shuffled["provenance"]["inputs"][0]["fingerprint"]["sha256"]


def test_stored_order_of_digits_and_one_split_do_not_warn(sorted_digits):
    fine = score_source("digits:test", progress=False).to_dict()["sample_order"]
    assert not fine["clustered"] and fine["is_shuffled"] is None
    one_split = score_source(str(sorted_digits), splits=1, progress=False).to_dict()["sample_order"]
    assert one_split["clustered"] and not one_split["warned"]


def test_sorted_logits_and_in_memory_check_warn(tmp_path):
    rng = np.random.default_rng(2)
    labels = np.sort(rng.integers(0, 5, size=400))
    logits = rng.normal(size=(400, 5)).astype(np.float32) + 6 * np.eye(5, dtype=np.float32)[labels]
    np.save(tmp_path / "logits.npy", logits)
    order = score_source(str(tmp_path / "logits.npy"), input_kind="logits", batch_size=33,
                         progress=False).to_dict()["sample_order"]
    assert order["warned"] and order["runs"] == count_runs(logits.argmax(axis=1))
    in_memory = sample_order_of_logits(logits, splits=10, dialect="openai", seed=0, is_contiguous=1.0)
    assert in_memory.warned and in_memory.is_shuffled > 3
    assert not sample_order_of_logits(logits, splits=10, dialect="torch-fidelity", seed=0, is_contiguous=1.0).warned


def test_cli_prints_the_order_note(cli, sorted_digits):
    result = cli("score", str(sorted_digits), "-q")
    assert result.exit_code == 0, result.stderr
    assert "class-sorted or clustered" in result.stderr and "--shuffle" in result.stderr
