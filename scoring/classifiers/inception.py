"""torchvision's Inception v3 (1000 ImageNet classes), loaded only from a local weights file.

Input: any (N, C, H, W) in [0, 1]; grey is replicated to RGB, the image is resized to 299x299
(bilinear, antialiased by default) and normalised with ImageNet's mean and std, as torchvision
documents for these weights (``transform_input=True``, as ``inception_v3(weights=...)`` sets).
Features: the 2048-d pooled activations before ``fc``; logits: ``fc`` of them.

Weights come from ``--weights PATH`` or a torch hub cache
(``<torch.hub.get_dir()>/checkpoints/inception_v3_google-0cc3c7bd.pth``, then the other folders of
:func:`weights_registry.cache_dirs`); a cached file must hash to the published SHA-256. Loading never
downloads (only ``isgame weights fetch`` does) and there is no fallback to random weights: a missing
file is an error that names it and the fetch command.
Files load with ``torch.load(weights_only=True)`` (or safetensors), never as arbitrary pickles.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.classifiers.batch_norm_folding import fold_batch_norms
from isgame.scoring.classifiers.weights_registry import resolve_classifier_weights
from isgame.scoring.errors import InvalidInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torchvision_inception_weights_url() -> str:
    from torchvision.models import Inception_V3_Weights

    return Inception_V3_Weights.IMAGENET1K_V1.url


def default_inception_weights_path() -> Path:
    """Where torchvision would cache the weights: the torch hub checkpoints folder."""
    return Path(torch.hub.get_dir()) / "checkpoints" / torchvision_inception_weights_url().rsplit("/", 1)[1]


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch file, refusing anything that is not plain tensors."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise InvalidInputError(f"{path} is not a valid safetensors file ({error})") from None
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of foreign files; the error below says all the user needs.
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InvalidInputError(
            f"{path} is not a plain tensor file ({first[:160]}); weights are loaded with weights_only=True, "
            "so pickled objects are refused; save model.state_dict() with torch.save or safetensors"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InvalidInputError(f"{path} does not hold a state dict of tensors; save model.state_dict()")
    return state


class TorchvisionInceptionV3(ImageClassifier):
    """Inception v3 behind the :class:`ImageClassifier` interface (K = 1000, D = 2048, 299x299 RGB)."""

    num_classes = 1000
    feature_dim = 2048
    input_channels = 3
    input_size = (299, 299)

    def __init__(self, network: nn.Module, *, weights_sha256: str = "", **preprocessing) -> None:
        super().__init__(**preprocessing)
        self.name = "inception-v3"
        self.fc = network.fc
        network.fc = nn.Identity()
        self.network = network
        self.weights_sha256 = weights_sha256
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.train(False)
        fold_batch_norms(self.network)
        for weight in self.parameters():
            weight.requires_grad_(False)
        # NHWC convolutions run 1.4x faster on the CPU (oneDNN's native layout); outputs agree within 1e-6 relative.
        self.network.to(memory_format=torch.channels_last)

    def _logits_and_features(self, model_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.network(((model_input - self.mean) / self.std).contiguous(memory_format=torch.channels_last))
        return self.fc(features), features

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "weights_sha256": self.weights_sha256, "batch_norm": "folded into the convolutions"}


def load_torchvision_inception(weights: Path | None = None, **preprocessing) -> TorchvisionInceptionV3:
    """Build Inception v3 and load its weights from ``weights`` or the torch hub caches (never downloads)."""
    from torchvision.models import inception_v3

    path, digest = resolve_classifier_weights("inception-v3", weights, what="Inception v3")
    state = load_state_dict_file(path)
    network = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise InvalidInputError(
            f"{path} does not hold torchvision Inception v3 weights ({str(error).splitlines()[0][:160]})"
        ) from None
    network.aux_logits = False
    network.AuxLogits = None
    return TorchvisionInceptionV3(network.eval(), weights_sha256=digest, **preprocessing)
