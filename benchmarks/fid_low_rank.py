"""FID when N < D: isgame's value against a 40-digit mpmath reference.

    python benchmarks/fid_low_rank.py [N] [D]     # correlated Gaussian features
    python benchmarks/fid_low_rank.py digits [N]  # the digits classifier's 128-d features of N held-out
                                                  # and the first N training digits
    python benchmarks/fid_low_rank.py --quick     # N = 30, D = 64 Gaussian features

Ends with one JSON line (benchmarks/common.py).

With N < D both covariances are singular (rank N - 1). The reference computes, in 40-digit
arithmetic from the same float64 features, ||mu_1 - mu_2||^2 + tr S_1 + tr S_2 - 2 ||M||_*, with
M = X1c X2c^T / sqrt((n1 - 1)(n2 - 1)) and ||M||_* = sum sqrt(eig(M M^T)) (the nonzero eigenvalues of
S_1 S_2 are those of M M^T).
"""

from __future__ import annotations

import sys

import mpmath
import numpy as np
from common import emit

from isgame.scoring.metrics.fid import frechet_distance


def mpmath_fid(a: np.ndarray, b: np.ndarray, digits: int = 40) -> float:
    mpmath.mp.dps = digits
    x, y = mpmath.matrix(a.tolist()), mpmath.matrix(b.tolist())
    (n1, d), n2 = a.shape, b.shape[0]
    mu1 = [mpmath.fsum(x[i, j] for i in range(n1)) / n1 for j in range(d)]
    mu2 = [mpmath.fsum(y[i, j] for i in range(n2)) / n2 for j in range(d)]
    xc = mpmath.matrix(n1, d)
    yc = mpmath.matrix(n2, d)
    for i in range(n1):
        for j in range(d):
            xc[i, j] = x[i, j] - mu1[j]
    for i in range(n2):
        for j in range(d):
            yc[i, j] = y[i, j] - mu2[j]
    m = xc * yc.T / mpmath.sqrt((n1 - 1) * (n2 - 1))
    eigenvalues = mpmath.eigsy(m * m.T, eigvals_only=True)
    nuclear = mpmath.fsum(mpmath.sqrt(max(v, 0)) for v in eigenvalues)
    trace_1 = mpmath.fsum(xc[i, j] ** 2 for i in range(n1) for j in range(d)) / (n1 - 1)
    trace_2 = mpmath.fsum(yc[i, j] ** 2 for i in range(n2) for j in range(d)) / (n2 - 1)
    mean_term = mpmath.fsum((mu1[j] - mu2[j]) ** 2 for j in range(d))
    return float(mean_term + trace_1 + trace_2 - 2 * nuclear)


def digits_features(n: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from isgame.scoring.classifiers import load_classifier
    from isgame.scoring.sources.digits_data import digits_split

    classifier, split = load_classifier("digits"), digits_split()
    with torch.no_grad():
        return (classifier.features(split.test_images[:n]).double().numpy(),
                classifier.features(split.train_images[:n]).double().numpy())


def main() -> None:
    quick = "--quick" in sys.argv
    if quick:
        sys.argv = [sys.argv[0], "30", "64"]
    if len(sys.argv) > 1 and sys.argv[1] == "digits":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
        a, b = digits_features(n)
        n, d = a.shape
    else:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
        d = int(sys.argv[2]) if len(sys.argv) > 2 else 128
        rng = np.random.default_rng(0)
        mixing = rng.normal(size=(d, d)) / np.sqrt(d)
        a = rng.normal(size=(n, d)) @ mixing
        b = rng.normal(size=(n, d)) @ mixing + 0.1
    exact = mpmath_fid(a, b)
    ours = frechet_distance(a, b)
    features = "digits features" if sys.argv[1:2] == ["digits"] else "correlated Gaussian features"
    headline = (f"FID with N = {n} < D = {d} ({features}): isgame {ours:.12f} against a 40-digit mpmath reference "
                f"{exact:.12f}, relative error {abs(ours - exact) / exact:.1e}.")
    emit("fid_low_rank", {"n": n, "d": d, "features": features, "reference": exact, "isgame": ours,
                          "abs_error": abs(ours - exact), "rel_error": abs(ours - exact) / exact},
         headline=headline, quick=quick)


if __name__ == "__main__":
    main()
