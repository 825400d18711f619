"""The fast paths of issue 16 give the numbers of the plain computations they replace.

Fused per-row statistics, the BLAS triangle of the standard error's second moments, the reader thread,
the batch size from the input size, autocast precision and the ε = 0 shortcut
of the bounded sweep (channels-last Inception: tests/test_inception_backbone.py): each is checked against an independent float64 or default-path computation.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error

from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.base import default_batch_size
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.accumulator import ROW_CHUNK, InceptionScoreAccumulator
from isgame.scoring.metrics.entropy import row_statistics
from isgame.scoring.runtime.prefetch import prefetched


def float64_reference(logits: np.ndarray, splits: int) -> tuple[float, float, float]:
    """IS mean over contiguous splits, I in nats and std(KL_i, ddof 1)/sqrt(N), straight from the definitions."""
    x = logits.astype(np.float64)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(p)
    scores = []
    for s in range(splits):
        part = p[s * n // splits : (s + 1) * n // splits]
        marginal = part.mean(0)
        scores.append(math.exp(np.mean(np.sum(part * (np.log(part) - np.log(marginal)), 1))))
    kl = np.sum(p * (np.log(p) - np.log(p.mean(0))), 1)
    return float(np.mean(scores)), float(kl.mean()), float(kl.std(ddof=1) / math.sqrt(n))


@pytest.mark.parametrize("classes", [10, 300])
def test_streamed_scores_match_a_float64_reference(classes):
    rng = np.random.default_rng(classes)
    logits = (rng.standard_normal((3 * ROW_CHUNK + 77, classes)) * 3).astype(np.float32)
    accumulator = InceptionScoreAccumulator(classes, splits=7, total=len(logits))
    for first in range(0, len(logits), 700):  # batches that straddle the chunks and the splits
        accumulator.update(logits[first : first + 700])
    result = accumulator.compute()
    is_mean, information, stderr = float64_reference(logits, 7)
    assert result.is_mean == pytest.approx(is_mean, rel=1e-12)
    assert result.mutual_information_nats == pytest.approx(information, rel=1e-12)
    assert result.mutual_information_stderr_nats == pytest.approx(stderr, rel=1e-9)
    assert torch.equal(torch.tensor(result.class_counts), torch.bincount(torch.from_numpy(logits).argmax(1), minlength=classes))


def test_the_gram_triangle_is_p_transpose_p():
    probs = torch.softmax(torch.randn(900, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 1)
    accumulator = InceptionScoreAccumulator(40, kind="probs")
    accumulator.update(probs[:500])
    accumulator.update(probs[500:])
    torch.testing.assert_close(accumulator.gram, probs.T @ probs, rtol=1e-13, atol=1e-13)


def test_fused_row_statistics_equal_the_checked_path():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((64, 12)) * 5
    probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
    probs[0] = 0
    probs[0, 3] = 1  # exact zeros: 0 log 0 = 0
    for values, kind in ((logits, "logits"), (probs, "probs")):
        p, a, top1 = row_statistics(values, kind=kind)
        reference = torch.from_numpy(probs if kind == "probs" else torch.softmax(torch.from_numpy(logits), 1).numpy())
        torch.testing.assert_close(p, reference, rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(a, torch.special.xlogy(reference, reference).sum(1), rtol=1e-13, atol=1e-14)
        assert torch.equal(top1, reference.argmax(1))


@pytest.mark.parametrize("bad, kind, message", [(math.nan, "logits", "row 530 contains nan"),
                                                 (-math.inf, "logits", "row 530 contains -inf"),
                                                 (-0.5, "probs", "row 530 has a negative probability")])
def test_a_bad_row_in_a_later_chunk_is_named_by_its_row(bad, kind, message):
    values = np.full((600, 4), 0.25) if kind == "probs" else np.zeros((600, 4))
    values[530, 1] = bad
    with pytest.raises(InvalidInputError, match=message):
        InceptionScoreAccumulator(4, kind=kind).update(values)


def test_prefetched_keeps_order_and_reraises_where_it_failed():
    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise ValueError("broken at the third")

    seen = []
    with pytest.raises(ValueError, match="broken at the third"):
        for item in prefetched(failing()):
            seen.append(item)
    assert seen == [1, 2]


def test_prefetched_stops_its_thread_when_the_consumer_stops():
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield len(produced)

    for item in prefetched(endless(), depth=2):
        if item == 3:
            break
    assert not any(t.name == "isgame-prefetch" and t.is_alive() for t in threading.enumerate())
    assert len(produced) <= 3 + 2 + 1  # what was consumed, the queue, and the item being put


def test_default_batch_size_follows_the_input_size():
    assert default_batch_size(1, (8, 8)) == 256  # digits: as before
    assert default_batch_size(3, (299, 299)) == 16  # Inception: 4.3 M input values, not 68.6 M
    assert default_batch_size(3, (64, 64)) == 256
    assert default_batch_size(3, (2048, 2048)) == 1


def test_bf16_autocast_runs_on_the_cpu_and_stays_near_fp32():
    from isgame.scoring.sources.digits_data import digits_split

    images = digits_split().test_images[:200]
    exact = load_classifier("digits")(images)
    half = load_classifier("digits", precision="bf16")
    logits = half(images)
    assert logits.dtype == torch.float32 and half.describe()["precision"] == "bf16"
    assert 0 < float((logits - exact).abs().max()) < 0.05 * float(exact.abs().max())
    assert (logits.argmax(1) == exact.argmax(1)).float().mean() > 0.98


def test_fp16_on_the_cpu_is_refused_in_one_line(cli):
    with pytest.raises(InvalidInputError, match="needs a CUDA device"):
        load_classifier("digits", device="cpu", precision="fp16")
    result = cli("score", "digits:test", "--precision", "fp16", "--device", "cpu", "--quiet")
    assert_one_line_error(result, "--precision fp16 needs a CUDA device")


def test_bounded_epsilon_zero_is_the_clean_images():
    from isgame.attacks.bounded import targeted_pgd
    from isgame.attacks.inflate import cycling_targets
    from isgame.scoring.sources.digits_data import digits_split

    classifier = load_classifier("digits")
    model_input = classifier.preprocess(digits_split().test_images[:30])
    _, clipped, success = targeted_pgd(classifier, model_input, norm="linf", epsilons=[4 / 255, 0.0], steps=3)
    _, alone, alone_success = targeted_pgd(classifier, model_input, norm="linf", epsilons=[4 / 255], steps=3)
    assert torch.equal(clipped[1], model_input)
    with torch.no_grad():
        expected = classifier.logits_from_model_input(model_input).argmax(1) == cycling_targets(30, 10)
    assert torch.equal(success[1], expected)
    assert torch.equal(clipped[0], alone[0]) and torch.equal(success[0], alone_success[0])
    assert float((clipped[0] - model_input).abs().max()) > 0
