"""Fréchet Inception Distance on classifier features, as a ladder of pure functions.

features (N, D) -> statistics (mean (D,), covariance (D, D), float64) -> distance.
FID = ||mu_1 - mu_2||^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^{1/2}).
The trace of the matrix square root takes the eigenvalue route in float64:
with A = S_1^{1/2} (from ``eigh``), S_1 S_2 is similar to the symmetric PSD A S_2 A, so
tr((S_1 S_2)^{1/2}) = sum sqrt(eigvalsh(A S_2 A)), negative round-off clipped to 0.
Covariances use ddof 1, as torch-fidelity and torchmetrics do.

When a side has N <= D rows its covariance is singular (rank N - 1) and the eigenvalue route
takes the square root of D - N + 1 round-off "zeros", each worth ~sqrt(eps) (measured: 2.5e-5
off on 50 digits features, D = 128). Such a side keeps ``root_rows`` R, (N - 1, D) with
R^T R = S: the Helmert contrasts of its rows over sqrt(N - 1) (row k = (x_1 + ... + x_k - k x_{k+1}) /
sqrt(k (k + 1)) of the centred rows; they span the centred rows' space, so R^T R = X_c^T X_c).
Then S_1 S_2 = R_1^T (R_1 R_2^T) R_2 has the nonzero eigenvalues of M M^T with
M = R_1 R_2^T = H_1 X_1c X_2c^T H_2^T / sqrt((N_1 - 1)(N_2 - 1)), so

    tr((S_1 S_2)^{1/2}) = sum of the singular values of M  (the nuclear norm),

an (N_1 - 1) x (N_2 - 1) problem, exact to round-off (singular values carry absolute error
eps ||M||, not sqrt(eps)). With roots on one side only, the nonzero eigenvalues of S_1 S_2 are those
of the symmetric (N_1 - 1)-square R_1 S_2 R_1^T.

Statistics travel in pytorch-fid's ``--save-stats`` format (an ``.npz`` with ``mu`` and ``sigma``;
openai's reference batches hold the same two keys among others): :func:`load_statistics`,
:func:`save_statistics`.

Caveat: FID is biased upward for finite N (two samples of the same distribution do not score 0);
compare FIDs only at equal N, or see :func:`fid_sample_size_curve`.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError, InvalidTypeError, SourceNotFoundError
from isgame.scoring.metrics.streaming import StreamingMetric

#: Rows of the covariance corrected at a time in :meth:`FeatureStatisticsAccumulator.compute`.
COVARIANCE_BLOCK_ROWS = 256


@dataclass(frozen=True)
class FeatureStatistics:
    """Mean (D,) and covariance (D, D), float64, of N feature vectors.

    ``n`` is None for statistics read from a file that does not record it. ``root_rows`` (N - 1, D),
    with ``root_rows.T @ root_rows == covariance``, is kept when N <= D, for the exact low-rank FID.
    """

    mean: np.ndarray
    covariance: np.ndarray
    n: int | None
    root_rows: np.ndarray | None = field(default=None, repr=False, compare=False)


def _as_features(features: object, name: str) -> np.ndarray:
    array = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise InvalidInputError(f"{name}: expected features of shape (N, D) with N >= 2, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{name}: features contain NaN or inf")
    return array


def covariance_root_rows(features: np.ndarray) -> np.ndarray:
    """(N - 1, D) rows R with R^T R = the ddof-1 covariance of (N, D) ``features``: Helmert contrasts / sqrt(N - 1).

    Row k (k = 1 .. N - 1) is (c_0 + ... + c_{k-1} - k c_k) / sqrt(k (k + 1)) of the centred rows c.
    """
    centred = features - features.mean(axis=0)
    n = centred.shape[0]
    k = np.arange(1, n, dtype=np.float64)[:, None]
    contrasts = (np.cumsum(centred, axis=0)[:-1] - k * centred[1:]) / np.sqrt(k * (k + 1))
    return contrasts / np.sqrt(n - 1)


def features_to_statistics(features: object, *, name: str = "features") -> FeatureStatistics:
    """Mean and covariance (ddof 1) of (N, D) features, in float64; with N <= D also the covariance's root rows."""
    array = _as_features(features, name)
    n, dim = array.shape
    return FeatureStatistics(mean=array.mean(axis=0), covariance=np.cov(array, rowvar=False, ddof=1).reshape(dim, dim),
                             n=n, root_rows=covariance_root_rows(array) if n <= dim else None)


def clip_round_off(values: np.ndarray, size: int) -> np.ndarray:
    """Eigenvalues of a symmetric PSD (size, size) matrix with each below its round-off level (size * eps * the
    largest, as ``numpy.linalg.matrix_rank`` reads a rank) set to 0: a dead unit's zero variance comes out as about
    +-1e-17, whose square root would add 3e-9 per unit to a trace of roots, where pytorch-fid's and torch-fidelity's
    matrix square roots give 0."""
    tolerance = size * np.finfo(np.float64).eps * float(np.abs(values).max(initial=0.0))
    return np.where(values > tolerance, values, 0.0)


def clipped_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """The eigenvalues of the symmetric PSD ``matrix`` (k, k), round-off clipped (:func:`clip_round_off`)."""
    return clip_round_off(np.linalg.eigvalsh((matrix + matrix.T) / 2), matrix.shape[0])


def symmetric_root(covariance: np.ndarray) -> np.ndarray:
    """S^{1/2} (D, D) of a symmetric PSD ``covariance`` by eigh, its round-off eigenvalues set to 0
    (:func:`clip_round_off`)."""
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.sqrt(clip_round_off(values, values.shape[0]))) @ vectors.T


def trace_sqrt_product(covariance_1: np.ndarray, covariance_2: np.ndarray) -> float:
    """tr((S_1 S_2)^{1/2}) for PSD S_1, S_2 (D, D), by the symmetric eigenvalue route."""
    root = symmetric_root(covariance_1)
    middle = root @ covariance_2 @ root
    return float(np.sqrt(clipped_eigenvalues(middle)).sum())


def trace_sqrt_product_low_rank(root_rows_1: np.ndarray, second: np.ndarray, *, second_is_root: bool) -> float:
    """tr((S_1 S_2)^{1/2}) with S_1 = R_1^T R_1 given by its (r_1, D) root rows.

    ``second_is_root``: ``second`` is R_2 (r_2, D) and the value is the nuclear norm of R_1 R_2^T;
    otherwise ``second`` is S_2 (D, D) and the value is sum sqrt(eigvalsh(R_1 S_2 R_1^T)).
    """
    if second_is_root:
        return float(np.linalg.svd(root_rows_1 @ second.T, compute_uv=False).sum())
    middle = root_rows_1 @ second @ root_rows_1.T
    return float(np.sqrt(clipped_eigenvalues(middle)).sum())


def statistics_trace_sqrt_product(first: FeatureStatistics, second: FeatureStatistics) -> float:
    """tr((S_1 S_2)^{1/2}) by the exact low-rank route where a side has root rows, else the eigenvalue route."""
    if first.root_rows is not None:
        second_is_root = second.root_rows is not None
        return trace_sqrt_product_low_rank(first.root_rows, second.root_rows if second_is_root else second.covariance,
                                           second_is_root=second_is_root)
    if second.root_rows is not None:
        return trace_sqrt_product_low_rank(second.root_rows, first.covariance, second_is_root=False)
    return trace_sqrt_product(first.covariance, second.covariance)


def statistics_to_fid(first: FeatureStatistics, second: FeatureStatistics) -> float:
    """FID between two sets of statistics; >= 0 (round-off clipped)."""
    if first.mean.shape != second.mean.shape:
        raise InvalidInputError(f"feature dimensions differ: {first.mean.shape[0]} vs {second.mean.shape[0]}; "
                                "compute both sides with the same classifier")
    difference = first.mean - second.mean
    value = difference @ difference + np.trace(first.covariance) + np.trace(second.covariance) - 2 * (
        statistics_trace_sqrt_product(first, second))
    return float(max(value, 0.0))


def load_statistics(path: str | Path) -> FeatureStatistics:
    """``mu`` (D,) and ``sigma`` (D, D) from an ``.npz`` (pytorch-fid ``--save-stats``, openai reference batches).

    Other arrays in the file are not read (openai's batches also hold images); nothing is unpickled.
    ``n`` comes from an ``n`` entry where the file has one (isgame writes it), else None.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"statistics file {path} not found; pass an .npz with arrays mu and sigma")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if not {"mu", "sigma"} <= names:
                raise InvalidInputError(f"{path}: expected arrays mu and sigma (as pytorch-fid saves statistics), got "
                                        f"{', '.join(sorted(names)[:5]) or 'none'}")
            mean, covariance = archive["mu"], archive["sigma"]
            n = int(archive["n"]) if "n" in names and archive["n"].size == 1 else None
    except ValueError as error:
        if "pickle" in str(error).lower() or "object" in str(error).lower():
            raise InvalidTypeError(f"{path}: holds pickled objects, which are never loaded; save mu and sigma as plain "
                                   "float arrays with numpy.savez") from None
        raise InvalidInputError(f"{path}: not a valid .npz file ({error}); re-save it with numpy.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise InvalidInputError(f"{path}: corrupt or truncated .npz file ({type(error).__name__}); re-save it") from None
    if mean.dtype.kind not in "fiu" or covariance.dtype.kind not in "fiu":
        raise InvalidTypeError(f"{path}: mu and sigma must be numbers, got dtypes {mean.dtype} and {covariance.dtype}")
    mean, covariance = np.asarray(mean, np.float64), np.asarray(covariance, np.float64)
    if mean.ndim != 1 or covariance.shape != (mean.shape[0], mean.shape[0]):
        raise InvalidInputError(f"{path}: expected mu of shape (D,) and sigma of shape (D, D), got {mean.shape} and "
                                f"{covariance.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(covariance).all()):
        raise InvalidInputError(f"{path}: mu or sigma contains NaN or inf; recompute the statistics")
    return FeatureStatistics(mean=mean, covariance=covariance, n=n)


def save_statistics(statistics: FeatureStatistics, path: str | Path) -> None:
    """Write ``mu``, ``sigma`` (float64) and ``n`` as an ``.npz`` pytorch-fid and openai's evaluator read; atomic."""
    from isgame.scoring.runtime.atomic_io import write_bytes_atomic

    buffer = io.BytesIO()
    extra = {} if statistics.n is None else {"n": np.int64(statistics.n)}
    np.savez(buffer, mu=np.asarray(statistics.mean, np.float64), sigma=np.asarray(statistics.covariance, np.float64),
             **extra)
    write_bytes_atomic(Path(path), buffer.getvalue())


def is_statistics_file(spec: str) -> bool:
    """Whether ``spec`` names an existing ``.npz`` holding arrays ``mu`` and ``sigma`` (not images)."""
    path = Path(spec)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.removesuffix(".npy") for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile):
        return False
    return {"mu", "sigma"} <= names


def frechet_distance(features_1: object, features_2: object) -> float:
    """FID between two (N, D) feature sets."""
    return statistics_to_fid(features_to_statistics(features_1, name="first"), features_to_statistics(features_2, name="second"))


class FeatureStatisticsAccumulator(StreamingMetric):
    """Streaming statistics of one feature set: float64 sum (D,), sum of outer products (D, D) and count.

    Memory O(D^2), flat in N; accumulators on several processes combine with a sum.
    ``compute()`` returns the :class:`FeatureStatistics`, the ladder's middle rung (statistics, not a metric: no
    ``higher_is_better``). While N <= D the rows themselves are kept too (N x D <= D^2, no more memory than the
    sums) so that ``compute()`` can give the covariance's root rows for the exact low-rank FID; once the sums
    hold rows that are not here (after a merge or an ``all_reduce`` over several processes) they are dropped and
    FID takes the eigenvalue route.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise InvalidInputError(f"feature dimension must be >= 1, got {dim}")
        self.dim = dim
        self.add_state("total", lambda: torch.zeros(dim, dtype=torch.float64))
        self.add_state("outer", lambda: torch.zeros((dim, dim), dtype=torch.float64))
        self.add_state("rows", lambda: torch.zeros((), dtype=torch.int64))
        self.reset()

    @property
    def count(self) -> int:
        """The rows added (over every process after an ``all_reduce``)."""
        return int(self.rows)

    def reset(self) -> None:
        self._rows: list[np.ndarray] | None = []
        super().reset()

    def _after_states_change(self) -> None:
        if self._rows is not None and sum(rows.shape[0] for rows in self._rows) != self.count:
            self._rows = None  # the sums hold rows that are not here

    def _update(self, features: object) -> None:
        """Add (B, D) features (tensor or array)."""
        array = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
        if array.ndim != 2 or array.shape[1] != self.dim or not np.isfinite(array).all():
            raise InvalidInputError(f"expected finite features of shape (B, {self.dim}), got shape {array.shape}")
        total, outer = self.total.numpy(), self.outer.numpy()  # views: the sums grow in place
        total += array.sum(axis=0)
        outer += array.T @ array
        self.rows += array.shape[0]
        if self._rows is not None and self.count <= self.dim:
            self._rows.append(array.copy())
        else:
            self._rows = None

    def compute(self) -> FeatureStatistics:
        if self.count < 2:
            raise InvalidInputError("need at least two feature vectors")
        mean = self.total.numpy() / self.count
        covariance = self.outer.numpy() / (self.count - 1)
        # The rank-one correction a block of rows at a time: a whole np.outer(mean, mean) would be one more
        # D x D float64 temporary (32 MiB at D = 2048) at the FID command's peak.
        scale = self.count / (self.count - 1)
        for first in range(0, self.dim, COVARIANCE_BLOCK_ROWS):
            block = slice(first, first + COVARIANCE_BLOCK_ROWS)
            covariance[block] -= np.outer(scale * mean[block], mean)
        roots = covariance_root_rows(np.concatenate(self._rows)) if self._rows and self.count <= self.dim else None
        return FeatureStatistics(mean=mean, covariance=covariance, n=self.count, root_rows=roots)


class FrechetDistanceAccumulator(StreamingMetric):
    """Streaming FID between real and generated features, as torchmetrics' ``update(x, real=...)``.

    ``update(features, real=True)`` adds (B, D) real features, ``real=False`` generated ones;
    ``compute()`` returns the FID (>= 0, lower is better). Give ``reference`` (the real set's
    :class:`FeatureStatistics`) to compare every evaluation with the same real statistics;
    ``reset()`` then keeps them and forgets only the generated rows. Its states are those of its two
    :class:`FeatureStatisticsAccumulator` sides, which reset, merge and all-reduce with it.
    """

    higher_is_better = False

    def __init__(self, dim: int, *, reference: FeatureStatistics | None = None) -> None:
        if reference is not None and reference.mean.shape != (dim,):
            raise InvalidInputError(f"reference statistics have D = {reference.mean.shape[0]}, expected {dim}")
        self.reference = reference
        self.real = FeatureStatisticsAccumulator(dim)
        self.fake = FeatureStatisticsAccumulator(dim)

    def _update(self, features: object, *, real: bool = False) -> None:
        """Add (B, D) features of real images (``real=True``) or generated ones."""
        if real and self.reference is not None:
            raise InvalidInputError("reference statistics were given; add only generated features (real=False)")
        (self.real if real else self.fake).update(features)

    def reset(self) -> None:
        self.real.reset()
        self.fake.reset()

    def merge(self, other: "FrechetDistanceAccumulator") -> None:
        self.real.merge(other.real)
        self.fake.merge(other.fake)

    def all_reduce(self) -> None:
        self.real.all_reduce()
        self.fake.all_reduce()

    def compute(self) -> float:
        real = self.reference if self.reference is not None else self.real.compute()
        return statistics_to_fid(real, self.fake.compute())


def fid_sample_size_curve(reference: object, pool: object, sizes: tuple[int, ...], *, seed: int = 0) -> list[float]:
    """FID against ``reference`` ((N, D) features or their :class:`FeatureStatistics`) of a seeded random subset of
    ``pool`` of each size.

    With ``pool`` drawn from the reference's distribution the true FID is 0, so the curve is
    FID's finite-N bias.
    """
    pool_array = _as_features(pool, "pool")
    reference_statistics = reference if isinstance(reference, FeatureStatistics) else (
        features_to_statistics(reference, name="reference"))
    rng = np.random.default_rng(seed)
    return [statistics_to_fid(reference_statistics, features_to_statistics(pool_array[rng.choice(len(pool_array), size,
                                                                                                  replace=False)]))
            for size in sizes]
