"""Reference statistics you can trust: ``isgame stats save SOURCE -o real.stats.npz``.

One ``.npz`` (written atomically, read with ``allow_pickle=False``) holds:

* ``mu`` (D,) and ``sigma`` (D, D), float64, and ``n``: pytorch-fid's ``--save-stats`` format, so
  :func:`isgame.scoring.metrics.fid.load_statistics` and pytorch-fid read the file as before;
* ``features_subset`` (M, D) in the classifier's dtype (what the network gave, nothing rounded) with
  M = min(N, cap): the rows of a seeded subset (``numpy.random.default_rng(seed).choice(N, M,
  replace=False)``, kept in row order), picked while the features stream, for KID and the k-NN metrics;
  ``subset_rows`` (M,) their row numbers;
* ``isgame_key``: JSON text of the :class:`StatsKey`, every setting that changes the features:
  classifier, weights SHA-256, layer, feature dimension, preprocessing, dtype, precision; and what
  they were computed on (source, N, input fingerprint).

:func:`load_reference_stats` refuses a file whose settings differ from the classifier at hand and
names every differing field (torch-fidelity's cache key omits the weights and the dtype and can
serve stale features; this one does not).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from isgame.scoring.errors import InvalidInputError, SourceNotFoundError, parameter, remedy
from isgame.scoring.metrics.fid import FeatureStatistics, FeatureStatisticsAccumulator

#: how to write a stats file, at the command line and in Python
SAVE_STATS = remedy("isgame stats save", "isgame.save_stats(source, out)")

STATS_FORMAT = "isgame-stats-v1"
#: default cap on the stored feature rows (KID and the k-NN metrics rarely use more)
DEFAULT_SUBSET_CAP = 10_000
#: the settings that must match the current classifier for a file to be used
SETTING_FIELDS = ("classifier", "weights_sha256", "layer", "feature_dim", "preprocessing", "dtype", "precision")


@dataclass(frozen=True)
class StatsKey:
    """Every setting that changes the features, and what they were computed on."""

    classifier: str
    weights_sha256: str | None
    layer: str
    feature_dim: int
    preprocessing: dict
    dtype: str
    precision: str
    source: str | None = None
    n: int | None = None
    input_fingerprint: str | None = None
    format: str = STATS_FORMAT

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def differences(self, other: "StatsKey") -> list[str]:
        """``field: stored X, here Y`` for each setting that differs from ``other`` (the current one)."""
        return [f"{name}: stored {_brief(getattr(self, name))}, here {_brief(getattr(other, name))}"
                for name in SETTING_FIELDS if getattr(self, name) != getattr(other, name)]


def _brief(value: object) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:12] + "…"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def current_key(classifier, *, source: str | None = None, n: int | None = None,
                input_fingerprint: str | None = None) -> StatsKey:
    """The key of features of ``classifier`` as it is loaded now."""
    from isgame.scoring.provenance import classifier_provenance

    record, preprocessing = classifier_provenance(classifier)
    return StatsKey(classifier=classifier.name, weights_sha256=record["weights_sha256"] or record.get("module_fingerprint"),
                    layer="penultimate (the classifier's features)", feature_dim=int(classifier.feature_dim),
                    preprocessing=preprocessing, dtype=str(classifier.dtype).replace("torch.", ""),
                    precision=str(getattr(classifier, "precision", "fp32")), source=source, n=n,
                    input_fingerprint=input_fingerprint)


@dataclass(frozen=True)
class ReferenceStats:
    """Float64 mean and covariance, a seeded subset of feature rows, and the key they were made under."""

    statistics: FeatureStatistics
    features_subset: np.ndarray
    subset_rows: np.ndarray
    key: StatsKey
    seed: int

    def to_dict(self) -> dict[str, object]:
        return {"n": self.statistics.n, "feature_dim": int(self.statistics.mean.shape[0]),
                "subset_rows": int(self.features_subset.shape[0]), "seed": self.seed, "key": self.key.to_dict()}


def subset_rows(n: int, cap: int, seed: int) -> np.ndarray:
    """Row numbers (sorted) of the seeded subset: all rows when n <= cap."""
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False)).astype(np.int64)


def stream_reference_stats(batches, *, num_samples: int, feature_dim: int, key: StatsKey, cap: int = DEFAULT_SUBSET_CAP,
                           seed: int = 0) -> ReferenceStats:
    """Consume (B, D) feature batches of rows 0..N-1 in order: the statistics, and the subset kept as it passes."""
    if cap < 1:
        raise InvalidInputError(f"{parameter('subset')} must be >= 1, got {cap}")
    chosen = subset_rows(num_samples, cap, seed)
    accumulator = FeatureStatisticsAccumulator(feature_dim)
    kept, first = [], 0
    for features in batches:
        accumulator.update(features)
        rows = features.detach().cpu().numpy() if hasattr(features, "detach") else np.asarray(features)
        lo, hi = np.searchsorted(chosen, [first, first + rows.shape[0]])
        kept.append(rows[chosen[lo:hi] - first])
        first += rows.shape[0]
    subset = np.concatenate(kept) if kept else np.empty((0, feature_dim))
    return ReferenceStats(statistics=accumulator.compute(), features_subset=subset, subset_rows=chosen, key=key,
                          seed=seed)


def save_reference_stats(stats: ReferenceStats, path: str | Path) -> None:
    """Write the ``.npz`` atomically (the temporary file is renamed only once complete)."""
    from isgame.scoring.runtime.atomic_io import write_bytes_atomic

    buffer = io.BytesIO()
    np.savez(buffer, mu=np.asarray(stats.statistics.mean, np.float64),
             sigma=np.asarray(stats.statistics.covariance, np.float64), n=np.int64(stats.statistics.n),
             features_subset=stats.features_subset, subset_rows=stats.subset_rows, subset_seed=np.int64(stats.seed),
             isgame_key=np.array(json.dumps(stats.key.to_dict(), sort_keys=True)))
    write_bytes_atomic(Path(path), buffer.getvalue())


def has_isgame_key(path: str | Path) -> bool:
    """Whether an ``.npz`` carries an isgame key (a stats file of :func:`save_reference_stats`)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "isgame_key.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load_reference_stats(path: str | Path, *, classifier=None) -> ReferenceStats:
    """Read a stats file (``allow_pickle=False``); with ``classifier``, refuse it unless its settings match,
    naming every differing field."""
    from isgame.scoring.metrics.fid import load_statistics

    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"stats file {path} not found; write one with {SAVE_STATS}")
    statistics = load_statistics(path)
    if not has_isgame_key(path):
        raise InvalidInputError(f"{path} holds mu and sigma but no isgame key, so its settings cannot be checked; "
                                f"write it with {SAVE_STATS}")
    with np.load(path, allow_pickle=False) as archive:
        try:
            key = StatsKey(**json.loads(str(archive["isgame_key"])))
            subset, rows, seed = archive["features_subset"], archive["subset_rows"], int(archive["subset_seed"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInputError(f"{path}: damaged isgame key ({type(error).__name__}); recompute it with "
                                    f"{SAVE_STATS}") from None
    stats = ReferenceStats(statistics=statistics, features_subset=subset, subset_rows=rows, key=key, seed=seed)
    if classifier is not None:
        check_key(stats, classifier, path)
    return stats


def check_key(stats: ReferenceStats, classifier, path: str | Path) -> None:
    """Refuse ``stats`` in one line when it was made under other settings than ``classifier``'s."""
    differing = stats.key.differences(current_key(classifier))
    if differing:
        raise InvalidInputError(f"{path} was computed under other settings ({'; '.join(differing)}); recompute it "
                                f"with {SAVE_STATS} and the classifier and weights "
                                "used here")
