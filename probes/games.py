"""The games of the robustness matrix: ways to produce samples that may fool a metric.

Each game returns float32 images (n, 1, 8, 8) in [0, 1], seeded. The reference for
distribution metrics is the training set (what a generator learns from); the "held-out real"
game is the honest baseline every other game is compared with.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from isgame.attacks.bounded import targeted_pgd
from isgame.attacks.inflate import InflateAttack
from isgame.probes.generators import KdeGenerator
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.digits_data import digits_split
from isgame.scoring.samples import open_images

BOUNDED_EPSILON = 8 / 255
NEAR_COPY_BANDWIDTH = 0.01
HONEST_BANDWIDTH = 0.4
HISTOGRAM_POOL_FACTOR = 5
FEATURE_ATTACK_STEPS = 60


def _predicted(classifier: ImageClassifier, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return classifier(images).argmax(dim=1)


def held_out_real(classifier, n, seed):
    return digits_split().test_images[:n].clone()


def uniform_noise(classifier, n, seed):
    return open_images("noise:uniform", n=n, seed=seed).load_all()


def inflated_noise(classifier, n, seed):
    return InflateAttack(steps=30)(classifier, uniform_noise(classifier, n, seed)).images


def bounded_attack(classifier, n, seed):
    real = held_out_real(classifier, n, seed)
    _, clipped, _ = targeted_pgd(classifier, real, norm="linf", epsilons=[BOUNDED_EPSILON], seed=seed)
    return clipped[0].detach()


def training_replay(classifier, n, seed):
    train = digits_split().train_images
    return train[torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(seed))[:n]].clone()


def near_copy_kde(classifier, n, seed):
    return KdeGenerator(digits_split().train_images, seed=seed).sample(n, bandwidth=NEAR_COPY_BANDWIDTH, seed=seed)


def honest_kde(classifier, n, seed):
    return KdeGenerator(digits_split().train_images, seed=seed).sample(n, bandwidth=HONEST_BANDWIDTH, seed=seed)


def mode_collapse(classifier, n, seed):
    """One training image per class, each repeated (classes cycle, so the set is balanced)."""
    split = digits_split()
    firsts = torch.stack([split.train_images[(split.train_labels == c).nonzero()[0, 0]] for c in range(10)])
    return firsts[torch.arange(n) % 10].clone()


def class_prototypes(classifier, n, seed):
    """The mean training image of each class, repeated in a balanced cycle."""
    split = digits_split()
    means = torch.stack([split.train_images[split.train_labels == c].mean(dim=0) for c in range(10)])
    return means[torch.arange(n) % 10].clone()


def histogram_matching(classifier, n, seed):
    """Resample a 5x larger pool of honest KDE samples so the predicted-class histogram equals the real one's."""
    pool = KdeGenerator(digits_split().train_images, seed=seed).sample(HISTOGRAM_POOL_FACTOR * n,
                                                                      bandwidth=HONEST_BANDWIDTH, seed=seed + 1)
    pool_classes = _predicted(classifier, pool)
    target = torch.bincount(_predicted(classifier, held_out_real(classifier, n, seed)), minlength=classifier.num_classes)
    rng = np.random.default_rng(seed)
    chosen = []
    for c, count in enumerate(target.tolist()):
        members = torch.nonzero(pool_classes == c).squeeze(1).numpy()
        if count and len(members):
            chosen.extend(rng.choice(members, size=count, replace=len(members) < count).tolist())
    # A generator emits its samples in no particular order: shuffle, or contiguous IS splits would each hold one class.
    return pool[torch.tensor(rng.permutation(chosen))].clone()


def _torch_fid(features: torch.Tensor, mean: torch.Tensor, covariance_root: torch.Tensor, covariance_trace: torch.Tensor):
    """Differentiable FID of ``features`` against fixed statistics (float64), eigenvalue route."""
    mu = features.mean(dim=0)
    centred = features - mu
    sigma = centred.T @ centred / (features.shape[0] - 1)
    middle = covariance_root @ sigma @ covariance_root
    eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(1e-12)
    return (mu - mean).pow(2).sum() + torch.trace(sigma) + covariance_trace - 2 * eigenvalues.sqrt().sum()


def feature_attack(classifier, n, seed):
    """Gradient descent on FID (against the training features) through the classifier, from honest KDE samples."""
    train_features = classifier.features(digits_split().train_images).double()
    mean = train_features.mean(dim=0)
    covariance = torch.cov(train_features.T)
    values, vectors = torch.linalg.eigh(covariance)
    root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    images = honest_kde(classifier, n, seed)
    latent = torch.logit(images.clamp(1e-3, 1 - 1e-3)).requires_grad_(True)
    optimiser = torch.optim.Adam([latent], lr=0.05)
    for _ in range(FEATURE_ATTACK_STEPS):
        features = classifier.features_from_model_input(torch.sigmoid(latent)).double()
        loss = _torch_fid(features, mean, root, torch.trace(covariance))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return torch.sigmoid(latent).detach()


GAMES: dict[str, Callable[[ImageClassifier, int, int], torch.Tensor]] = {
    "held-out real": held_out_real,
    "uniform noise": uniform_noise,
    "IS-inflated noise": inflated_noise,
    "ε-bounded attack (8/255)": bounded_attack,
    "training replay": training_replay,
    "near-copy KDE": near_copy_kde,
    "mode collapse": mode_collapse,
    "class prototypes": class_prototypes,
    "class-histogram matching": histogram_matching,
    "FID feature attack": feature_attack,
    "honest KDE": honest_kde,
}
REFERENCE_GAME = "held-out real"
