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

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from isgame.scoring.classifiers.base import ImageClassifier

#: images -> scalar tensor to lower
Loss = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetricLoss:
    """A metric's differentiable loss (lower: closer to real data) and the classifier it reads (None: pixels)."""

    metric: str
    loss: Loss
    classifier: ImageClassifier | None = None


def _symmetric_root(covariance: np.ndarray) -> torch.Tensor:
    values, vectors = np.linalg.eigh(covariance)
    return torch.from_numpy((vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T)


def frechet_loss(features_of: Callable[[torch.Tensor], torch.Tensor], mean: np.ndarray,
                 covariance: np.ndarray) -> Loss:
    """FID of ``features_of(images)`` (n, D) against fixed statistics, in float64 by the eigenvalue route:
    |mu - m|^2 + tr S + tr C - 2 tr (C^{1/2} S C^{1/2})^{1/2}."""
    mean_t, covariance_t = torch.from_numpy(mean), torch.from_numpy(covariance)
    root, trace = _symmetric_root(covariance), float(np.trace(covariance))

    def loss(images: torch.Tensor) -> torch.Tensor:
        features = features_of(images).double()
        mu = features.mean(dim=0)
        centred = features - mu
        sigma = centred.T @ centred / (features.shape[0] - 1)
        middle = root @ sigma @ root
        eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(1e-12)
        return (mu - mean_t).pow(2).sum() + torch.trace(sigma) + trace - 2 * eigenvalues.sqrt().sum()

    return loss


def inception_loss(logits_of: Callable[[torch.Tensor], torch.Tensor], splits: int, *, one_marginal: bool) -> Loss:
    """Minus the classic IS over ``splits`` contiguous splits (or minus exp(I) with ``one_marginal``) of the
    classifier's predictions, float64."""
    def loss(images: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(logits_of(images).double(), dim=1)
        p = log_p.exp()
        neg_entropy = (p * log_p).sum(dim=1)
        n = p.shape[0]
        bounds = [0, n] if one_marginal else [i * n // splits for i in range(splits + 1)]
        scores = []
        for low, high in zip(bounds[:-1], bounds[1:]):
            marginal = p[low:high].mean(dim=0).clamp_min(1e-300)
            scores.append(torch.exp(neg_entropy[low:high].mean() - (marginal * marginal.log()).sum()))
        return -torch.stack(scores).mean()

    return loss


def _unbiased_mmd(own: torch.Tensor, cross_mean: torch.Tensor, reference_term: float) -> torch.Tensor:
    """Unbiased MMD^2 from the samples' own kernel matrix (n, n), their mean kernel to the reference, and the
    reference's own (off-diagonal) mean."""
    n = own.shape[0]
    return (own.sum() - own.diagonal().sum()) / (n * (n - 1)) + reference_term - 2 * cross_mean


def polynomial_mmd_loss(features_of, reference: np.ndarray) -> Loss:
    """KID's statistic: unbiased MMD^2 with k(x, y) = (x . y / d + 1)^3 against the reference features (full set)."""
    reference_t = torch.from_numpy(reference)
    dim, m = reference.shape[1], reference.shape[0]
    own = (reference @ reference.T / dim + 1) ** 3
    reference_term = float((own.sum() - np.trace(own)) / (m * (m - 1)))

    def loss(images: torch.Tensor) -> torch.Tensor:
        x = features_of(images).double()
        return _unbiased_mmd((x @ x.T / dim + 1) ** 3, ((x @ reference_t.T / dim + 1) ** 3).mean(), reference_term)

    return loss


def gaussian_mmd_loss(features_of, reference: np.ndarray, bandwidth: float) -> Loss:
    """RBF-MMD's statistic: unbiased MMD^2 with exp(-|x - y|^2 / (2 sigma^2)) at the matrix's fixed bandwidth."""
    reference_t = torch.from_numpy(reference)
    gamma, m = 1.0 / (2.0 * bandwidth**2), reference.shape[0]
    squared = ((reference[:, None] - reference[None]) ** 2).sum(-1) if m <= 2048 else None
    reference_term = float((np.exp(-gamma * squared).sum() - m) / (m * (m - 1))) if squared is not None else math.nan

    def loss(images: torch.Tensor) -> torch.Tensor:
        x = features_of(images).double()
        own = torch.exp(-gamma * torch.cdist(x, x).pow(2))
        cross = torch.exp(-gamma * torch.cdist(x, reference_t).pow(2)).mean()
        return _unbiased_mmd(own, cross, reference_term)

    return loss


def sliced_wasserstein_loss(features_of, reference: np.ndarray, directions: np.ndarray, p: int = 2) -> Loss:
    """SW_p between the features and the reference over fixed directions (D, P): the mean over directions of
    W_p^p between the projections' empirical quantile functions (sorted), to the power 1 / p."""
    projected_reference = torch.from_numpy(np.sort(reference @ directions, axis=0))
    directions_t = torch.from_numpy(directions)
    quantiles = torch.linspace(0, 1, projected_reference.shape[0], dtype=torch.float64)

    def loss(images: torch.Tensor) -> torch.Tensor:
        projected, _ = torch.sort(features_of(images).double() @ directions_t, dim=0)
        n = projected.shape[0]
        # The samples' quantile function at the reference's quantile levels (nearest order statistic).
        index = torch.clamp((quantiles * n).long(), max=n - 1)
        return ((projected[index] - projected_reference).abs().pow(p).mean(dim=0).mean()).pow(1 / p)

    return loss


def vendi_loss(features_of) -> Loss:
    """Minus the Vendi score (q = 1) of the cosine kernel of the features: exp of the entropy of the eigenvalues
    of K / n, from the (D, D) dual X^T X / n of the unit rows."""
    def loss(images: torch.Tensor) -> torch.Tensor:
        x = features_of(images).double()
        unit = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        eigenvalues = torch.linalg.eigvalsh(unit.T @ unit / x.shape[0]).clamp_min(1e-15)
        return -torch.exp(-(eigenvalues * eigenvalues.log()).sum())

    return loss


def wavelet_frechet_loss(images_to_packets: Callable[[torch.Tensor], torch.Tensor],
                         reference_packets: list[tuple[np.ndarray, np.ndarray]]) -> Loss:
    """The wavelet distance: the mean over Haar packets of the Fréchet distance of each packet's coefficients
    (n, P, F) to the reference's (mean, covariance) of that packet."""
    packet_losses = [frechet_loss(lambda coefficients, p=p: coefficients[:, p], mean, covariance)
                     for p, (mean, covariance) in enumerate(reference_packets)]

    def loss(images: torch.Tensor) -> torch.Tensor:
        coefficients = images_to_packets(images)
        return torch.stack([packet(coefficients) for packet in packet_losses]).mean()

    return loss


def haar_packets(images: torch.Tensor, levels: int) -> torch.Tensor:
    """Haar wavelet packets of (n, C, H, W) images to ``levels`` levels, differentiably: (n, 4^levels, C * H * W /
    4^levels), each level splitting every packet into its LL, LH, HL, HH parts (orthonormal: sums and differences
    of 2x2 blocks over 2)."""
    packets = images.unsqueeze(1)  # (n, 1, C, H, W)
    for _ in range(levels):
        a, b = packets[..., 0::2, 0::2], packets[..., 0::2, 1::2]
        c, d = packets[..., 1::2, 0::2], packets[..., 1::2, 1::2]
        parts = [(a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2]
        packets = torch.stack(parts, dim=2).flatten(1, 2)
    return packets.flatten(2)
