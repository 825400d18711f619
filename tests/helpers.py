"""Helpers the tests share: an independent float64 IS reference, the one-line-error assertion and a random
Inception v3 whose outputs depend on its input.

Imported as ``helpers`` (pytest puts ``tests/`` on ``sys.path``; ``tests`` is not a package, so the
clone's folder name never becomes part of a module name).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import softmax
from scipy.stats import entropy


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


def random_inception_v3(seed: int = 0) -> torch.nn.Module:
    """torchvision's Inception v3 (aux logits and ``transform_input``, as its pretrained one) with random weights, in
    eval mode, its batch norms set on four seeded images (``calibrate_batch_norms``): a freshly initialised one
    gives every image the same logits, which would make any comparison on it blind to the input path."""
    from torchvision.models import inception_v3

    from isgame.scoring.classifiers.batch_norm_calibration import calibrate_batch_norms

    torch.manual_seed(seed)
    network = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True).eval()
    calibrate_batch_norms(network, torch.randn((4, 3, 299, 299), generator=torch.Generator().manual_seed(seed + 1)))
    return network
