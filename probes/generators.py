"""Sample generators for the probes: training-set replay and an honest PCA + KDE generator.

Every generator returns float32 images (M, C, H, W) in [0, 1], of its training images' (C, H, W), and is seeded.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import KernelDensity

from isgame.scoring.errors import InvalidInputError

KDE_PCA_COMPONENTS = 30
#: a training matrix of more values than this (N x C*H*W) is fitted in float32, so that e.g. 2000 images of
#: 3x299x299 (5.4e8 values) take 2 GB instead of 4; smaller ones (the digits' 1257 x 64) in float64
KDE_FLOAT32_ABOVE = 50_000_000
#: float32 samples are mapped back to pixels this many values at a time (bounds the temporary arrays)
KDE_CHUNK_VALUES = 1 << 24


def replay(train: torch.Tensor, *, n: int | None = None, seed: int = 0, resample: bool = False,
           pixel_noise: float = 0.0, flip_probability: float = 0.0) -> torch.Tensor:
    """The training set itself (N, C, H, W): all of it, or ``n`` rows drawn with repetition.

    Optionally each image is mirrored left-right with probability ``flip_probability`` in [0, 1] (as
    torchvision's ``RandomHorizontalFlip``) and then gets Gaussian pixel noise of std ``pixel_noise``
    (pixel units, clipped to [0, 1]). Seeded.
    """
    if not 0.0 <= flip_probability <= 1.0:
        raise InvalidInputError(f"flip probability must be in [0, 1], got {flip_probability}")
    generator = torch.Generator().manual_seed(seed)
    if resample:
        images = train[torch.randint(0, train.shape[0], (n or train.shape[0],), generator=generator)]
    else:
        images = train if n is None else train[:n]
    if flip_probability > 0:
        flipped = torch.rand(images.shape[0], generator=generator) < flip_probability
        images = torch.where(flipped.view(-1, *([1] * (images.ndim - 1))), images.flip(-1), images)
    if pixel_noise > 0:
        images = (images + pixel_noise * torch.randn(images.shape, generator=generator)).clamp(0, 1)
    return images.clone()


class KdeGenerator:
    """Kernel density estimate in PCA space, fitted on training images ``train`` (N, C, H, W) in [0, 1].

    ``PCA(n_components)`` then ``KernelDensity(bandwidth)`` (Gaussian kernel) in the PCA
    coordinates, which keep pixel-space distances along the kept components. A sample is a
    training point's coordinates plus N(0, bandwidth^2 I) (bandwidth in pixel units), mapped back
    to pixels and clipped to [0, 1]. Bandwidth -> 0 copies (PCA reconstructions of) training
    images; a large bandwidth gives blurry novel ones. The bandwidth is the memorisation knob.

    Memory: the PCA is fitted in float64 when the training matrix holds at most
    :data:`KDE_FLOAT32_ABOVE` values (the digits), else in float32, and float32
    samples are mapped back to pixels :data:`KDE_CHUNK_VALUES` values at a time, so a 299 px domain
    needs about three copies of its training matrix in float32, not float64.
    """

    def __init__(self, train: torch.Tensor, *, n_components: int = KDE_PCA_COMPONENTS, seed: int = 0) -> None:
        flat = train.reshape(train.shape[0], -1)
        # float64 for small sets keeps the digits' numbers; float32 halves the memory of large images.
        flat = (flat.float() if flat.numel() > KDE_FLOAT32_ABOVE else flat.double()).numpy()
        if not 1 <= n_components <= flat.shape[1]:
            raise InvalidInputError(f"n_components must be in 1..{flat.shape[1]}, got {n_components}")
        self.shape = tuple(train.shape[1:])
        self.dtype = flat.dtype
        self.pca = PCA(n_components=n_components, random_state=seed).fit(flat)
        self.coordinates = self.pca.transform(flat)

    @property
    def explained_variance(self) -> float:
        return float(self.pca.explained_variance_ratio_.sum())

    def sample(self, n: int, *, bandwidth: float, seed: int = 0) -> torch.Tensor:
        """``n`` images (n, C, H, W) float32 in [0, 1]; ``bandwidth`` > 0 in pixel units."""
        if bandwidth <= 0:
            raise InvalidInputError(f"bandwidth must be > 0, got {bandwidth}")
        kde = KernelDensity(kernel="gaussian", bandwidth=bandwidth).fit(self.coordinates)
        coordinates = kde.sample(n, random_state=seed)
        if self.dtype == np.float64:
            pixels = np.clip(self.pca.inverse_transform(coordinates), 0.0, 1.0)
            return torch.from_numpy(pixels.astype(np.float32)).reshape(n, *self.shape)
        out = torch.empty((n, *self.shape), dtype=torch.float32)
        rows = max(1, KDE_CHUNK_VALUES // math.prod(self.shape))
        for first in range(0, n, rows):
            # float32 coordinates keep inverse_transform in float32 (float64 would double the temporary).
            pixels = self.pca.inverse_transform(coordinates[first:first + rows].astype(np.float32))
            np.clip(pixels, 0.0, 1.0, out=pixels)
            out[first:first + rows] = torch.from_numpy(pixels.astype(np.float32, copy=False)).reshape(-1, *self.shape)
        return out
