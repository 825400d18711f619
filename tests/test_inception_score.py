"""The scoring core against hand-derived cases and an independent scipy float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import reference_scores
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from isgame.scoring.errors import InvalidInputError, InvalidTypeError
from isgame.scoring.metrics.accumulator import InceptionScoreAccumulator
from isgame.scoring.metrics.inception_score import inception_score


@pytest.mark.parametrize("splits", [1, 3, 10])
@pytest.mark.parametrize("num_classes", [2, 10, 1000])
def test_identical_predictions_score_one(num_classes, splits):
    row = torch.randn(num_classes, generator=torch.Generator().manual_seed(num_classes))
    result = inception_score(row.repeat(50, 1), splits=splits)
    assert result.is_mean == pytest.approx(1.0, abs=1e-12)
    assert result.is_std == pytest.approx(0.0, abs=1e-12)
    assert result.mutual_information_nats == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("splits", [1, 2, 5])
@pytest.mark.parametrize("num_classes", [2, 10, 100])
def test_confident_balanced_predictions_score_k(num_classes, splits):
    # Rows cycle through the classes; each contiguous split holds whole cycles, so it is balanced too.
    n = num_classes * splits * 3
    probs = torch.eye(num_classes, dtype=torch.float64)[torch.arange(n) % num_classes]
    result = inception_score(probs, kind="probs", splits=splits)
    assert result.is_mean == pytest.approx(num_classes, rel=1e-12)
    assert result.improved_is == pytest.approx(num_classes, rel=1e-12)
    assert result.mutual_information_bits == pytest.approx(math.log2(num_classes), rel=1e-12)
    assert result.conditional_entropy_bits == pytest.approx(0.0, abs=1e-12)


def test_log_is_with_one_split_is_the_mutual_information():
    logits = torch.randn(400, 10, generator=torch.Generator().manual_seed(1)) * 3
    result = inception_score(logits, splits=1)
    assert math.log(result.is_mean) == pytest.approx(result.mutual_information_nats, rel=1e-12)
    assert result.mutual_information_nats == pytest.approx(
        (result.marginal_entropy_bits - result.conditional_entropy_bits) * math.log(2), rel=1e-12
    )


@pytest.mark.parametrize("splits", [1, 10])
@pytest.mark.parametrize("shuffle", [False, True])
def test_matches_float64_scipy_reference_k1000(splits, shuffle):
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(1500, 1000)) * rng.uniform(0.5, 6.0, size=(1500, 1))
    order = np.random.default_rng(3).permutation(1500) if shuffle else None
    expected = reference_scores(logits, splits, order=order)
    result = inception_score(logits, splits=splits, shuffle=shuffle, seed=3)
    assert result.is_mean == pytest.approx(expected["is_mean"], rel=1e-10)
    assert result.is_std == pytest.approx(expected["is_std"], rel=1e-8, abs=1e-12)
    assert result.mutual_information_nats == pytest.approx(expected["mi_nats"], rel=1e-10)
    assert result.mutual_information_stderr_nats == pytest.approx(expected["mi_stderr_nats"], rel=1e-8)
    assert result.marginal_entropy_bits == pytest.approx(expected["marginal_bits"], rel=1e-10)
    assert result.conditional_entropy_bits == pytest.approx(expected["conditional_bits"], rel=1e-10)


def test_shuffle_changes_the_splits_and_the_seed_matters():
    # Sorted rows make contiguous splits maximally unbalanced; a shuffle fixes that.
    logits = torch.eye(10)[torch.arange(1000) // 100] * 20
    plain = inception_score(logits, splits=10)
    shuffled = inception_score(logits, splits=10, shuffle=True, seed=0)
    other_seed = inception_score(logits, splits=10, shuffle=True, seed=1)
    assert plain.is_mean == pytest.approx(1.0, abs=1e-6)
    assert shuffled.is_mean > 8.0
    assert shuffled.split_scores != other_seed.split_scores
    assert shuffled.mutual_information_nats == pytest.approx(plain.mutual_information_nats, rel=1e-12)


@pytest.mark.parametrize("splits,shuffle", [(1, False), (7, False), (7, True)])
@pytest.mark.parametrize("batch_size", [1, 13, 256, 999])
def test_batch_size_does_not_change_the_result(splits, shuffle, batch_size):
    logits = torch.randn(999, 37, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 4
    whole = inception_score(logits, splits=splits, shuffle=shuffle, seed=5)
    accumulator = InceptionScoreAccumulator(37, splits=splits, total=999, shuffle=shuffle, seed=5)
    for start in range(0, 999, batch_size):
        accumulator.update(logits[start : start + batch_size])
    streamed = accumulator.compute()
    for name in ("is_mean", "is_std", "mutual_information_nats", "mutual_information_stderr_nats",
                 "marginal_entropy_bits", "conditional_entropy_bits"):
        assert getattr(streamed, name) == pytest.approx(getattr(whole, name), rel=1e-12, abs=1e-14), name
    assert streamed.class_counts == whole.class_counts


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 60), k=st.integers(2, 30))
def test_row_order_does_not_matter_without_splits(seed, n, k):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 5
    permuted = logits[rng.permutation(n)]
    a, b = inception_score(logits, splits=1), inception_score(permuted, splits=1)
    assert b.is_mean == pytest.approx(a.is_mean, rel=1e-12)
    assert b.mutual_information_nats == pytest.approx(a.mutual_information_nats, rel=1e-12, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(logits=arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(2, 12)),
                     elements=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)))
def test_bounds_hold_and_nothing_is_nan_for_finite_input(logits):
    result = inception_score(logits, splits=1)
    k = logits.shape[1]
    assert 1.0 - 1e-9 <= result.is_mean <= k * (1 + 1e-9)
    assert -1e-12 <= result.mutual_information_nats <= math.log(k) + 1e-9
    assert all(math.isfinite(v) for v in (result.is_mean, result.marginal_entropy_bits, result.conditional_entropy_bits))


def test_probabilities_and_logits_agree():
    logits = torch.randn(500, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 8
    logits[0, :] = torch.tensor([800.0] + [0.0] * 19, dtype=torch.float64)  # softmax underflows to exact zeros
    probs = torch.softmax(logits, dim=1)
    assert (probs == 0).any()
    a = inception_score(logits, kind="logits", splits=5)
    b = inception_score(probs, kind="probs", splits=5)
    assert b.is_mean == pytest.approx(a.is_mean, rel=1e-12)
    assert b.is_std == pytest.approx(a.is_std, rel=1e-9)
    assert b.mutual_information_nats == pytest.approx(a.mutual_information_nats, rel=1e-12)
    assert b.mutual_information_stderr_nats == pytest.approx(a.mutual_information_stderr_nats, rel=1e-9)


def test_accumulator_memory_does_not_grow_with_n():
    def state_numel(n: int) -> int:
        accumulator = InceptionScoreAccumulator(50, splits=10, total=n)
        for start in range(0, n, 500):
            accumulator.update(torch.randn(min(500, n - start), 50))
        accumulator.compute()
        return sum(np.asarray(v).size for v in vars(accumulator).values() if isinstance(v, (torch.Tensor, np.ndarray)))

    assert state_numel(1000) == state_numel(20000)


@pytest.mark.parametrize(
    "values,kind,splits,error,fragment",
    [
        (np.array([[0.0, 1.0], [np.nan, 0.0]]), "logits", 1, InvalidInputError, "row 1"),
        (np.array([[0.0, 1.0], [1.0, 2.0], [np.inf, 0.0]]), "logits", 1, InvalidInputError, "row 2"),
        (np.array([[0.5, 0.5], [1.2, -0.2]]), "probs", 1, InvalidInputError, "negative probability"),
        (np.array([[0.5, 0.5], [0.5, 0.6]]), "probs", 1, InvalidInputError, "not 1 within 0.0001"),
        (np.ones((5, 1)), "logits", 1, InvalidInputError, "K >= 2"),
        (np.zeros((3, 4)), "logits", 5, InvalidInputError, "fewer than splits = 5"),
        (np.zeros(50), "logits", 1, InvalidInputError, "got shape (50,)"),
        (np.zeros((2, 3, 4)), "logits", 1, InvalidInputError, "pass a 2-D array"),
        (np.array([[1, "a"]], dtype=object), "logits", 1, InvalidTypeError, "dtype object"),
    ],
)
def test_bad_predictions_raise_clear_errors(values, kind, splits, error, fragment):
    with pytest.raises(error) as info:
        inception_score(values, kind=kind, splits=splits)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_streamed_bad_row_is_named_by_its_global_index():
    accumulator = InceptionScoreAccumulator(3)
    accumulator.update(torch.zeros(10, 3))
    bad = torch.zeros(5, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(InvalidInputError, match="row 12 "):
        accumulator.update(bad)


def test_accumulator_checks_total_and_reset():
    accumulator = InceptionScoreAccumulator(4, splits=2, total=10)
    with pytest.raises(InvalidInputError, match="no rows"):
        accumulator.compute()
    accumulator.update(torch.zeros(6, 4))
    with pytest.raises(InvalidInputError, match="received 6 rows but total = 10"):
        accumulator.compute()
    with pytest.raises(InvalidInputError, match="more than total"):
        accumulator.update(torch.zeros(5, 4))
    accumulator.reset()
    accumulator.update(torch.randn(10, 4))
    assert accumulator.compute().n == 10
    with pytest.raises(InvalidInputError, match="total"):
        InceptionScoreAccumulator(4, splits=2)


def test_to_dict_is_json_ready():
    import json

    result = inception_score(torch.randn(1, 5), splits=1)
    payload = result.to_dict()
    assert payload["mutual_information_stderr_nats"] is None  # one row has no standard error
    json.dumps(payload, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 50), k=st.integers(2, 20), splits=st.integers(1, 2))
def test_invariances(seed, n, k, splits):
    """Per-row logit shifts, relabelling the classes and duplicating every sample leave the scores unchanged."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * rng.uniform(0.1, 8)
    base = inception_score(logits, splits=1)
    shifted = inception_score(logits + rng.normal(size=(n, 1)) * 50, splits=1)
    relabelled = inception_score(logits[:, rng.permutation(k)], splits=1)
    duplicated = inception_score(np.repeat(logits, 2, axis=0), splits=1)
    for other in (shifted, relabelled, duplicated):
        assert other.is_mean == pytest.approx(base.is_mean, rel=1e-9)
        assert other.mutual_information_nats == pytest.approx(base.mutual_information_nats, rel=1e-9, abs=1e-12)
    # With splits, relabelling classes still changes nothing.
    if n >= splits:
        assert inception_score(logits[:, rng.permutation(k)], splits=splits).is_mean == pytest.approx(
            inception_score(logits, splits=splits).is_mean, rel=1e-9)
