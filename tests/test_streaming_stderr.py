"""The standard error's second pass (issue 16, goal 5) against the one-pass (K, K) statistics and a float64 reference.

score_predictions and inception_score read the rows twice instead of keeping sum p p^T: the standard error
must be the same number, and the fused per-row statistics must leave the caller's array alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.accumulator import InceptionScoreAccumulator, KLDeviationAccumulator
from isgame.scoring.metrics.entropy import row_statistics
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.pipeline import score_predictions
from isgame.scoring.sources.samples import open_predictions


def reference_stderr(p: np.ndarray) -> float:
    """std(KL_i, ddof 1) / sqrt(N) straight from the definition, float64; 0 log 0 = 0 and log p(y) = 0 where p(y) = 0."""
    marginal = p.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(np.where(marginal > 0, marginal, 1.0))), 0.0)
    kl = terms.sum(1)
    return float(kl.std(ddof=1) / math.sqrt(len(p)))


def softmax64(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    p = np.exp(x - x.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


@pytest.fixture(scope="module")
def logits() -> np.ndarray:
    return (np.random.default_rng(16).standard_normal((1303, 40)) * 3).astype(np.float32)


@pytest.mark.parametrize("shuffle", [False, True])
def test_the_second_pass_gives_the_gram_standard_error(logits, shuffle):
    gram = InceptionScoreAccumulator(40, splits=6, total=len(logits), shuffle=shuffle, seed=2)
    first = InceptionScoreAccumulator(40, splits=6, total=len(logits), shuffle=shuffle, seed=2, track_stderr=False)
    for start in range(0, len(logits), 500):
        gram.update(logits[start : start + 500])
        first.update(logits[start : start + 500])
    second = first.second_pass()
    for start in range(0, len(logits), 333):  # other batches than the first pass: order and batching do not matter
        second.update(logits[start : start + 333])
    two_pass, one_pass = first.compute(second).to_dict(), gram.compute().to_dict()
    assert two_pass["mutual_information_stderr_nats"] == pytest.approx(reference_stderr(softmax64(logits)), rel=1e-12)
    for key, value in one_pass.items():
        close = isinstance(value, float) or (isinstance(value, list) and isinstance(value[0], float))
        assert two_pass[key] == (pytest.approx(value, rel=1e-9) if close else value), key


def test_probabilities_with_a_class_never_predicted_match_the_reference():
    p = softmax64(np.random.default_rng(3).standard_normal((400, 40)) * 2)  # K = 40 > 32: the second pass
    p[:, 39] = 0.0  # p(y = 39) = 0: log p(y) is never weighted
    p /= p.sum(1, keepdims=True)
    p[7] = np.eye(40)[2]  # exact zeros within a row: 0 log 0 = 0
    result = inception_score(p, kind="probs", splits=4)
    assert result.mutual_information_stderr_nats == pytest.approx(reference_stderr(p), rel=1e-12)
    assert inception_score(p, kind="probs", splits=4, track_stderr=False).mutual_information_stderr_nats is not None


def test_score_predictions_reads_twice_but_shows_each_batch_once(tmp_path, logits):
    path = tmp_path / "logits.npy"
    np.save(path, logits)
    seen = []
    report = score_predictions(open_predictions(str(path)), kind="logits", splits=5, batch_size=256, progress=False,
                               on_batch=lambda batch: seen.append(len(batch)))
    assert sum(seen) == len(logits)
    in_memory = inception_score(logits, splits=5)
    assert report.result.mutual_information_stderr_nats == pytest.approx(in_memory.mutual_information_stderr_nats, rel=1e-12)
    assert report.result.is_mean == pytest.approx(in_memory.is_mean, rel=1e-13)
    assert math.isnan(score_predictions(open_predictions(str(path), n=1), kind="logits", splits=1, progress=False)
                      .result.mutual_information_stderr_nats)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_row_statistics_leave_float64_input_unchanged(as_tensor):
    values = np.random.default_rng(0).standard_normal((300, 9)) * 4
    original = values.copy()
    row_statistics(torch.from_numpy(values) if as_tensor else values, kind="logits")
    inception_score(values, splits=3)
    assert np.array_equal(values, original)


def test_a_second_pass_fed_the_wrong_rows_is_refused(logits):
    first = InceptionScoreAccumulator(40, splits=1, track_stderr=False)
    first.update(logits)
    second = first.second_pass()
    second.update(logits[:-1])
    with pytest.raises(InvalidInputError, match="second pass saw 1302 rows, the first 1303"):
        first.compute(second)
    with pytest.raises(InvalidInputError, match="K = 39 classes, expected 40"):
        KLDeviationAccumulator(torch.zeros(40), 0.0).update(logits[:, :39])
