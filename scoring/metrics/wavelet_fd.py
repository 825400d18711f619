"""An encoder-free distance: the Fréchet distance between Haar wavelet-packet coefficients of two image sets.

After the Fréchet Wavelet Distance (Veeramacheneni, Wolter, Kuehne & Gall, "Fréchet Wavelet Distance: A
Domain-Agnostic Metric for Image Generation", ICLR 2025; reference code ``pytorchfwd`` 1.0.1,
``fwd.py`` ``compute_packet_statistics`` / ``_compute_avg_frechet_distance``). As there: a ``levels``-deep
2-D wavelet packet transform splits each (C, H, W) image into P = 4^levels packets of (C, H / 2^levels,
W / 2^levels) coefficients; each packet's coefficients, flattened, are one feature vector per image; the
distance is the mean over packets of the Fréchet distance between the two sets' Gaussian fits of that packet.

Differences from ``pytorchfwd`` (which pins scipy 1.11.1 and ptwt 0.1.8, so it is not a dependency): a plain
orthonormal Haar transform in numpy (the package's default wavelet is also Haar); no log scaling (its default);
each packet's Fréchet distance by isgame's eigenvalue route (:func:`isgame.scoring.metrics.fid.statistics_to_fid`)
rather than ``scipy.linalg.sqrtm``. No network is involved, so no classifier can be attacked through it.

Units: squared pixel units of [0, 1] images (the Haar transform is orthonormal, so energy is preserved).
Levels: by default the deepest of 1..4 that leaves packets of at least 2×2 pixels (8×8 digits: 2 levels,
16 packets of 4·C coefficients; 32×32: 4 levels); H and W must be divisible by 2^levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.fid import features_to_statistics, statistics_to_fid
from isgame.scoring.results import FieldsAsDict

MAX_LEVELS = 4


@dataclass(frozen=True)
class WaveletDistanceResult(FieldsAsDict):
    """Mean over ``packets`` of per-packet Fréchet distances (squared [0, 1] pixel units), >= 0."""

    distance: float
    levels: int
    packets: int
    packet_dim: int
    image_shape: tuple[int, int, int]

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "image_shape": list(self.image_shape), "wavelet": "haar (orthonormal), no log scaling"}


def haar_step(images: np.ndarray) -> np.ndarray:
    """One orthonormal 2-D Haar split of (..., H, W) arrays (H, W even) into (..., 4, H/2, W/2): LL, LH, HL, HH."""
    a, b = images[..., 0::2, 0::2], images[..., 0::2, 1::2]
    c, d = images[..., 1::2, 0::2], images[..., 1::2, 1::2]
    return np.stack([a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d], axis=-3) / 2.0


def inverse_haar_step(packets: np.ndarray) -> np.ndarray:
    """The inverse of :func:`haar_step`: (..., 4, h, w) to (..., 2h, 2w)."""
    ll, lh, hl, hh = (packets[..., i, :, :] for i in range(4))
    out = np.empty(packets.shape[:-3] + (2 * packets.shape[-2], 2 * packets.shape[-1]))
    out[..., 0::2, 0::2] = (ll + lh + hl + hh) / 2.0
    out[..., 0::2, 1::2] = (ll - lh + hl - hh) / 2.0
    out[..., 1::2, 0::2] = (ll + lh - hl - hh) / 2.0
    out[..., 1::2, 1::2] = (ll - lh - hl + hh) / 2.0
    return out


def haar_packets(images: np.ndarray, levels: int) -> np.ndarray:
    """Full Haar wavelet packet transform: (N, C, H, W) to (N, 4^levels, C, H/2^levels, W/2^levels), orthonormal."""
    packets = images[:, None]  # (N, 1, C, H, W): every packet is split again at each level
    for _ in range(levels):
        split = haar_step(packets)  # (N, P, C, 4, h, w)
        packets = np.moveaxis(split, 3, 2).reshape(split.shape[0], -1, *split.shape[2:3], *split.shape[4:])
    return packets


def inverse_haar_packets(packets: np.ndarray, levels: int) -> np.ndarray:
    """The inverse of :func:`haar_packets`: (N, 4^levels, C, h, w) back to (N, C, h·2^levels, w·2^levels)."""
    for _ in range(levels):
        parents = packets.shape[1] // 4
        grouped = packets.reshape(packets.shape[0], parents, 4, *packets.shape[2:])  # (N, P/4, 4, C, h, w)
        packets = inverse_haar_step(np.moveaxis(grouped, 2, 3))
    return packets[:, 0]


def default_levels(height: int, width: int) -> int:
    """The deepest level in 1..4 whose packets are at least 2×2 and that divides H and W; 0 if none."""
    best = 0
    for level in range(1, MAX_LEVELS + 1):
        size = 2**level
        if height % size == 0 and width % size == 0 and min(height, width) // size >= 2:
            best = level
    return best


def _as_images(images: object, name: str) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().cpu().double().numpy()
    array = np.asarray(images, dtype=np.float64)
    if array.ndim != 4 or array.shape[0] < 2:
        raise InvalidInputError(f"{name}: expected images of shape (N, C, H, W) with N >= 2, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{name}: images contain NaN or inf")
    return array


def packet_features(images: object, levels: int | None = None, *, name: str = "images") -> np.ndarray:
    """(N, P, C·h·w) Haar packet coefficients of (N, C, H, W) images; ``levels`` None: :func:`default_levels`."""
    array = _as_images(images, name)
    height, width = array.shape[2:]
    levels = default_levels(height, width) if levels is None else levels
    if levels < 1 or height % 2**levels or width % 2**levels:
        raise InvalidInputError(f"{name}: {height}x{width} images do not split into 2^{parameter('levels', levels)} "
                                "blocks; choose levels so that 2^levels divides H and W, or resize the images")
    packets = haar_packets(array, levels)
    return packets.reshape(packets.shape[0], packets.shape[1], -1)


def wavelet_frechet_distance(real: object, fake: object, *, levels: int | None = None) -> WaveletDistanceResult:
    """Mean over Haar packets of the Fréchet distance between real (N_1, C, H, W) and fake (N_2, C, H, W) images.

    Images are float arrays in [0, 1] of the same (C, H, W); N_1, N_2 >= 2. ``levels``: packet depth, None for
    :func:`default_levels`.
    """
    first, second = _as_images(real, "real"), _as_images(fake, "fake")
    if first.shape[1:] != second.shape[1:]:
        raise InvalidInputError(f"image shapes differ: real {first.shape[1:]}, fake {second.shape[1:]}; resize one set")
    levels = default_levels(*first.shape[2:]) if levels is None else levels
    real_packets = packet_features(first, levels, name="real")
    fake_packets = packet_features(second, levels, name="fake")
    distances = [statistics_to_fid(features_to_statistics(real_packets[:, p]), features_to_statistics(fake_packets[:, p]))
                 for p in range(real_packets.shape[1])]
    return WaveletDistanceResult(distance=float(np.mean(distances)), levels=levels, packets=real_packets.shape[1],
                                 packet_dim=real_packets.shape[2], image_shape=tuple(int(s) for s in first.shape[1:]))


#: images are average-pooled to at most this many pixels a side before the transform (8x8 digits unchanged)
WAVELET_IMAGE_SIZE = 32


def pooled_images(images):
    """(B, C, H, W) torch images average-pooled to at most :data:`WAVELET_IMAGE_SIZE` a side (unchanged when already
    that small): the wavelet distance of large images without holding their full-size packets."""
    import torch.nn.functional as F

    height, width = images.shape[-2:]
    if max(height, width) <= WAVELET_IMAGE_SIZE:
        return images
    return F.adaptive_avg_pool2d(images, (min(height, WAVELET_IMAGE_SIZE), min(width, WAVELET_IMAGE_SIZE)))
