"""Differentiable versions of the metrics, for attacks aimed at each one (the leaderboard).

Each :class:`MetricLoss` turns a batch of images (n, C, H, W) in [0, 1], with gradients, into a scalar that an
attack *lowers* to move the metric toward real data: the distance itself where lower is better (FID, KID, ...),
minus the score where higher is better (IS, exp(I), Vendi). Every loss computes, in torch, the same quantity as
the metric the matrix reports (the same features, kernel and reference statistics), so the attack climbs the
metric it is judged by; the tests check each against its metric's own function at equal inputs.

Alfarra et al., ECCV 2022 ("On the Robustness of Quality Measures for GANs", MotasemAlfarra/R-FID-Robustness-of-
Quality-Measures-for-GANs) attack FID and IS through the feature extractor this way; Mathiasen & Hvilshøj 2020
backpropagate through FID by its eigenvalues, as here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.metrics.fid import symmetric_root
from isgame.scoring.metrics.sliced_wasserstein import quantile_grid

#: images -> scalar tensor to lower
Loss = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetricLoss:
    """A metric's differentiable loss (lower: closer to real data) and the classifier it reads (None: pixels)."""

    metric: str
    loss: Loss
    classifier: ImageClassifier | None = None


def _round_off_root(eigenvalues: torch.Tensor) -> torch.Tensor:
    """sqrt of the eigenvalues (k,) of a symmetric PSD matrix with each at or below its round-off level (k * eps *
    the largest, :func:`~isgame.scoring.metrics.fid.clip_round_off`) taken as 0 with a zero gradient: the value of
    the metric's own ``clipped_eigenvalues``, and no infinite derivative of sqrt at 0."""
    tolerance = eigenvalues.shape[0] * torch.finfo(torch.float64).eps * eigenvalues.abs().max().detach()
    kept = eigenvalues > tolerance
    return torch.where(kept, eigenvalues.clamp_min(tolerance).sqrt(), torch.zeros_like(eigenvalues))


def _symmetric_root(covariance: np.ndarray) -> torch.Tensor:
    """C^{1/2} (D, D) float64 of a PSD covariance, its round-off eigenvalues set to 0 (as the metric's route)."""
    return torch.from_numpy(symmetric_root(covariance))


def frechet_loss(features_of: Callable[[torch.Tensor], torch.Tensor], mean: np.ndarray,
                 covariance: np.ndarray) -> Loss:
    """FID of ``features_of(images)`` (n, D), n >= 2, against fixed statistics (mean (D,), covariance (D, D)), in
    float64 by the metric's eigenvalue route: |mu - m|^2 + tr S + tr C - 2 tr (C^{1/2} S C^{1/2})^{1/2}, the value
    of :func:`~isgame.scoring.metrics.fid.statistics_to_fid` (reference first) in units of squared features."""
    mean_t, covariance_t = torch.from_numpy(np.asarray(mean, np.float64)), np.asarray(covariance, np.float64)
    root, trace = _symmetric_root(covariance_t), float(np.trace(covariance_t))

    def loss(images: torch.Tensor) -> torch.Tensor:
        features = features_of(images).double()
        mu = features.mean(dim=0)
        centred = features - mu
        sigma = centred.T @ centred / (features.shape[0] - 1)
        middle = root @ sigma @ root
        eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2)
        value = (mu - mean_t).pow(2).sum() + torch.trace(sigma) + trace - 2 * _round_off_root(eigenvalues).sum()
        return value.clamp_min(0.0)

    return loss


def inception_loss(logits_of: Callable[[torch.Tensor], torch.Tensor], splits: int, *, one_marginal: bool) -> Loss:
    """Minus the classic IS over ``splits`` contiguous splits (split i: rows i*n//splits .. (i+1)*n//splits - 1, as
    :func:`~isgame.scoring.metrics.inception_score.inception_score`), or minus exp(I) with ``one_marginal``, of the
    classifier's (n, K) logits, float64."""
    def loss(images: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(logits_of(images).double(), dim=1)
        p = log_p.exp()
        neg_entropy = (p * log_p).sum(dim=1)
        n = p.shape[0]
        bounds = [0, n] if one_marginal else [i * n // splits for i in range(splits + 1)]
        scores = []
        for low, high in zip(bounds[:-1], bounds[1:]):
            marginal = p[low:high].mean(dim=0)
            # 0 log 0 = 0: a class no row of the split predicts at all adds nothing (and no NaN gradient)
            safe = torch.where(marginal > 0, marginal, torch.ones_like(marginal))
            scores.append(torch.exp(neg_entropy[low:high].mean() - (safe * safe.log()).sum()))
        return -torch.stack(scores).mean()

    return loss


def _unbiased_mmd(own: torch.Tensor, cross_mean: torch.Tensor, reference_term: float) -> torch.Tensor:
    """Unbiased MMD^2 from the samples' own kernel matrix (n, n), their mean kernel to the reference, and the
    reference's own (off-diagonal) mean."""
    n = own.shape[0]
    return (own.sum() - own.diagonal().sum()) / (n * (n - 1)) + reference_term - 2 * cross_mean


def _squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|x_i - y_j|^2 (m, n) of (m, d) and (n, d) rows, round-off clipped at 0, as
    :func:`isgame.scoring.metrics.rbf_mmd.squared_distances` (no sqrt, so no NaN gradient at 0 distance)."""
    return ((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)).clamp_min(0.0)


def _cubic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KID's kernel (x y^T / d + 1)^3, (m, n)."""
    kernel = x @ y.T / x.shape[1] + 1.0
    return kernel * kernel * kernel


def polynomial_mmd_loss(features_of, reference: np.ndarray, reference_term: float | None = None) -> Loss:
    """KID's statistic on the whole sets (the matrix's KID draws): the unbiased MMD^2 with k(x, y) = (x . y / d + 1)^3
    between the (n, d) features and the (N_ref, d) ``reference``; ``reference_term`` the reference's own
    off-diagonal kernel mean (None: computed here, O(N_ref^2))."""
    reference = np.asarray(reference, np.float64)
    reference_t = torch.from_numpy(reference)
    if reference_term is None:
        m = reference.shape[0]
        own = _cubic(reference_t, reference_t)
        reference_term = float((own.sum() - own.diagonal().sum()) / (m * (m - 1)))

    def loss(images: torch.Tensor) -> torch.Tensor:
        x = features_of(images).double()
        return _unbiased_mmd(_cubic(x, x), _cubic(x, reference_t).mean(), reference_term)

    return loss


def gaussian_mmd_loss(features_of, reference: np.ndarray, bandwidth: float, reference_term: float | None = None) -> Loss:
    """RBF-MMD's statistic: the unbiased MMD^2 with exp(-|x - y|^2 / (2 sigma^2)) at the fixed ``bandwidth`` sigma
    (the matrix's median heuristic) against the (N_ref, d) ``reference``; ``reference_term`` its own off-diagonal
    kernel mean (None: computed here)."""
    reference_t = torch.from_numpy(np.asarray(reference, np.float64))
    gamma = 1.0 / (2.0 * bandwidth**2)
    if reference_term is None:
        m = reference_t.shape[0]
        reference_term = float((torch.exp(-gamma * _squared_distances(reference_t, reference_t)).sum() - m)
                               / (m * (m - 1)))

    def loss(images: torch.Tensor) -> torch.Tensor:
        x = features_of(images).double()
        own = torch.exp(-gamma * _squared_distances(x, x))
        cross = torch.exp(-gamma * _squared_distances(x, reference_t)).mean()
        return _unbiased_mmd(own, cross, reference_term)

    return loss


def sliced_wasserstein_loss(features_of, reference: np.ndarray, directions: np.ndarray, p: int = 2) -> Loss:
    """SW_p between the (n, d) features and the (N_ref, d) ``reference`` over fixed ``directions`` (d, P): the mean
    over directions of W_p^p between the projections' uniform empirical quantile functions, integrated exactly
    over the breakpoints {i/n} and {j/N_ref} (:func:`~isgame.scoring.metrics.sliced_wasserstein.uniform_wasserstein_1d`,
    POT's ``wasserstein_1d``), to the power 1 / p."""
    projected_reference = torch.from_numpy(np.sort(np.asarray(reference, np.float64) @ directions, axis=0))
    directions_t = torch.from_numpy(np.asarray(directions, np.float64))

    def loss(images: torch.Tensor) -> torch.Tensor:
        projected, _ = torch.sort(features_of(images).double() @ directions_t, dim=0)
        own, theirs, widths = quantile_grid(projected.shape[0], projected_reference.shape[0])
        costs = torch.from_numpy(widths) @ (projected[torch.from_numpy(own)]
                                            - projected_reference[torch.from_numpy(theirs)]).abs().pow(p)
        return costs.mean().pow(1 / p)

    return loss


def vendi_loss(features_of) -> Loss:
    """Minus the Vendi score (q = 1, cosine kernel) of the (n, d) features: exp of the Shannon entropy of the
    eigenvalues of K / n, from the (d, d) dual X^T X / n of the unit rows (their nonzero eigenvalues are K / n's),
    the value of :func:`~isgame.scoring.metrics.vendi.vendi_score`."""
    def loss(images: torch.Tensor) -> torch.Tensor:
        x = features_of(images).double()
        unit = x / x.norm(dim=1, keepdim=True).clamp_min(1e-300)
        eigenvalues = torch.linalg.eigvalsh(unit.T @ unit / x.shape[0])
        positive = eigenvalues > 0  # zero and round-off negative eigenvalues dropped, as order_entropy drops them
        safe = torch.where(positive, eigenvalues, torch.ones_like(eigenvalues))
        return -torch.exp(-(torch.where(positive, safe * safe.log(), torch.zeros_like(safe))).sum())

    return loss


def wavelet_frechet_loss(images_to_packets: Callable[[torch.Tensor], torch.Tensor],
                         reference_packets: list[tuple[np.ndarray, np.ndarray]]) -> Loss:
    """The wavelet distance: the mean over Haar packets of the Fréchet distance of each packet's coefficients
    (``images_to_packets(images)``: (n, P, F)) to the reference's (mean (F,), covariance (F, F)) of that packet."""
    packet_losses = [frechet_loss(lambda coefficients, p=p: coefficients[:, p], mean, covariance)
                     for p, (mean, covariance) in enumerate(reference_packets)]

    def loss(images: torch.Tensor) -> torch.Tensor:
        coefficients = images_to_packets(images)
        return torch.stack([packet(coefficients) for packet in packet_losses]).mean()

    return loss


def haar_packets(images: torch.Tensor, levels: int) -> torch.Tensor:
    """Haar wavelet packets of (n, C, H, W) images to ``levels`` levels, differentiably: (n, 4^levels, C * H * W /
    4^levels), each level splitting every packet into its LL, LH, HL, HH parts (orthonormal: sums and differences
    of 2x2 blocks over 2), in the packet and coefficient order of
    :func:`isgame.scoring.metrics.wavelet_fd.packet_features`."""
    packets = images.unsqueeze(1)  # (n, 1, C, H, W)
    for _ in range(levels):
        a, b = packets[..., 0::2, 0::2], packets[..., 0::2, 1::2]
        c, d = packets[..., 1::2, 0::2], packets[..., 1::2, 1::2]
        parts = [(a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2]
        packets = torch.stack(parts, dim=2).flatten(1, 2)
    return packets.flatten(2)
