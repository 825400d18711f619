"""The classifier interface every scorer, attack and probe relies on.

An :class:`ImageClassifier` is an ``nn.Module`` that

* takes float images (N, C, H, W) in [0, 1] with C in {1, 3, 4} and any H, W;
* owns its preprocessing (channel conversion, resize, normalisation) in ``preprocess``;
* returns logits (N, K) from ``forward`` and penultimate activations (N, D) from ``features``;
* declares ``num_classes`` (K), ``feature_dim`` (D), ``input_channels`` and ``input_size``;
* is locked in eval mode: ``train(True)`` is ignored, as in torchmetrics' feature extractors;
* runs its network on ``device`` (:meth:`ImageClassifier.to_device`) while taking and returning
  CPU tensors, so accumulators, attacks and metrics stay device-agnostic; gradients flow through
  the transfers.
"""

from __future__ import annotations

import torch
from torch import nn

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.validation import check_images

#: ITU-R BT.601 luma weights, the ones PIL's ``convert("L")`` uses.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")

#: Autocast precisions of :meth:`ImageClassifier.set_precision`; fp32 runs without autocast.
PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

#: Input values (C x H x W) a default batch may hold: 256 images of 8 x 8 digits, 16 at 3 x 299 x 299.
#: Activation memory grows with the input, so a batch of large images stays near 1 GB instead of 2.4 GB.
BATCH_INPUT_BUDGET = 8_000_000
MAX_DEFAULT_BATCH = 256


def default_batch_size(input_channels: int, input_size: tuple[int, int]) -> int:
    """Images per batch for a network input of ``input_channels`` x ``input_size``: the largest power of two
    whose batch holds at most :data:`BATCH_INPUT_BUDGET` input values, between 1 and 256."""
    per_image = max(1, input_channels * input_size[0] * input_size[1])
    size = 1
    while size * 2 <= MAX_DEFAULT_BATCH and size * 2 * per_image <= BATCH_INPUT_BUDGET:
        size *= 2
    return size


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert (N, C, H, W) images with C in {1, 3, 4} to ``channels`` in {1, 3}.

    RGBA is composited over black (transparent = no ink); RGB to grey uses BT.601 luma.
    """
    if images.shape[1] == 4:
        images = images[:, :3] * images[:, 3:4]
    if images.shape[1] == channels:
        return images
    if channels == 1:
        weights = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images * weights).sum(dim=1, keepdim=True)
    if channels == 3:
        return images.expand(-1, 3, -1, -1)
    raise InvalidInputError(f"cannot convert to {channels} channels; expected 1 or 3")


def resize(images: torch.Tensor, size: tuple[int, int], *, interpolation: str, antialias: bool) -> torch.Tensor:
    """Resize (N, C, H, W) images to ``size``; a no-op when they already have it.

    ``antialias`` applies to bilinear and bicubic only (torch ignores it for nearest).
    The result is clamped to [0, 1] because bicubic overshoots.
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if interpolation not in INTERPOLATIONS:
        raise InvalidInputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    if interpolation == "nearest":
        out = torch.nn.functional.interpolate(images, size=size, mode="nearest")
    else:
        out = torch.nn.functional.interpolate(images, size=size, mode=interpolation, antialias=antialias, align_corners=False)
    return out.clamp(0.0, 1.0)


class ImageClassifier(nn.Module):
    """Base class: subclasses set the declared attributes and implement ``_logits_and_features``."""

    name: str = "classifier"
    num_classes: int
    feature_dim: int
    input_channels: int
    input_size: tuple[int, int]

    def __init__(self, *, interpolation: str = "bilinear", antialias: bool = True) -> None:
        super().__init__()
        if interpolation not in INTERPOLATIONS:
            raise InvalidInputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
        self.interpolation = interpolation
        self.antialias = antialias
        self.precision = "fp32"

    @property
    def default_batch_size(self) -> int:
        """Images per batch when the caller names none; see :func:`default_batch_size`."""
        return default_batch_size(self.input_channels, self.input_size)

    def set_precision(self, precision: str) -> "ImageClassifier":
        """Run the network under autocast: ``fp32`` (none, the default), ``bf16`` (CPU or CUDA) or ``fp16`` (CUDA).

        Weights stay float32; outputs are returned as float32. Returns self.
        """
        self.check_precision(precision, self.device)
        self.precision = precision
        return self

    @staticmethod
    def check_precision(precision: str, device: torch.device) -> None:
        """Refuse, in one line, a precision that is unknown or that ``device`` cannot run."""
        if precision not in PRECISIONS:
            raise InvalidInputError(f"{parameter('precision', repr(precision))} is not a precision; use {', '.join(PRECISIONS)}")
        if precision == "fp16" and device.type != "cuda":
            raise InvalidInputError(f"{parameter('precision', 'fp16')} needs a CUDA device (the CPU has no fast fp16 "
                                    f"kernels); use {parameter('precision', 'bf16')} on the CPU, or {parameter('device', 'cuda')}")

    device: torch.device = torch.device("cpu")

    def to_device(self, device: "str | torch.device") -> "ImageClassifier":
        """Run the network on ``device`` (``cpu``, ``cuda``, ``cuda:1``, or ``auto``: this rank's GPU if any); returns self."""
        self.device = resolve_device(device)
        self.to(self.device)
        return self

    def train(self, mode: bool = True) -> "ImageClassifier":
        """Ignore ``mode``: a scoring classifier always stays in eval mode."""
        return super().train(False)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> the network's input (N, input_channels, *input_size), in the weights' dtype."""
        images = check_images(images)
        images = images.to(self.dtype)
        images = to_channels(images, self.input_channels)
        return resize(images, self.input_size, interpolation=self.interpolation, antialias=self.antialias)

    def _logits_and_features(self, model_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _run_network(self, model_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``_logits_and_features`` on ``self.device`` under the chosen precision, with CPU input and output."""
        if self.precision == "fp32":
            logits, features = self._logits_and_features(model_input.to(self.device))
        else:
            with torch.autocast(self.device.type, dtype=_AUTOCAST_DTYPES[self.precision]):
                logits, features = self._logits_and_features(model_input.to(self.device))
            logits, features = logits.float(), features.float()
        return logits.cpu(), features.cpu()

    def logits_from_model_input(self, model_input: torch.Tensor) -> torch.Tensor:
        """Logits of inputs already in the network's shape and range (``preprocess`` output).

        Attacks iterate on the preprocessed input, so they skip the per-call validation and resize.
        """
        return self._run_network(model_input)[0]

    def features_from_model_input(self, model_input: torch.Tensor) -> torch.Tensor:
        """Penultimate activations of inputs already in the network's shape and range; differentiable."""
        return self._run_network(model_input)[1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) of float images (N, C, H, W) in [0, 1]."""
        return self._run_network(self.preprocess(images))[0]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, feature_dim) of float images (N, C, H, W) in [0, 1]."""
        return self._run_network(self.preprocess(images))[1]

    def logits_and_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both outputs from one forward pass."""
        return self._run_network(self.preprocess(images))

    def describe(self) -> dict[str, object]:
        """What the classifier provides, for reports and cache keys."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "feature_dim": self.feature_dim,
            "input_channels": self.input_channels,
            "input_size": list(self.input_size),
            "interpolation": self.interpolation,
            "antialias": self.antialias,
            "dtype": str(self.dtype).replace("torch.", ""),
            "device": str(self.device),
            **({"precision": self.precision} if self.precision != "fp32" else {}),
        }


DEVICE_HELP = "cpu, cuda, cuda:N, or auto (this process's GPU when CUDA is available, else the CPU)"


def use_deterministic_cudnn() -> None:
    """Make cuDNN pick deterministic, non-autotuned kernels for this process (no effect on the CPU).

    A process-wide setting, so the application chooses it: the command line calls it for every
    command, so that the same command gives the same numbers. Library calls leave it alone.
    """
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def resolve_device(device: "str | torch.device") -> torch.device:
    """A usable torch.device from ``--device``; ``auto`` is ``cuda:LOCAL_RANK`` with CUDA, else the CPU."""
    from isgame.scoring.runtime.distributed import local_device

    if isinstance(device, str) and device.strip().lower() == "auto":
        return local_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidInputError(f"{parameter('device', repr(device))} is not a device; use {DEVICE_HELP}") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError(f"{parameter('device', device)}: CUDA is not available on this machine; use {parameter('device', 'cpu')} or auto")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InvalidInputError(f"{parameter('device', device)}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                                    f"numbered from 0")
    elif resolved.type != "cpu":
        raise InvalidInputError(f"{parameter('device', device)}: only CPU and CUDA devices are supported; use {DEVICE_HELP}")
    return resolved


class ModelInputLogits(torch.nn.Module):
    """A classifier as foolbox sees it: preprocessed input (N, C, H, W) in [0, 1] -> logits (N, K)."""

    def __init__(self, classifier: ImageClassifier) -> None:
        super().__init__()
        # Not registered as a submodule: foolbox calls ``.to(device)`` on this wrapper, and the classifier's
        # weights must stay on the classifier's own device (it moves inputs there and logits back).
        self._classifier = (classifier,)

    def forward(self, model_input: torch.Tensor) -> torch.Tensor:
        return self._classifier[0].logits_from_model_input(model_input)


def foolbox_model(classifier: ImageClassifier):
    """``classifier`` as a ``foolbox.PyTorchModel`` over model inputs with bounds (0, 1), in eval mode.

    foolbox would otherwise move the model to cuda:0 whenever CUDA exists; the classifier keeps its own device.
    """
    import foolbox as fb

    return fb.PyTorchModel(ModelInputLogits(classifier).eval(), bounds=(0, 1), device=torch.device("cpu"))
