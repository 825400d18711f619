"""Helpers the tests share: an independent float64 IS reference, the one-line-error assertion, and random
Inception v3s (torchvision's and torch-fidelity's) whose outputs depend on the input, from benchmarks/common.py.

Imported as ``helpers`` (pytest puts ``tests/`` on ``sys.path``; ``tests`` is not a package, so the
clone's folder name never becomes part of a module name).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.special import softmax
from scipy.stats import entropy

# The random Inception v3s whose outputs depend on the input are the benchmarks' own (benchmarks/common.py), so
# the suite and the benchmarks compare on the same networks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from common import random_inception_v3, random_tf_inception  # noqa: E402

__all__ = ["assert_one_line_error", "random_inception_v3", "random_tf_inception", "reference_scores"]


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


def assert_one_line_error(result, *fragments: str) -> None:
    """A user error: non-zero exit, one line on stderr naming the problem, no traceback."""
    assert result.exit_code != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert lines[0].startswith("isgame: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
