"""Helpers the tests share: an independent float64 IS reference, the tolerance of values computed from float32
network outputs, the one-line-error assertion, and random Inception v3s (torchvision's and torch-fidelity's) whose
outputs depend on the input, from benchmarks/common.py.

Imported as ``helpers`` (pytest puts ``tests/`` on ``sys.path``; ``tests`` is not a package, so the
clone's folder name never becomes part of a module name).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import entropy

# The random Inception v3s whose outputs depend on the input are the benchmarks' own (benchmarks/common.py), so
# the suite and the benchmarks compare on the same networks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from common import random_inception_v3, random_tf_inception  # noqa: E402

__all__ = ["DIGITS_FID_TERMS", "FLOAT32_SCORE_REL", "approx_float32", "assert_one_line_error",
           "assert_statistics_close", "random_inception_v3", "random_tf_inception", "reference_scores"]

#: Relative tolerance of a float64 value computed from float32 network outputs that were computed on another batch
#: shape, thread count or CPU. Each of those picks other kernels and summation orders, so the outputs come out an ulp
#: or so apart: float32's unit round-off is 2^-24 = 6e-8, and the digits CNN's logits are ~10 in size (11 on average
#: at the top class, 21 at most), so ~6e-7 absolute at worst, of varying sign from row to row. log-softmax passes a
#: logit's absolute error on to log p unamplified; the entropies (dH = -sum dp log p) then move by about as much
#: relative, and log IS, their difference (a few nats) averaged over the rows, by about as much absolute: ~1e-6
#: relative on IS. A wrong merge moves a score by ~1/N: leaving out
#: one of the 540 held-out digits moves IS by 1e-4 (one split) to 1e-3 (five splits) in the median row, 5e-6 at least;
#: double counting a shard moves it by far more.
FLOAT32_SCORE_REL = 1e-6

#: The size of the terms FID is the difference of for the digits classifier's 128 features: tr S1 + tr S2 (about 550
#: per set of digits). Each term moves by ~FLOAT32_SCORE_REL of its size, so FID by ~1e-3 absolute whatever its own
#: size (2.6 for the held-out against the training digits). Leaving out one of the 540 held-out digits moves that FID
#: by 0.013 in the median row (3e-4 at least), one of the 1,257 training digits by 0.005 (1e-4 at least); a shard
#: counted twice or left out moves it by far more.
DIGITS_FID_TERMS = 1100.0


def approx_float32(expected, *, error_scale: float = 0.0):
    """``pytest.approx`` for float64 values of float32 network outputs computed on another batch shape, thread count or
    CPU: :data:`FLOAT32_SCORE_REL` of the value, or of ``error_scale`` where its error follows a larger size (the terms
    it is the difference of, as FID's :data:`DIGITS_FID_TERMS`; for a standard deviation, the mean)."""
    return pytest.approx(expected, rel=FLOAT32_SCORE_REL, abs=FLOAT32_SCORE_REL * error_scale)


def reference_scores(logits: np.ndarray, splits: int, *, order: np.ndarray | None = None) -> dict[str, float]:
    """Independent float64 reference written with scipy: softmax, then KL with scipy.stats.entropy.

    Mirrors the original improved-GAN code: contiguous parts i*N//s..(i+1)*N//s, std ddof 0.
    """
    p = softmax(logits.astype(np.float64), axis=1)
    if order is not None:
        p = p[order]
    n = p.shape[0]
    split_scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0)
        kl = np.array([entropy(row, marginal) for row in part])
        split_scores.append(np.exp(kl.mean()))
    marginal = p.mean(axis=0)
    kl_all = np.array([entropy(row, marginal) for row in p])
    conditional = np.mean([entropy(row) for row in p])
    return {
        "is_mean": float(np.mean(split_scores)),
        "is_std": float(np.std(split_scores)),
        "mi_nats": float(kl_all.mean()),
        "mi_stderr_nats": float(kl_all.std(ddof=1) / np.sqrt(n)),
        "marginal_bits": float(entropy(marginal, base=2)),
        "conditional_bits": float(conditional / np.log(2)),
    }


def assert_statistics_close(mean: np.ndarray, covariance: np.ndarray, features: np.ndarray) -> None:
    """``mean`` and ``covariance`` are those of ``features`` (N, D), float32 network outputs computed here on other
    batches: each feature is off by ~FLOAT32_SCORE_REL of the features' size, the mean by as much, and the covariance
    (products, whose centring cancels) by twice as much of the second moments' size."""
    size = np.sqrt((features**2).mean(axis=0).max())  # the largest feature's root mean square
    np.testing.assert_allclose(mean, features.mean(axis=0), rtol=FLOAT32_SCORE_REL, atol=FLOAT32_SCORE_REL * size)
    np.testing.assert_allclose(covariance, np.cov(features, rowvar=False), rtol=2 * FLOAT32_SCORE_REL,
                               atol=2 * FLOAT32_SCORE_REL * size**2)


def assert_one_line_error(result, *fragments: str) -> None:
    """A user error: non-zero exit, one line on stderr naming the problem, no traceback."""
    assert result.exit_code != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert lines[0].startswith("isgame: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
