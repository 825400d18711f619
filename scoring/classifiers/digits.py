"""The embedded default classifier: a small CNN on scikit-learn's 8x8 digits.

Network: conv 3x3 (1->32) - ReLU - conv 3x3 (32->64) - ReLU - max-pool 2 - linear 1024->128 -
ReLU (the features, D = 128) - linear 128->10 (the logits). Input: grey 8x8 in [0, 1], 1 = ink.

Weights ship as safetensors in ``scoring/weights/`` and are reproduced by
:func:`train_digits_cnn` from their seed (``isgame train-digits --seed S``): training runs
single-threaded with deterministic algorithms so that the same seed gives the same weights.
``digits`` (seed 0) and ``digits-b`` (seed 1) are trained on clean images; ``digits-robust``
(seed 2) with L∞ PGD adversarial training at ε = 0.1, 7 steps
(:mod:`~isgame.scoring.classifiers.adversarial_training`), for the defended scores R-IS and R-FID.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from isgame.scoring.classifiers.adversarial_training import ROBUST_TRAIN_STEPS, check_epsilon, pgd_linf
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.errors import InvalidInputError, SourceNotFoundError, parameter, remedy
from isgame.scoring.sources.digits_data import DIGITS_IMAGE_SIZE, DIGITS_NUM_CLASSES, digits_split

#: name -> (weights file shipped in scoring/weights, training seed)
SHIPPED_DIGITS_WEIGHTS = {"digits": ("digits.safetensors", 0), "digits-b": ("digits-b.safetensors", 1),
                          "digits-robust": ("digits-robust.safetensors", 2)}

TRAIN_EPOCHS = 30
TRAIN_BATCH_SIZE = 64
TRAIN_LEARNING_RATE = 1e-3


class DigitsCNN(nn.Module):
    """The bare network on (N, 1, 8, 8) inputs; returns (logits (N, 10), features (N, 128))."""

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(64 * 4 * 4, self.feature_dim)
        self.fc2 = nn.Linear(self.feature_dim, DIGITS_NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.relu(self.conv1(x))
        # Pooling before the ReLU gives the same values and gradients (ReLU is monotone, and a window whose
        # maximum is <= 0 passes no gradient either way) on a quarter of the elements.
        x = torch.relu(torch.nn.functional.max_pool2d(self.conv2(x), 2)).flatten(1)
        features = torch.relu(self.fc1(x))
        return self.fc2(features), features


class DigitsClassifier(ImageClassifier):
    """:class:`DigitsCNN` behind the :class:`ImageClassifier` interface (grey, 8x8, antialiased resize)."""

    num_classes = DIGITS_NUM_CLASSES
    feature_dim = DigitsCNN.feature_dim
    input_channels = 1
    input_size = DIGITS_IMAGE_SIZE

    def __init__(self, network: DigitsCNN, *, name: str = "digits", weights_sha256: str = "", **preprocessing) -> None:
        super().__init__(**preprocessing)
        self.network = network
        self.name = name
        self.weights_sha256 = weights_sha256
        self.train(False)
        for weight in self.parameters():
            weight.requires_grad_(False)
        # NHWC is oneDNN's native layout: a forward+backward pass on 540 digits took 0.64x the time of NCHW here
        # (max-pooling alone runs 10x faster on NHWC). Logits move by float round-off only: within 1.8e-7 of the
        # largest logit on the held-out digits and 1000 uniform-noise images. Training builds its own NCHW
        # network, so retraining still reproduces the shipped weights.
        self.network.to(memory_format=torch.channels_last)

    def _logits_and_features(self, model_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network(model_input)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "weights_sha256": self.weights_sha256}


def shipped_weights_path(name: str) -> Path:
    """Path of the shipped safetensors file of ``digits``, ``digits-b`` or ``digits-robust``."""
    filename, _ = SHIPPED_DIGITS_WEIGHTS[name]
    return Path(str(resources.files("isgame.scoring") / "weights" / filename))


def load_digits_network(path: Path) -> tuple[DigitsCNN, str]:
    """Load a :class:`DigitsCNN` from a safetensors file; return it and the file's sha256.

    safetensors holds raw tensors only, so loading never executes code from the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise SourceNotFoundError(f"digits weights not found at {path}; recreate them with "
                                  f"{remedy('isgame train-digits', 'isgame.train_digits_cnn(seed)')} "
                                  "(seed 0 gives digits, seed 1 digits-b, seed 2 with "
                                  f"{parameter('adversarial_epsilon', '0.1')} digits-robust) or pass another file as "
                                  f"{parameter('weights', 'PATH')}")
    raw = path.read_bytes()
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise InvalidInputError(
            f"{path} is not a valid safetensors file ({error}); weights must be saved with safetensors, not pickle"
        ) from None
    network = DigitsCNN()
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[0] if str(error) else "mismatch"
        raise InvalidInputError(f"{path} does not hold DigitsCNN weights ({first}); retrain with "
                                f"{remedy('isgame train-digits', 'isgame.train_digits_cnn(seed)')}") from None
    return network.eval(), hashlib.sha256(raw).hexdigest()


def load_digits_classifier(name: str = "digits", *, weights: Path | None = None, **preprocessing) -> DigitsClassifier:
    """The shipped ``digits`` / ``digits-b`` / ``digits-robust`` classifier, or a DigitsCNN from ``weights``."""
    if weights is None:
        if name not in SHIPPED_DIGITS_WEIGHTS:
            raise InvalidInputError(f"unknown digits classifier {name!r}; choose one of {', '.join(SHIPPED_DIGITS_WEIGHTS)}")
        weights = shipped_weights_path(name)
    network, digest = load_digits_network(Path(weights))
    return DigitsClassifier(network, name=name, weights_sha256=digest, **preprocessing)


@dataclass(frozen=True)
class DigitsTrainingResult:
    """A trained network and its held-out accuracy (fraction in [0, 1]).

    ``adversarial_epsilon`` (L∞, [0, 1] pixel units) and ``adversarial_steps`` are set for PGD adversarial
    training, else None.
    """

    network: DigitsCNN
    seed: int
    epochs: int
    held_out_accuracy: float
    adversarial_epsilon: float | None = None
    adversarial_steps: int | None = None

    def to_dict(self) -> dict[str, object]:
        result = {"seed": self.seed, "epochs": self.epochs, "held_out_accuracy": self.held_out_accuracy}
        # Standard training keeps its keys (and so its saved file's metadata) as they always were.
        if self.adversarial_epsilon is not None:
            result |= {"adversarial_epsilon": self.adversarial_epsilon, "adversarial_steps": self.adversarial_steps}
        return result


def held_out_accuracy(network: nn.Module) -> float:
    """Top-1 accuracy of a (N,1,8,8) -> (logits, features) network on the held-out digits."""
    split = digits_split()
    with torch.no_grad():
        logits, _ = network(split.test_images)
    return float((logits.argmax(dim=1) == split.test_labels).float().mean())


def train_digits_cnn(seed: int, *, epochs: int = TRAIN_EPOCHS, adversarial_epsilon: float | None = None,
                     adversarial_steps: int | None = None) -> DigitsTrainingResult:
    """Train a :class:`DigitsCNN` on the training part of the digits split, reproducibly from ``seed``.

    Adam (lr 1e-3), batch 64, cross-entropy, random shifts of up to one pixel as augmentation.
    With ``adversarial_epsilon`` (an L∞ radius in (0, 1] pixel units) each shifted batch is replaced by its
    untargeted PGD adversary of ``adversarial_steps`` steps (default 7) before the update (Madry et al.'s adversarial
    training, :func:`~isgame.scoring.classifiers.adversarial_training.pgd_linf`); seed 2 with ε = 0.1 and 7
    steps reproduces ``digits-robust``. Without it the random stream and the weights are those of before.
    Single-threaded with deterministic algorithms, so the same seed gives the same weights.
    """
    if epochs < 1:
        raise InvalidInputError(f"{parameter('epochs')} must be >= 1, got {epochs}")
    if adversarial_epsilon is not None:
        adversarial_epsilon = check_epsilon(adversarial_epsilon)
        adversarial_steps = ROBUST_TRAIN_STEPS if adversarial_steps is None else adversarial_steps
        if adversarial_steps < 1:
            raise InvalidInputError(f"{parameter('adversarial_steps')} must be >= 1, got {adversarial_steps}")
    split = digits_split()
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        network = DigitsCNN()
        optimiser = torch.optim.Adam(network.parameters(), lr=TRAIN_LEARNING_RATE)
        images, labels = split.train_images, split.train_labels
        network.train()
        for _ in range(epochs):
            order = torch.randperm(images.shape[0], generator=generator)
            for start in range(0, images.shape[0], TRAIN_BATCH_SIZE):
                index = order[start : start + TRAIN_BATCH_SIZE]
                batch = _random_shift(images[index], generator)
                if adversarial_epsilon is not None:
                    batch = pgd_linf(network, batch, labels[index], epsilon=adversarial_epsilon,
                                     steps=adversarial_steps, generator=generator)
                logits, _ = network(batch)
                loss = torch.nn.functional.cross_entropy(logits, labels[index])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        network.eval()
        accuracy = held_out_accuracy(network)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    return DigitsTrainingResult(network=network, seed=seed, epochs=epochs, held_out_accuracy=accuracy,
                                adversarial_epsilon=adversarial_epsilon,
                                adversarial_steps=None if adversarial_epsilon is None else adversarial_steps)


def _random_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each (1, 8, 8) image by -1, 0 or +1 pixel on each axis, filling with 0 (no ink)."""
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    offsets = torch.randint(0, 3, (images.shape[0], 2), generator=generator)
    return torch.stack([padded[i, :, dy : dy + 8, dx : dx + 8] for i, (dy, dx) in enumerate(offsets.tolist())])


def save_digits_network(result: DigitsTrainingResult, path: Path) -> None:
    """Write the network's weights as safetensors (atomically), with seed and accuracy as metadata."""
    from safetensors.torch import save

    from isgame.scoring.runtime.atomic_io import write_bytes_atomic

    state = {key: value.contiguous() for key, value in result.network.state_dict().items()}
    metadata = {key: str(value) for key, value in result.to_dict().items()}
    write_bytes_atomic(Path(path), save(state, metadata=metadata))
