"""A tiny classifier factory for the ``module:function`` classifier spec."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 12), nn.ReLU())
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        features = self.features(x)
        return self.head(features), features


def tiny_classifier() -> nn.Module:
    return TinyNet()


# --- A second domain for the tests: "shapes", RGB 12x12 images of K = 5 classes, with a TorchScript classifier.

SHAPES_CLASSES = 5
SHAPES_SIZE = 12
SHAPES_COLOURS = ((1.0, 0.1, 0.1), (0.1, 1.0, 0.1), (0.2, 0.3, 1.0), (1.0, 1.0, 0.1), (1.0, 0.2, 1.0))


def shapes_images(n: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (n, 3, 12, 12) in [0, 1] and labels (n,): a 4x4 square of class c's colour at a random place
    on a dim noisy background; classes cycle, so the set is balanced (and stored in class-cycling order)."""
    generator = torch.Generator().manual_seed(seed)
    images = 0.15 * torch.rand((n, 3, SHAPES_SIZE, SHAPES_SIZE), generator=generator)
    labels = torch.arange(n) % SHAPES_CLASSES
    corners = torch.randint(0, SHAPES_SIZE - 4, (n, 2), generator=generator)
    for i in range(n):
        top, left = corners[i].tolist()
        colour = torch.tensor(SHAPES_COLOURS[int(labels[i])]).view(3, 1, 1)
        images[i, :, top:top + 4, left:left + 4] = colour * (0.8 + 0.2 * torch.rand(1, generator=generator))
    return images, labels


class ShapesNet(nn.Module):
    """A small CNN returning (logits (N, 5), features (N, 16))."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(16, SHAPES_CLASSES)

    def forward(self, x):
        features = self.body(x)
        return self.head(features), features


def train_shapes_network(seed: int = 0, epochs: int = 60) -> nn.Module:
    """ShapesNet fitted on 300 shapes images (full-batch Adam, seeded, about a second on 2 cores)."""
    torch.manual_seed(seed)
    images, labels = shapes_images(300, seed=seed + 100)
    network = ShapesNet()
    optimiser = torch.optim.Adam(network.parameters(), lr=0.02)
    for _ in range(epochs):
        loss = nn.functional.cross_entropy(network(images)[0], labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return network.eval()


def write_shapes_domain(folder, *, n_train: int = 120, n_real: int = 80) -> dict[str, str]:
    """Write the shapes domain into ``folder``: train.npy and real.npy (uint8, N x 12 x 12 x 3) and a TorchScript
    classifier; returns the specs: ``classifier``, ``train``, ``real`` and the ``accuracy`` on real."""
    from pathlib import Path

    import numpy as np

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specs = {}
    for part, n, seed in (("train", n_train, 1), ("real", n_real, 2)):
        images, labels = shapes_images(n, seed=seed)
        array = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        np.save(folder / f"{part}.npy", array)
        specs[part] = str(folder / f"{part}.npy")
        specs[f"{part}_labels"] = labels
    network = train_shapes_network()
    torch.jit.save(torch.jit.script(network), str(folder / "shapes.pt"))
    specs["classifier"] = f"torchscript:{folder / 'shapes.pt'}?size={SHAPES_SIZE}x{SHAPES_SIZE}"
    return specs


class LogitsOnly(nn.Module):
    """A network that returns its logits alone, no features (a user's TorchScript module often does)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network(x)[0]


def write_shapes_folders(folder, *, n_train: int = 150, n_real: int = 150) -> dict[str, str]:
    """The shapes domain as a user keeps it: PNGs in one subfolder per class (``train/class0/0003.png`` ...), so a
    folder read in sorted order is sorted by class, and the TorchScript classifier; returns the specs
    ``classifier``, ``train`` and ``real`` (folders) and the ``classes`` (K = 5)."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    folder = Path(folder)
    specs: dict[str, object] = {"classes": SHAPES_CLASSES}
    for part, n, seed in (("train", n_train, 1), ("real", n_real, 2)):
        images, labels = shapes_images(n, seed=seed)
        array = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for index, (image, label) in enumerate(zip(array, labels.tolist())):
            where = folder / part / f"class{label}"
            where.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(where / f"{index:04d}.png")
        specs[part] = str(folder / part)
    torch.jit.save(torch.jit.script(train_shapes_network()), str(folder / "shapes.pt"))
    specs["classifier"] = f"torchscript:{folder / 'shapes.pt'}?size={SHAPES_SIZE}x{SHAPES_SIZE}"
    return specs
