"""The games of the robustness matrix: ways to produce samples that may fool a metric.

Every game is ``game(domain, n, seed, *, steps=None)`` and returns ``n`` float32 images
(n, C, H, W) in [0, 1] of the domain's image shape, seeded. ``domain`` is a
:class:`~isgame.scoring.domains.Domain` (a digits classifier stands for the built-in digits
domain). ``steps`` is the gradient-step budget of the games in :data:`ATTACK_GAMES` (None: their
defaults, :data:`INFLATE_STEPS`, the ε-bounded ascent's and :data:`FEATURE_ATTACK_STEPS`) and of the
resampling games' weight optimisation (:data:`RESAMPLING_STEPS`); the other games ignore it. The reference for distribution metrics is the training set (what a
generator learns from); the "held-out real" game is the honest baseline every other game is
compared with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch

from isgame.attacks.adam import TensorAdam
from isgame.attacks.ball_ascent import maximise_score
from isgame.attacks.inflate import InflateAttack
from isgame.attacks.score_protocol import ScoreProtocol
from isgame.probes.generators import KDE_PCA_COMPONENTS, KdeGenerator
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import Domain, as_domain, pca_bandwidth_scale
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.runtime.threads import single_threaded

BOUNDED_EPSILON = 8 / 255
#: the truncation game's pull toward the class mean (x' = m + ψ (x - m))
TRUNCATION_PSI = 0.5
#: KDE bandwidths in PCA units for 8x8 grey digits; other domains scale them by :func:`pca_bandwidth_scale`
NEAR_COPY_BANDWIDTH = 0.01
HONEST_BANDWIDTH = 0.4
HISTOGRAM_POOL_FACTOR = 5
INFLATE_STEPS = 30
FEATURE_ATTACK_STEPS = 60
#: images go through the classifier about this many input values at a time (the digits' sets in one pass)
CHUNK_VALUES = 1 << 24



def _no_grad_chunks(function: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                    classifier: ImageClassifier) -> torch.Tensor:
    """``function`` of (N, C, H, W) ``images`` row-chunked so that one chunk holds about :data:`CHUNK_VALUES`
    values of the image or the network input, whichever is larger (one chunk for the digits)."""
    values = max(math.prod(images.shape[1:]), classifier.input_channels * math.prod(classifier.input_size))
    rows = max(1, CHUNK_VALUES // values)
    with torch.no_grad():
        return torch.cat([function(chunk) for chunk in images.split(rows)])


def _predicted(classifier: ImageClassifier, images: torch.Tensor) -> torch.Tensor:
    """Top-1 classes (N,) of images (N, C, H, W)."""
    return _no_grad_chunks(lambda chunk: classifier(chunk).argmax(dim=1), images, classifier)


def _check_steps(steps: int | None) -> None:
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise InvalidInputError(f"{parameter('steps')} must be an integer >= 1, got {steps!r}")


class ImageSpaceClassifier(ImageClassifier):
    """A classifier whose model input is the domain's image (C, H, W) in [0, 1], float32: the inner one's
    preprocessing (channels, resize) runs inside the differentiable forward pass, so attacks that step on the
    model input return images of the domain's shape even when the classifier reads another size."""

    def __init__(self, inner: ImageClassifier, image_shape: tuple[int, int, int]) -> None:
        super().__init__(interpolation=inner.interpolation, antialias=inner.antialias)
        self._inner = (inner,)  # not a submodule: the inner classifier keeps its own device and dtype
        self.name, self.num_classes, self.feature_dim = inner.name, inner.num_classes, inner.feature_dim
        self.input_channels, self.input_size = image_shape[0], tuple(image_shape[1:])
        self.device = inner.device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def _run_network(self, model_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inner = self._inner[0]
        return inner._run_network(inner.preprocess(model_input))


def attack_classifier(domain: Domain) -> ImageClassifier:
    """The classifier the attack games step through: the domain's own when it reads the domain's images as they
    are (the digits), else an :class:`ImageSpaceClassifier` around it."""
    classifier = domain.classifier
    if (classifier.input_channels, *classifier.input_size) == tuple(domain.image_shape):
        return classifier
    return ImageSpaceClassifier(classifier, domain.image_shape)


def _present_classes(domain: Domain) -> list[int]:
    """The classes of the training images (labels, else predictions) that occur, in increasing order."""
    return torch.unique(domain.train_classes).tolist()


def _kde(domain: Domain, seed: int) -> KdeGenerator:
    """PCA + KDE on the domain's training images: min(30, N_train - 1, D) components (30 for the digits)."""
    train = domain.train
    components = min(KDE_PCA_COMPONENTS, train.shape[0] - 1, math.prod(train.shape[1:]))
    if components < 1:
        raise InvalidInputError(f"the KDE games need at least 2 training images, but {parameter('train')} "
                                f"{domain.train_source} gives {train.shape[0]}; pass more training images")
    return KdeGenerator(train, n_components=components, seed=seed)


def _bandwidth(domain: Domain, bandwidth: float) -> float:
    """A digits bandwidth scaled to the domain's pixel count (exactly itself for 8x8 grey images)."""
    return bandwidth * pca_bandwidth_scale(domain.image_shape)


def held_out_real(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """The first ``n`` held-out real images: the honest baseline."""
    domain = as_domain(domain)
    domain.require_real(n, f"the held-out real game with n = {n}")
    return domain.real[:n].clone()


def uniform_noise(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """Seeded U(0, 1) pixels of the domain's shape."""
    return as_domain(domain).noise("uniform", n, seed=seed)


def inflated_noise(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """Uniform noise pushed by gradient steps (``steps``, default 30) to confident, class-balanced predictions."""
    domain = as_domain(domain)
    _check_steps(steps)
    # splits only shape the attack's IS trace; fewer than 10 samples need fewer (the digits' 540 keep 10).
    attack = InflateAttack(steps=INFLATE_STEPS if steps is None else steps, splits=min(10, n))
    return attack(attack_classifier(domain), uniform_noise(domain, n, seed)).images


def bounded_attack(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """Held-out real images whose IS is raised as far as an L∞ ball of 8/255 allows: the ε-bounded ascent
    (:func:`~isgame.attacks.ball_ascent.maximise_score`, strategy auto), from the clean images in one ball. The
    score raised is the openai IS with 10 splits, or fewer so that a split holds K images (a split of one image
    scores 1 whatever it shows). ``steps``: the strategies' and the own-class PGD's steps (None: 10 and 20)."""
    domain = as_domain(domain)
    _check_steps(steps)
    real = held_out_real(domain, n, seed)
    budget = {} if steps is None else {"steps": steps, "baseline_steps": steps}
    classifier = attack_classifier(domain)
    splits = min(10, max(1, n // classifier.num_classes))
    result = maximise_score(classifier, real, norm="linf", epsilons=[BOUNDED_EPSILON],
                            protocol=ScoreProtocol("openai", splits), percents=(), compare_cycling=False, seed=seed,
                            **budget)
    return result.final_images.detach()


def training_replay(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """``n`` distinct training images in a seeded random order (``n`` <= N_train)."""
    train = as_domain(domain).train
    if n > train.shape[0]:
        raise InvalidInputError(f"the training replay game with n = {n} needs at least {n} training images, but "
                                f"{parameter('train')} gives {train.shape[0]}; pass a smaller n or more training images")
    return train[torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(seed))[:n]].clone()


def near_copy_kde(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """KDE samples with a tiny bandwidth: near copies of training images."""
    domain = as_domain(domain)
    return _kde(domain, seed).sample(n, bandwidth=_bandwidth(domain, NEAR_COPY_BANDWIDTH), seed=seed)


def honest_kde(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """KDE samples with a generous bandwidth: blurry novel images."""
    domain = as_domain(domain)
    return _kde(domain, seed).sample(n, bandwidth=_bandwidth(domain, HONEST_BANDWIDTH), seed=seed)


def mode_collapse(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """One training image per class present (true labels, else the classifier's), each repeated; the classes
    cycle in increasing order, so the set is balanced."""
    domain = as_domain(domain)
    classes = _present_classes(domain)
    firsts = torch.stack([domain.train[(domain.train_classes == c).nonzero()[0, 0]] for c in classes])
    return firsts[torch.arange(n) % len(classes)].clone()


def class_prototypes(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """The mean training image of each class present, repeated in a balanced cycle."""
    domain = as_domain(domain)
    classes = _present_classes(domain)
    means = torch.stack([domain.train[domain.train_classes == c].mean(dim=0) for c in classes])
    return means[torch.arange(n) % len(classes)].clone()


def histogram_matching(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """Resample a 5x larger pool of honest KDE samples so the predicted-class histogram equals the real one's."""
    domain = as_domain(domain)
    classifier = domain.classifier
    pool = _kde(domain, seed).sample(HISTOGRAM_POOL_FACTOR * n, bandwidth=_bandwidth(domain, HONEST_BANDWIDTH),
                                     seed=seed + 1)
    pool_classes = _predicted(classifier, pool)
    target = torch.bincount(_predicted(classifier, held_out_real(domain, n, seed)), minlength=classifier.num_classes)
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


def feature_attack(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """Adam on FID (against the training features) through the classifier, from honest KDE samples;
    ``steps`` gradient steps (default 60)."""
    domain = as_domain(domain)
    _check_steps(steps)
    classifier = attack_classifier(domain)
    train_features = domain.train_outputs[1].double()
    mean = train_features.mean(dim=0)
    covariance = torch.cov(train_features.T)
    values, vectors = torch.linalg.eigh(covariance)
    root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    images = honest_kde(domain, n, seed)
    latent = torch.logit(images.clamp(1e-3, 1 - 1e-3)).requires_grad_(True)
    optimiser = TensorAdam(latent, lr=0.05)
    for _ in range(FEATURE_ATTACK_STEPS if steps is None else steps):
        features = classifier.features_from_model_input(torch.sigmoid(latent)).double()
        loss = _torch_fid(features, mean, root, torch.trace(covariance))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return torch.sigmoid(latent).detach()


RESAMPLING_POOL_FACTOR = 5
RESAMPLING_STEPS = 100
RESAMPLING_LEARNING_RATE = 0.15


def _predicted_real(domain: Domain) -> torch.Tensor:
    """The classifier's top-1 class of every held-out real image (N_real,), computed once per domain."""
    return domain.real_outputs[0].argmax(dim=1)


def class_sorted(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """The held-out real images, sorted by predicted class (stable): honest samples stored in class order.

    Under contiguous IS splits each split then holds one or two classes (openai/guided-diffusion #165:
    class-sorted ImageNet samples, IS 62.07 with the customary splits, 298.45 with one split)."""
    domain = as_domain(domain)
    real = held_out_real(domain, n, seed)
    order = torch.argsort(_predicted_real(domain)[:n], stable=True)
    return real[order].clone()


def truncation(domain: Domain, n: int, seed: int, *, steps: int | None = None,
               psi: float = TRUNCATION_PSI) -> torch.Tensor:
    """Held-out real images pulled toward the mean training image of their predicted class by ``psi`` (0.5):
    x' = m_c + ψ (x - m_c), the pixel-space analogue of the truncation trick (precision up, recall down)."""
    domain = as_domain(domain)
    real = held_out_real(domain, n, seed)
    classes = _predicted_real(domain)[:n]
    means = torch.zeros((domain.num_classes, *real.shape[1:]), dtype=real.dtype)
    for c in torch.unique(domain.train_classes).tolist():
        means[c] = domain.train[domain.train_classes == c].mean(dim=0)
    present = torch.isin(classes, torch.unique(domain.train_classes))
    prototypes = torch.where(present[:, None, None, None], means[classes], real)
    return (prototypes + psi * (real - prototypes)).clamp(0, 1)


def _mode_dropping(domain: Domain, n: int, seed: int, dropped_count: int) -> torch.Tensor:
    """Held-out real images of every predicted class but ``dropped_count`` seeded ones, repeated in order to fill n."""
    domain = as_domain(domain)
    classes = _predicted_real(domain)
    present = torch.unique(classes).tolist()
    if len(present) < 2:
        raise InvalidInputError(f"mode dropping needs real images of at least 2 predicted classes, but "
                                f"{parameter('real')} {domain.real_source} shows {len(present)}; pass real images of "
                                "more classes")
    dropped_count = min(dropped_count, len(present) - 1)
    dropped = np.random.default_rng(seed).choice(present, size=dropped_count, replace=False)
    kept = torch.nonzero(~torch.isin(classes, torch.as_tensor(dropped))).squeeze(1)
    return domain.real[kept[torch.arange(n) % kept.numel()]].clone()


def mode_dropping_one(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """Held-out real images with one (seeded) class removed; the rest repeat in order to fill n."""
    return _mode_dropping(domain, n, seed, 1)


def mode_dropping_half(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """Held-out real images with half the classes they show removed (seeded; 5 of the digits' 10: K/2 when every
    class appears); the rest repeat to fill n."""
    domain = as_domain(domain)
    return _mode_dropping(domain, n, seed, max(1, len(torch.unique(_predicted_real(domain))) // 2))


def _weighted_frechet(values: torch.Tensor, log_weights: torch.Tensor, mean: torch.Tensor, root: torch.Tensor,
                      covariance: torch.Tensor) -> torch.Tensor:
    """Fréchet distance between the ``exp(log_weights)``-weighted statistics of (P, D) ``values`` and fixed ones
    (``mean``, ``covariance`` and its symmetric ``root``). The weighted covariance is A^T A with A (P, D), so the
    trace term needs the eigenvalues of root A^T A root (D x D) or, the same nonzero ones, of A S A^T (P x P):
    the smaller is used (a pool of 35 images with 2048-d Inception features: 35 x 35)."""
    weights = torch.exp(log_weights)
    total = weights.sum()
    weighted_mean = weights @ values / total
    scaled = (values - weighted_mean) * (weights / (total - 1)).sqrt()[:, None]
    if values.shape[0] < values.shape[1]:
        middle = scaled @ covariance @ scaled.T
    else:
        middle = root @ (scaled.T @ scaled) @ root
    eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(1e-12)
    return ((weighted_mean - mean).pow(2).sum() + scaled.pow(2).sum() + torch.trace(covariance)
            - 2 * eigenvalues.sqrt().sum())


def _resampled(domain: Domain, n: int, seed: int, space: str, steps: int | None = None) -> torch.Tensor:
    """Kynkäänniemi et al., ICLR 2023 ("The Role of ImageNet Classes in FID"; kynkaat/role-of-imagenet-classes-in-fid,
    ``resampling/resample.py``): per-sample log-weights over a pool of honest samples (5n honest KDE images),
    optimised so that the weighted statistics of the pool's ``space`` ("logits" or "features") match the
    training images' (Fréchet distance; Adam, ``steps`` steps of 0.15, default 100), then n samples drawn with
    replacement by the weights."""
    domain = as_domain(domain)
    _check_steps(steps)
    pool = _kde(domain, seed).sample(RESAMPLING_POOL_FACTOR * n, bandwidth=_bandwidth(domain, HONEST_BANDWIDTH),
                                     seed=seed + 1)
    from isgame.scoring.pipeline import classify_with_features

    index = 0 if space == "logits" else 1
    values = classify_with_features(domain.classifier, pool)[index].double()
    reference = domain.train_outputs[index].double()
    mean, covariance = reference.mean(dim=0), torch.cov(reference.T)
    eigenvalues, vectors = torch.linalg.eigh(covariance)
    root = (vectors * eigenvalues.clamp_min(0).sqrt()) @ vectors.T
    log_weights = torch.zeros(values.shape[0], dtype=torch.float64, requires_grad=True)
    optimiser = TensorAdam(log_weights, lr=RESAMPLING_LEARNING_RATE)
    with single_threaded():
        for _ in range(RESAMPLING_STEPS if steps is None else steps):
            loss = _weighted_frechet(values, log_weights, mean, root, covariance)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    probabilities = torch.softmax(log_weights.detach(), dim=0).numpy()
    chosen = np.random.default_rng(seed).choice(values.shape[0], size=n, replace=True, p=probabilities / probabilities.sum())
    return pool[torch.from_numpy(chosen)].clone()


def resampling_logits(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """Honest samples resampled so that their logits' statistics match the training images' (``steps``: the
    weights' optimisation steps, default 100)."""
    return _resampled(domain, n, seed, "logits", steps)


def resampling_features(domain: Domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
    """Honest samples resampled so that their penultimate features' statistics match the training images'
    (``steps``: the weights' optimisation steps, default 100)."""
    return _resampled(domain, n, seed, "features", steps)


#: the aspects of a generator a game degrades and a metric claims to measure
ASPECTS = ("fidelity", "diversity", "novelty")


@dataclass(frozen=True)
class Game:
    """A way to produce samples that may fool a metric, and what it does to them.

    ``play(domain, n, seed, *, steps=None)`` returns ``n`` float32 images (n, C, H, W) in [0, 1]; calling the game
    plays it. ``degrades`` names the aspects (:data:`ASPECTS`) its samples are worse in than held-out real data:
    empty for real data in another order, None when undeclared (a game given as a bare function: every metric is
    then judged on it). ``held_out``: its samples are held-out images or made one by one from them (FLD's test half
    is among them); ``attack``: it steps through the classifier by gradient (``steps`` sets its budget);
    ``origin(domain, n, seed)``: for a game whose rows are the reference's rows in another order or each changed
    alone, the reference row (n,) of each of its rows, so the test can pair them.
    """

    name: str
    play: Callable[..., torch.Tensor]
    family: str = "other"
    degrades: tuple[str, ...] | None = None
    held_out: bool = False
    attack: bool = False
    origin: Callable[[Domain, int, int], np.ndarray] | None = None
    description: str = ""

    def __call__(self, domain, n: int, seed: int, *, steps: int | None = None) -> torch.Tensor:
        return self.play(domain, n, seed, steps=steps)

    def to_dict(self) -> dict[str, object]:
        return {"family": self.family, "degrades": None if self.degrades is None else list(self.degrades),
                "held_out": self.held_out, "attack": self.attack, "paired": self.origin is not None,
                "description": self.description}


def _same_rows(domain: Domain, n: int, seed: int) -> np.ndarray:
    """Row i of the game is reference row i, changed alone."""
    return np.arange(n)


def _sorted_rows(domain: Domain, n: int, seed: int) -> np.ndarray:
    """The class-sorted game's rows: the reference's, in stable order of predicted class."""
    return torch.argsort(_predicted_real(as_domain(domain))[:n], stable=True).numpy()


def _game(name: str, play, family: str, degrades: tuple[str, ...], description: str, **options) -> Game:
    return Game(name=name, play=play, family=family, degrades=degrades, description=description, **options)


#: every game, by family, in the order the matrix shows them
GAME_REGISTRY: dict[str, Game] = {game.name: game for game in (
    _game("held-out real", held_out_real, "reference", (), "held-out real images: the honest baseline",
          held_out=True, origin=_same_rows),
    _game("honest KDE", honest_kde, "baseline", ("fidelity",), "PCA + KDE samples with a generous bandwidth: "
          "blurry, novel images"),
    _game("uniform noise", uniform_noise, "baseline", ("fidelity", "diversity"), "U(0, 1) pixels: no real image "
          "and no real mode"),
    _game("training replay", training_replay, "memorisation", ("novelty",), "training images, replayed"),
    _game("near-copy KDE", near_copy_kde, "memorisation", ("novelty",), "KDE samples with a tiny bandwidth: near "
          "copies of training images"),
    _game("mode collapse", mode_collapse, "diversity loss", ("diversity", "novelty"), "one training image per "
          "class, repeated: fewer modes, and copies"),
    _game("class prototypes", class_prototypes, "diversity loss", ("fidelity", "diversity"), "the mean training "
          "image of each class, repeated: blurry and without variety"),
    _game("truncation (ψ = 0.5)", truncation, "diversity loss", ("diversity",), "held-out images pulled halfway "
          "to their class's mean image: less variety within each class", held_out=True, origin=_same_rows),
    _game("mode dropping (1 class)", mode_dropping_one, "diversity loss", ("diversity",), "held-out images of "
          "every predicted class but one", held_out=True),
    _game("mode dropping (K/2 classes)", mode_dropping_half, "diversity loss", ("diversity",), "held-out images "
          "of half the predicted classes", held_out=True),
    _game("class-sorted order", class_sorted, "protocol", (), "the held-out images themselves, sorted by class: "
          "nothing about them is worse, only their order", held_out=True, origin=_sorted_rows),
    _game("class-histogram matching", histogram_matching, "resampling", ("fidelity",), "honest KDE samples picked "
          "so their predicted-class histogram is the real one's"),
    _game("resampling (logits)", resampling_logits, "resampling", ("fidelity",), "honest KDE samples resampled to "
          "match the training images' logit statistics"),
    _game("resampling (features)", resampling_features, "resampling", ("fidelity",), "honest KDE samples "
          "resampled to match the training images' feature statistics"),
    _game("IS-inflated noise", inflated_noise, "adversarial", ("fidelity", "diversity"), "uniform noise pushed to "
          "confident, class-balanced predictions", attack=True),
    _game("ε-bounded attack (8/255)", bounded_attack, "adversarial", ("fidelity",), "held-out images with an "
          "adversarial pattern of at most 8/255 a pixel that real images do not have", held_out=True, attack=True,
          origin=_same_rows),
    _game("FID feature attack", feature_attack, "adversarial", ("fidelity",), "honest KDE samples moved to match "
          "the training images' feature statistics by gradient", attack=True),
)}
#: a game by name, callable as ``GAMES[name](domain, n, seed, steps=...)``
GAMES: dict[str, Game] = dict(GAME_REGISTRY)


class _GameFamilies(Mapping):
    """Each registered game's family, read from :data:`GAMES` (a plug-in game joins it when it registers)."""

    def __getitem__(self, name: str) -> str:
        return GAMES[name].family

    def __iter__(self):
        return iter(list(GAMES))

    def __len__(self) -> int:
        return len(GAMES)


GAME_FAMILIES: Mapping[str, str] = _GameFamilies()
REFERENCE_GAME = "held-out real"
#: the games whose samples are held-out real images, or images made one by one from them: they contain the held-out
#: half that FLD scores on, so their FLD is not measured (the matrix says so in a note)
HELD_OUT_GAMES = tuple(name for name, game in GAME_REGISTRY.items() if game.held_out and name != REFERENCE_GAME)
#: the games that attack the classifier with gradient steps (``steps`` sets their budget, and the resampling games'
#: optimisation steps; ``attack=False`` in the audit leaves these out)
ATTACK_GAMES = tuple(name for name, game in GAME_REGISTRY.items() if game.attack)


def register_game(name: str, play: Callable[..., torch.Tensor] | None = None, *, degrades: tuple[str, ...],
                  family: str = "plug-in", description: str = "", held_out: bool = False, attack: bool = False,
                  override: bool = False):
    """Add a game to the matrix (:data:`GAMES`), as a call or a decorator of ``play(domain, n, seed, *, steps=None)
    -> (n, C, H, W) float32 images in [0, 1]``. ``degrades`` names the aspects (:data:`ASPECTS`) its samples are
    worse in than held-out real data (empty: a null game, where any flag is a false alarm); the matrix judges each
    metric on the games in its scope. A taken name is refused unless ``override``."""
    from isgame.scoring.metrics.registry import ASPECTS

    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{parameter('name')} must be a non-empty game name, got {name!r}")
    if name == REFERENCE_GAME or (name in GAMES and not override):
        raise InvalidInputError(f"{parameter('name', repr(name))} is taken by a game already registered; choose "
                                f"another name{'' if name == REFERENCE_GAME else ', or pass ' + parameter('override', True)}")
    unknown = [aspect for aspect in degrades if aspect not in ASPECTS]
    if unknown:
        raise InvalidInputError(f"{parameter('degrades')} of game {name!r} must name aspects among "
                                f"{', '.join(ASPECTS)}, got {list(degrades)!r}")

    def add(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        game = Game(name=name, play=function, family=family, degrades=tuple(degrades), held_out=held_out,
                    attack=attack, description=description or f"plug-in game from {function.__module__}")
        GAMES[name] = game
        return function

    return add if play is None else add(play)


def as_game(name: str, game) -> Game:
    """``game`` as a :class:`Game`: itself, or a bare function under a registered name with that name's
    declaration, or an undeclared game (every metric judged on it)."""
    if isinstance(game, Game):
        return game
    known = GAMES.get(name)
    if known is not None:
        return replace(known, play=game)
    return Game(name=name, play=game)


def select_games(names: list[str]) -> dict[str, Game]:
    """The games named (any case), in the matrix's order, with the reference always first; an unknown name is
    refused in one line listing the games."""
    by_key = {name.lower(): name for name in GAMES}
    unknown = [name for name in names if name.lower() not in by_key]
    if unknown:
        raise InvalidInputError(f"{parameter('games')}: unknown {', '.join(unknown)}; choose from {', '.join(GAMES)}")
    wanted = {by_key[name.lower()] for name in names} | {REFERENCE_GAME}
    return {name: game for name, game in GAMES.items() if name in wanted}
