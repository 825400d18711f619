"""Detectors of training-set copies: nearest-training distances, the C_T test, authenticity.

All take flat arrays: ``train`` (N_train, D), ``held_out`` (N_test, D), ``generated`` (M, D),
in the same space (pixels or classifier features); distances are Euclidean in that space.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.results import FieldsAsDict


def flatten_images(images: torch.Tensor) -> np.ndarray:
    """Images (N, C, H, W) as float64 pixel vectors (N, C*H*W), the pixel space of the detectors."""
    return images.reshape(images.shape[0], -1).double().numpy()


def _check_pair(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    for array, name in zip((a, b), names):
        if array.ndim != 2 or array.shape[0] == 0:
            raise InvalidInputError(f"{name}: expected a non-empty (N, D) array, got shape {array.shape}")
    if a.shape[1] != b.shape[1]:
        raise InvalidInputError(f"{names[0]} has D = {a.shape[1]} but {names[1]} has D = {b.shape[1]}; use one space for both")


#: the training sides of C_T (:class:`CopyingPartition`) of recent training sets: the memorisation probe and the
#: matrix test many sample sets against one training set, and the fit (10 seeded restarts) is the test's dominant cost
_PARTITIONS: OrderedDict[tuple, "CopyingPartition"] = OrderedDict()
_PARTITIONS_KEPT = 4


def training_partition(train: np.ndarray, cells: int, seed: int) -> KMeans:
    """k-means with ``cells`` cells (10 seeded restarts) fitted on ``train`` (N, D); a fit of the same rows, cells
    and seed is reused (keyed by a hash of the bytes), so the result is the same as fitting again."""
    return copying_partition(train, cells, seed).kmeans


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
class NearestTrainingResult(FieldsAsDict):
    """Nearest-training distances of generated samples against those of held-out real samples."""

    median_generated: float
    median_held_out: float
    median_ratio: float
    near_copy_threshold: float
    near_copy_fraction: float


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


#: |C_T| below this is "indistinguishable from held-out data": C_T is a weighted mean of z-scores, N(0, s^2)
#: with s <= 1 under the null, so |C_T| >= 3 has two-sided probability below 0.3%.
CT_BAND = 3.0
#: the authors' tau * m: a cell enters C_T when it holds more than this many generated samples
CT_GENERATED_PER_CELL = 20
#: C_T's k-means cells (the authors' MNIST setting), and the samples a cell needs on average to enter C_T
CT_CELLS, CT_SAMPLES_PER_CELL = 10, CT_GENERATED_PER_CELL + 1


def ct_verdict(ct: float, band: float = CT_BAND) -> str:
    """C_T is two-sided: ``copying`` below -band, ``underfitting`` above +band, else ``like held-out data``."""
    return "copying" if ct <= -band else "underfitting" if ct >= band else "like held-out data"


@dataclass(frozen=True)
class DataCopyingResult(FieldsAsDict):
    """The C_T statistic and its per-cell z-scores.

    ``cells_without_held_out`` lists the cells (k-means labels) that hold no held-out sample: their
    weight P_n(cell) is 0, so they cannot enter C_T (the authors' code refuses such partitions);
    ``generated_in_cells_without_held_out`` is the share of generated samples there, which C_T cannot see.
    """

    ct_statistic: float
    cells: int
    cells_used: int
    cell_z_scores: list[float]
    cell_weights: list[float]
    cell_labels: list[int] = field(default_factory=list)
    cells_without_held_out: list[int] = field(default_factory=list)
    generated_in_cells_without_held_out: float = 0.0
    generated_per_cell_above: int = CT_GENERATED_PER_CELL
    band: float = CT_BAND

    @property
    def verdict(self) -> str:
        return ct_verdict(self.ct_statistic, self.band)

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "verdict": self.verdict,
                "rule": f"two-sided z: C_T <= -{self.band:g} copying, C_T >= +{self.band:g} underfitting, "
                        f"|C_T| < {self.band:g} like held-out data; cells with more than "
                        f"{self.generated_per_cell_above} generated samples, weighted by their share of held-out samples"}


def mann_whitney_z(generated: np.ndarray, held_out: np.ndarray) -> float:
    """Meehan et al.'s z-score of the Mann–Whitney U of ``generated`` vs ``held_out`` values.

    U counts pairs with generated > held_out (ties 1/2); z = (U - (m n / 2 - 0.5)) / sqrt(m n (m + n + 1) / 12),
    their mean with its -0.5 continuity correction and no tie correction. z < 0 when generated values are smaller.
    """
    m, n = generated.size, held_out.size
    u = mann_whitney_u(generated, held_out)
    return float((u - (m * n / 2 - 0.5)) / math.sqrt(m * n * (m + n + 1) / 12))


def mann_whitney_u(x: np.ndarray, y: np.ndarray) -> float:
    """U of ``x`` against ``y``: the pairs with x > y, ties counted 1/2, from average ranks (the statistic
    ``scipy.stats.mannwhitneyu`` returns for its first sample), without scipy's per-call overhead."""
    combined = np.concatenate([x, y])
    order = np.argsort(combined, kind="mergesort")
    _, first, counts = np.unique(combined[order], return_index=True, return_counts=True)
    ranks = np.empty(combined.size)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)  # 1-based ranks, ties at their average
    return float(ranks[: x.size].sum() - x.size * (x.size + 1) / 2)


def data_copying_test(train: np.ndarray, held_out: np.ndarray, generated: np.ndarray, *, cells: int = 10,
                      generated_per_cell_above: int = CT_GENERATED_PER_CELL, min_generated_per_cell: int | None = None,
                      seed: int = 0) -> DataCopyingResult:
    """C_T of Meehan, Chaudhuri & Dasgupta, "A Non-Parametric Test to Detect Data-Copying in Generative
    Models" (AISTATS 2020), as their code computes it (github.com/casey-meehan/data-copying,
    ``data_copying_tests.py``: ``Zu``, ``Zu_cells``, ``C_T``; the k-means partition as in their MNIST tests).

    k-means (``cells`` cells, seeded) is fitted on the training set; every training, held-out and
    generated sample falls in the cell of its nearest centre. In each cell, the distances of its
    generated samples to their nearest *training point of that cell* are compared with those of its
    held-out samples by :func:`mann_whitney_z`. A cell enters C_T when it holds more than
    ``generated_per_cell_above`` generated samples (their tau * m = 20); C_T is the average of those
    cells' z, weighted by each cell's share of the held-out samples. ``min_generated_per_cell`` (a cell needs at
    least that many) is the deprecated spelling, removed in isgame 0.4.

    C_T is two-sided: well below 0 means the samples sit closer to the training set than unseen real
    data does (copying); well above 0 means farther (underfitting); real held-out data scores near 0.
    :attr:`DataCopyingResult.verdict` reads it with the band |C_T| < 3 (:data:`CT_BAND`).
    Cells without held-out samples cannot enter (weight 0) and are listed in the result.
    """
    _check_pair(train, generated, ("train", "generated"))
    _check_pair(train, held_out, ("train", "held_out"))
    if cells < 1 or cells > train.shape[0]:
        raise InvalidInputError(f"{parameter('cells')} must be in 1..{train.shape[0]} (the training rows), got {cells}")
    if min_generated_per_cell is not None:
        from isgame._moved import warn_renamed

        warn_renamed("min_generated_per_cell=m", "generated_per_cell_above=m - 1")
        generated_per_cell_above = min_generated_per_cell - 1
    partition = copying_partition(train, cells, seed)
    return ct_from_placements(partition, *partition.place(held_out), *partition.place(generated),
                              generated_per_cell_above=generated_per_cell_above)


@dataclass(frozen=True)
class CopyingPartition:
    """The training side of C_T, computed once: k-means cells of the training set and, per cell, a nearest-neighbour
    index of its training points. :meth:`place` puts any rows in cells with their distance to that cell's nearest
    training point, so C_T of many sample sets (or of many splits of one held-out set) costs no refit."""

    kmeans: KMeans
    cells: int
    neighbours: dict[int, NearestNeighbors]

    def place(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cell (M,), distance (M,)) of (M, D) ``points``: the cell of the nearest centre and the distance to the
        nearest training point of that cell."""
        labels = self.kmeans.predict(points)
        distances = np.full(points.shape[0], np.nan)
        for cell in np.unique(labels):
            members = labels == cell
            if cell not in self.neighbours:
                raise InvalidInputError(f"k-means cell {cell} holds no training point; pass fewer k-means cells")
            distances[members] = self.neighbours[cell].kneighbors(points[members])[0][:, 0]
        return labels, distances


def copying_partition(train: np.ndarray, cells: int, seed: int) -> "CopyingPartition":
    """:class:`CopyingPartition` of ``train`` (N, D) with ``cells`` seeded k-means cells (10 restarts); one of the
    same rows, cells and seed is reused (keyed by a hash of the bytes), so the result is the same as fitting again."""
    rows = np.ascontiguousarray(train)
    key = (hashlib.blake2b(rows.tobytes(), digest_size=16).digest(), rows.shape, str(rows.dtype), cells, seed)
    if key in _PARTITIONS:
        _PARTITIONS.move_to_end(key)
        return _PARTITIONS[key]
    kmeans = KMeans(n_clusters=cells, n_init=10, random_state=seed).fit(rows)
    labels = kmeans.predict(rows)
    neighbours = {int(cell): NearestNeighbors(n_neighbors=1).fit(rows[labels == cell]) for cell in np.unique(labels)}
    _PARTITIONS[key] = CopyingPartition(kmeans=kmeans, cells=cells, neighbours=neighbours)
    while len(_PARTITIONS) > _PARTITIONS_KEPT:
        _PARTITIONS.popitem(last=False)
    return _PARTITIONS[key]


def ct_from_placements(partition: CopyingPartition, held_out_cells: np.ndarray, held_out_distances: np.ndarray,
                       generated_cells: np.ndarray, generated_distances: np.ndarray, *,
                       generated_per_cell_above: int = CT_GENERATED_PER_CELL) -> DataCopyingResult:
    """C_T from the held-out and generated rows' cells and nearest-training distances (:meth:`CopyingPartition.place`):
    per cell with more than ``generated_per_cell_above`` generated rows and a held-out row, the Mann-Whitney z of
    the two sets of distances, averaged with the cell's share of the held-out rows as weight."""
    z_scores, weights, labels, without_held_out = [], [], [], []
    for cell in range(partition.cells):
        in_held_out, in_generated = held_out_cells == cell, generated_cells == cell
        if not in_held_out.any():
            without_held_out.append(cell)
            continue
        if in_generated.sum() <= generated_per_cell_above:
            continue
        z_scores.append(mann_whitney_z(generated_distances[in_generated], held_out_distances[in_held_out]))
        weights.append(float(in_held_out.mean()))
        labels.append(cell)
    if not z_scores:
        raise InvalidInputError(
            f"no cell holds more than {generated_per_cell_above} generated samples and a held-out sample; "
            "pass more samples or fewer k-means cells"
        )
    ct = float(np.average(z_scores, weights=weights))
    hidden = float(np.isin(generated_cells, without_held_out).mean()) if without_held_out else 0.0
    return DataCopyingResult(ct_statistic=ct, cells=partition.cells, cells_used=len(z_scores), cell_z_scores=z_scores,
                             cell_weights=weights, cell_labels=labels, cells_without_held_out=without_held_out,
                             generated_in_cells_without_held_out=hidden,
                             generated_per_cell_above=generated_per_cell_above)


def authenticity(real: np.ndarray, generated: np.ndarray) -> float:
    """Fraction of authentic generated samples (Alaa et al., ICML 2022), in [0, 1].

    A sample g is authentic iff its distance to its nearest real sample r* exceeds the distance
    from r* to r*'s own nearest real neighbour (excluding r* itself). Exact copies score 0.
    """
    return float(np.mean(authentic_flags(real, generated)))


def authentic_flags(real: np.ndarray, generated: np.ndarray, *, own_distances: np.ndarray | None = None) -> np.ndarray:
    """Per generated sample (M,) bool: authentic as :func:`authenticity` defines it. ``own_distances`` (N,), the
    real rows' leave-one-out nearest distances, may be passed when they are reused across calls."""
    _check_pair(real, generated, ("real", "generated"))
    own = leave_one_out_nearest_distances(real) if own_distances is None else own_distances
    distances, index = NearestNeighbors(n_neighbors=1).fit(real).kneighbors(generated)
    return distances[:, 0] > own[index[:, 0]]


def ct_cells(smallest_set: int, *, fixed: int | None = None) -> int:
    """C_T's k-means cells: ``fixed`` where the domain fixes them (the digits: 10), else 10; but when the smallest
    set scored (generated or held-out) has fewer than 21 samples a cell on average, as many as leave 21 a cell
    (at least 1), so some cell can enter C_T."""
    cells = CT_CELLS if fixed is None else fixed
    if smallest_set >= cells * CT_SAMPLES_PER_CELL:
        return cells
    return max(1, smallest_set // CT_SAMPLES_PER_CELL)
