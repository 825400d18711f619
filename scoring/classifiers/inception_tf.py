"""The TF-ported Inception v3 that the original IS code and torch-fidelity use (``inception-v3-tf``).

1008 logits without bias ("logits_unbiased"), TF1-style bilinear resize to 299x299 and
normalisation (x - 128) / 128 on 0..255 values, exactly as torch-fidelity's
``FeatureExtractorInceptionV3``. Needs the optional extra: ``pip install isgame[fidelity]``.

Two differences from calling torch-fidelity directly, both deliberate:

* torch-fidelity loads weights with ``torch.load(weights_only=False)``, which can run code from a
  pickle. Here the file is first loaded with ``weights_only=True``, and only the validated
  tensors are handed to torch-fidelity (re-saved to a private temporary file).
* torch-fidelity's forward requires uint8 input, which blocks gradients. Here the same layers
  run on float input (x * 255 instead of a uint8 cast), so the attacks can differentiate
  through the TF1 resize. On uint8-valued input the logits agree with torch-fidelity's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from isgame.scoring.classifiers.base import ImageClassifier, to_channels
from isgame.scoring.classifiers.batch_norm_folding import fold_batch_norms
from isgame.scoring.classifiers.inception import load_state_dict_file
from isgame.scoring.classifiers.weights_registry import resolve_classifier_weights
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.validation import check_images

WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"


class TfInceptionV3(ImageClassifier):
    """torch-fidelity's Inception v3 behind the :class:`ImageClassifier` interface (K = 1008, D = 2048)."""

    num_classes = 1008
    feature_dim = 2048
    input_channels = 3
    input_size = (299, 299)

    def __init__(self, extractor: torch.nn.Module, *, weights_sha256: str = "") -> None:
        super().__init__(interpolation="bilinear", antialias=False)
        self.name = "inception-v3-tf"
        self.extractor = extractor
        self.weights_sha256 = weights_sha256
        self.train(False)
        fold_batch_norms(self.extractor)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        # NHWC convolutions run 1.4x faster on the CPU (oneDNN's native layout); outputs agree within 1e-6 relative.
        self.extractor.to(memory_format=torch.channels_last)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """RGB float in [0, 1] at the input's own size; the TF1 resize happens in the network, as in the graph."""
        images = check_images(images).float()
        return to_channels(images, 3)

    def _logits_and_features(self, model_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        e = self.extractor
        x = interpolate_bilinear_2d_like_tensorflow1x(model_input * 255, size=self.input_size, align_corners=False)
        x = ((x - 128) / 128).contiguous(memory_format=torch.channels_last)
        for layer in (e.Conv2d_1a_3x3, e.Conv2d_2a_3x3, e.Conv2d_2b_3x3, e.MaxPool_1, e.Conv2d_3b_1x1, e.Conv2d_4a_3x3,
                      e.MaxPool_2, e.Mixed_5b, e.Mixed_5c, e.Mixed_5d, e.Mixed_6a, e.Mixed_6b, e.Mixed_6c, e.Mixed_6d,
                      e.Mixed_6e, e.Mixed_7a, e.Mixed_7b, e.Mixed_7c, e.AvgPool):
            x = layer(x)
        features = torch.flatten(x, 1)
        return features.mm(e.fc.weight.T), features

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "weights_sha256": self.weights_sha256, "resize": "TF1-style bilinear",
                "normalisation": "(x - 128) / 128", "logits": "unbiased (no fc bias)",
                "batch_norm": "folded into the convolutions"}


def load_tf_inception(weights: Path | None = None) -> TfInceptionV3:
    """Load ``inception-v3-tf`` from ``weights`` or the torch hub caches torch-fidelity and pytorch-fid download
    into (a cached file must hash to the published SHA-256); never downloads."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise InvalidInputError("inception-v3-tf needs torch-fidelity: pip install 'isgame[fidelity]'") from None
    path, digest = resolve_classifier_weights("inception-v3-tf", weights, what="TF Inception")
    state = load_state_dict_file(path)
    with tempfile.TemporaryDirectory() as folder:
        # Validated tensors only: torch-fidelity will torch.load this file with weights_only=False.
        trusted = Path(folder) / "weights.pth"
        torch.save(state, trusted)
        # Freed before torch-fidelity loads its own copy: held (or cloned) here, it raised the peak RSS of loading
        # by one copy of the weights (95 MiB) over torch-fidelity's own.
        del state
        try:
            extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"],
                                                    feature_extractor_weights_path=str(trusted))
        except RuntimeError as error:
            raise InvalidInputError(
                f"{path} does not hold torch-fidelity Inception weights ({str(error).splitlines()[0][:160]})") from None
    return TfInceptionV3(extractor, weights_sha256=digest)
