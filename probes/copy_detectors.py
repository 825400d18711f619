"""Detectors of training-set copies: nearest-training distances, the C_T test, authenticity.

All take flat arrays: ``train`` (N_train, D), ``held_out`` (N_test, D), ``generated`` (M, D),
in the same space (pixels or classifier features); distances are Euclidean in that space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from isgame.scoring.errors import InvalidInputError


def flatten_images(images: torch.Tensor) -> np.ndarray:
    """Images (N, C, H, W) as float64 pixel vectors (N, C*H*W), the pixel space of the detectors."""
    return images.reshape(images.shape[0], -1).double().numpy()


def _check_pair(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    for array, name in zip((a, b), names):
        if array.ndim != 2 or array.shape[0] == 0:
            raise InvalidInputError(f"{name}: expected a non-empty (N, D) array, got shape {array.shape}")
    if a.shape[1] != b.shape[1]:
        raise InvalidInputError(f"{names[0]} has D = {a.shape[1]} but {names[1]} has D = {b.shape[1]}; use one space for both")


def nearest_distances(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Distance of each query (M, D) to its nearest row of ``reference`` (N, D); shape (M,)."""
    _check_pair(reference, queries, ("reference", "queries"))
    distances, _ = NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(queries)
    return distances[:, 0]


def leave_one_out_nearest_distances(reference: np.ndarray) -> np.ndarray:
    """Distance of each row of ``reference`` (N, D) to its nearest *other* row; shape (N,)."""
    if reference.shape[0] < 2:
        raise InvalidInputError("need at least two reference rows for leave-one-out distances")
    distances, _ = NearestNeighbors(n_neighbors=2).fit(reference).kneighbors(reference)
    return distances[:, 1]


@dataclass(frozen=True)
class NearestTrainingResult:
    """Nearest-training distances of generated samples against those of held-out real samples."""

    median_generated: float
    median_held_out: float
    median_ratio: float
    near_copy_threshold: float
    near_copy_fraction: float

    def to_dict(self) -> dict[str, float]:
        return dict(vars(self))


def nearest_training_test(train: np.ndarray, held_out: np.ndarray, generated: np.ndarray,
                          *, copy_quantile: float = 0.01) -> NearestTrainingResult:
    """Compare generated and held-out distances to the training set.

    A generated sample is a near-copy when it is closer to the training set than the
    ``copy_quantile`` quantile of held-out samples (1% of real unseen data is that close).
    A median ratio well below 1 means samples sit closer to the training set than real data does.
    """
    d_generated = nearest_distances(train, generated)
    d_held_out = nearest_distances(train, held_out)
    threshold = float(np.quantile(d_held_out, copy_quantile))
    median_held_out = float(np.median(d_held_out))
    median_generated = float(np.median(d_generated))
    return NearestTrainingResult(
        median_generated=median_generated,
        median_held_out=median_held_out,
        median_ratio=median_generated / median_held_out if median_held_out > 0 else math.inf,
        near_copy_threshold=threshold,
        near_copy_fraction=float(np.mean(d_generated <= threshold)),
    )


@dataclass(frozen=True)
class DataCopyingResult:
    """The C_T statistic and its per-cell z-scores."""

    ct_statistic: float
    cells: int
    cells_used: int
    cell_z_scores: list[float]
    cell_weights: list[float]

    def to_dict(self) -> dict[str, object]:
        return dict(vars(self))


def mann_whitney_z(generated: np.ndarray, held_out: np.ndarray) -> float:
    """z-score of the Mann–Whitney U of ``generated`` vs ``held_out`` values (no tie correction).

    U counts pairs with generated > held_out (ties 1/2); z < 0 when generated values are smaller.
    """
    m, n = generated.size, held_out.size
    u = stats.mannwhitneyu(generated, held_out, alternative="two-sided", method="asymptotic").statistic
    return float((u - m * n / 2) / math.sqrt(m * n * (m + n + 1) / 12))


def data_copying_test(train: np.ndarray, held_out: np.ndarray, generated: np.ndarray, *, cells: int = 10,
                      min_generated_per_cell: int = 20, seed: int = 0) -> DataCopyingResult:
    """C_T of Meehan, Chaudhuri & Dasgupta (AISTATS 2020).

    k-means (``cells`` cells, seeded) is fitted on the training set; every held-out and generated
    sample falls in the cell of its nearest centre. In each cell, the generated samples'
    nearest-training distances are compared with the held-out samples' by a Mann–Whitney z-score.
    C_T is the average z over cells holding at least ``min_generated_per_cell`` generated samples
    (and at least one held-out sample), weighted by each cell's share of held-out samples.
    C_T well below 0 flags copying; near 0 is healthy; above 0 means under-fitting.
    """
    _check_pair(train, generated, ("train", "generated"))
    _check_pair(train, held_out, ("train", "held_out"))
    if cells < 1 or cells > train.shape[0]:
        raise InvalidInputError(f"cells must be in 1..{train.shape[0]}, got {cells}")
    kmeans = KMeans(n_clusters=cells, n_init=10, random_state=seed).fit(train)
    cell_of_held_out = kmeans.predict(held_out)
    cell_of_generated = kmeans.predict(generated)
    d_held_out = nearest_distances(train, held_out)
    d_generated = nearest_distances(train, generated)
    z_scores, weights = [], []
    for cell in range(cells):
        in_held_out = cell_of_held_out == cell
        in_generated = cell_of_generated == cell
        if in_generated.sum() < min_generated_per_cell or in_held_out.sum() == 0:
            continue
        z_scores.append(mann_whitney_z(d_generated[in_generated], d_held_out[in_held_out]))
        weights.append(float(in_held_out.mean()))
    if not z_scores:
        raise InvalidInputError(
            f"no cell holds {min_generated_per_cell} generated samples; pass more samples or fewer cells"
        )
    ct = float(np.average(z_scores, weights=weights))
    return DataCopyingResult(ct_statistic=ct, cells=cells, cells_used=len(z_scores), cell_z_scores=z_scores,
                             cell_weights=weights)


def authenticity(real: np.ndarray, generated: np.ndarray) -> float:
    """Fraction of authentic generated samples (Alaa et al., ICML 2022), in [0, 1].

    A sample g is authentic iff its distance to its nearest real sample r* exceeds the distance
    from r* to r*'s own nearest real neighbour (excluding r* itself). Exact copies score 0.
    """
    _check_pair(real, generated, ("real", "generated"))
    own = leave_one_out_nearest_distances(real)
    distances, index = NearestNeighbors(n_neighbors=1).fit(real).kneighbors(generated)
    return float(np.mean(distances[:, 0] > own[index[:, 0]]))
