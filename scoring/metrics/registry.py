"""One registry of metrics, read by ``isgame metrics``, the robustness matrix, the leaderboard and the Python API.

Two kinds of entry live here, tied together:

* a :class:`Metric` is a function of features (:class:`MetricInputs`) that ``isgame metrics`` runs, under its key
  (``fid``, ``precision-recall``, a plug-in's name);
* a :class:`MatrixMetric` is a column of the robustness matrix (``FID``, ``precision``): its direction, family,
  the aspects of a generator it claims to measure (its scope, which the matrix's verdicts judge it on), and a
  citation. :data:`COLUMN_SOURCES` names the :class:`Metric` that fills a column, or None for the columns the
  matrix computes itself (IS, exp(I), R-IS, R-FID).

isgame's own metrics register when this module is imported (:mod:`isgame.scoring.metrics.builtin`). A plug-in
registers with :func:`register_metric`; when it declares ``higher_is_better`` it also becomes a matrix column of
that name, measured on every game by its own function, with half-sample draws for the matrix's test::

    @isgame.register_metric("mean-shift", higher_is_better=False, scope=("fidelity",), headline=("value",))
    def mean_shift(inputs: isgame.MetricInputs) -> dict[str, object]:
        return {"value": float(((inputs.fake.mean(0) - inputs.real.mean(0)) ** 2).sum())}

A metric whose function also works on torch tensors (``inputs.fake`` a float64 tensor with gradients, the
value a scalar tensor) declares ``differentiable=True``, and the leaderboard attacks it directly; any other is
judged there by transfer. Installed packages add metrics and games through the entry-point groups
``isgame.metrics`` and ``isgame.games`` (:mod:`isgame.scoring.runtime.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from isgame import defaults
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.fid import FeatureStatistics

#: the aspects of a generator a metric may claim to measure (the games declare which they degrade)
ASPECTS = ("fidelity", "diversity", "novelty")
QUALITY = ("fidelity", "diversity")
#: the matrix's families, in the order the heatmap shows them; plug-in columns come last
FAMILIES = ("classifier score", "feature distance", "k-NN manifold", "diversity", "pixel space", "plug-in")
#: where a metric comes from when isgame itself registers it
BUILTIN_ORIGIN = "isgame"
_UNDECLARED = object()


@dataclass(frozen=True)
class MetricInputs:
    """What every metric function receives: (N, D) float64 features and the settings that change values.

    ``real`` is None when REAL is stored statistics (``real_statistics`` then comes from the file);
    ``train`` is None without a training set. ``fake_logits`` and the images are read only when a requested
    metric needs them; the images are the classifier's input (in ``isgame metrics``, average-pooled to at most
    :data:`~isgame.scoring.metrics.wavelet_fd.WAVELET_IMAGE_SIZE` pixels a side).
    """

    real: np.ndarray | None
    fake: np.ndarray
    train: np.ndarray | None
    real_statistics: FeatureStatistics
    kid_subsets: int = defaults.KID_SUBSETS
    kid_subset_size: int = defaults.KID_SUBSET_SIZE
    seed: int = defaults.SEED
    fake_logits: np.ndarray | None = None  # (N, K) float64, when a metric needs_logits
    real_images: np.ndarray | None = None  # (N, C, h, w) float32 in [0, 1], when a metric needs_images
    fake_images: np.ndarray | None = None
    second_real: np.ndarray | None = None  # (N, D2) float64 features of a second classifier, when a metric needs_second
    second_fake: np.ndarray | None = None
    second_classifier: str | None = None  # that classifier's name
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def cached(self, key: str, compute: Callable[[], object]) -> object:
        """``compute()`` once per key, for results two metrics share (precision/recall and density/coverage)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


@dataclass(frozen=True)
class Metric:
    """A registered metric: its function, what it needs, and the keys of its result a table shows.

    ``columns`` are the matrix columns it fills; ``differentiable``: ``compute`` also runs on torch tensors with
    gradients; ``origin`` is ``isgame`` or the module that registered it."""

    compute: Callable[[MetricInputs], dict[str, object]]
    needs_real_features: bool = True
    needs_train: bool = False
    headline: tuple[str, ...] = ()
    needs_logits: bool = False
    needs_images: bool = False
    needs_second: bool = False
    name: str = ""
    columns: tuple[str, ...] = ()
    differentiable: bool = False
    origin: str = BUILTIN_ORIGIN

    @property
    def needs(self) -> tuple[str, ...]:
        """What it reads besides the generated features: ``real features``, ``train``, ``logits``, ``images``,
        ``second classifier``."""
        flags = (("real features", self.needs_real_features), ("train", self.needs_train),
                 ("logits", self.needs_logits), ("images", self.needs_images),
                 ("second classifier", self.needs_second))
        return tuple(label for label, wanted in flags if wanted)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "needs": list(self.needs), "headline": list(self.headline),
                "columns": list(self.columns), "differentiable": self.differentiable, "origin": self.origin}


@dataclass(frozen=True)
class MatrixMetric:
    """A column: ``higher_is_better`` True, False, or None (two-sided: closest to 0 is best); ``needs`` names the
    auxiliary classifier the column reads ("second", "robust") or None for the domain's own; ``scope`` the aspects
    of a generator (:data:`ASPECTS`) it claims to measure, as ``citation`` says. ``differentiable``: the
    leaderboard attacks it through its own loss (others by transfer); ``value_key``: for a plug-in column, the
    key of its function's result that the matrix reads."""

    name: str
    family: str
    higher_is_better: bool | None
    rule: str
    description: str
    needs: str | None = None
    scope: tuple[str, ...] = QUALITY
    citation: str = ""
    differentiable: bool = False
    origin: str = BUILTIN_ORIGIN
    value_key: str | None = None


#: metric key -> :class:`Metric`, in the order ``isgame metrics`` shows them; register with :func:`register_metric`
METRICS: dict[str, Metric] = {}
#: column name -> :class:`MatrixMetric`, in heatmap order
COLUMNS: dict[str, MatrixMetric] = {}
#: column name -> the key of the :class:`Metric` that computes it, or None where the matrix computes it itself
COLUMN_SOURCES: dict[str, str | None] = {}


def fooled_rule(higher_is_better: bool | None) -> str:
    """The sentence saying when a column flags a game."""
    if higher_is_better is None:
        return ("copying when C_T lies below its null distribution on the domain (held-out halves tested against "
                "each other), one-sided, Holm-corrected within the column")
    return (f"flags a game when it is significantly {'lower' if higher_is_better else 'higher'} than held-out real "
            "data: a one-sided test of the difference over half-samples, Holm-corrected within the column")


def add_column(name: str, family: str, higher_is_better: bool | None, scope: tuple[str, ...], description: str,
               citation: str, *, needs: str | None = None, source: str | None = None, differentiable: bool = False,
               origin: str = BUILTIN_ORIGIN, value_key: str | None = None) -> MatrixMetric:
    """Add a matrix column (``source``: the :class:`Metric` key computing it, None for the matrix's own)."""
    unknown = [aspect for aspect in scope if aspect not in ASPECTS]
    if unknown or not scope:
        raise InvalidInputError(f"{parameter('scope')} of {name!r} must name aspects among {', '.join(ASPECTS)}, got "
                                f"{list(scope)!r}")
    column = MatrixMetric(name=name, family=family, higher_is_better=higher_is_better, rule=fooled_rule(
        higher_is_better), description=description, needs=needs, scope=tuple(scope), citation=citation,
        differentiable=differentiable, origin=origin, value_key=value_key)
    COLUMNS[name] = column
    COLUMN_SOURCES[name] = source
    return column


def _origin_of(function: Callable) -> str:
    module = getattr(function, "__module__", "") or ""
    return BUILTIN_ORIGIN if module.startswith("isgame.") else module


def register_metric(name: str, *, needs_real_features: bool = True, needs_train: bool = False,
                    headline: tuple[str, ...] = (), needs_logits: bool = False, needs_images: bool = False,
                    needs_second: bool = False, override: bool = False, higher_is_better: object = _UNDECLARED,
                    scope: tuple[str, ...] = QUALITY, description: str = "", citation: str = "",
                    differentiable: bool = False, value_key: str | None = None,
                    columns: tuple[str, ...] | None = None) -> Callable:
    """Decorator: add ``function(inputs) -> dict`` to :data:`METRICS` under ``name``.

    ``needs_logits``: the metric reads ``inputs.fake_logits``; ``needs_images``: it reads ``inputs.real_images`` and
    ``inputs.fake_images`` (REAL must then be images, not stored statistics); ``needs_second``: it reads
    ``inputs.second_real`` and ``inputs.second_fake``, a second classifier's features of the same images.
    A ``name`` already registered is refused unless ``override`` (a silent replacement of ``fid`` would change
    every FID the toolkit reports). The dict may hold numpy numbers and arrays; they are made JSON-ready.

    ``higher_is_better`` (True or False) makes the metric a column of the robustness matrix too, named ``name``,
    judged on the games that degrade an aspect of its ``scope`` (:data:`ASPECTS`); the matrix reads its result's
    ``value_key`` (default: the first of ``headline``, else the only key). ``differentiable``: ``function`` also
    computes on torch float64 tensors with gradients (``inputs.fake``) and returns a scalar tensor there, so the
    leaderboard can attack it. ``columns`` (isgame's own metrics) names the existing columns it fills instead.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{parameter('name')} must be a non-empty metric name, got {name!r}")
    if higher_is_better is not _UNDECLARED and higher_is_better not in (True, False):
        raise InvalidInputError(f"{parameter('higher_is_better')} of {name!r} must be True or False, got "
                                f"{higher_is_better!r}")
    taken = name in METRICS or (higher_is_better is not _UNDECLARED and name in COLUMNS
                                and COLUMN_SOURCES.get(name) != name)
    if taken and not override:
        owner = "isgame's own metric" if name in BUILTIN_METRICS or name in COLUMNS else "a metric registered earlier"
        raise InvalidInputError(f"{parameter('name', repr(name))} is taken by {owner}; choose another name, or pass "
                                f"{parameter('override', True)} to replace it")

    def add(function: Callable[[MetricInputs], dict[str, object]]) -> Callable[[MetricInputs], dict[str, object]]:
        origin = _origin_of(function)
        filled = tuple(columns) if columns is not None else ((name,) if higher_is_better is not _UNDECLARED else ())
        METRICS[name] = Metric(function, needs_real_features=needs_real_features or needs_images,
                               needs_train=needs_train, headline=tuple(headline), needs_logits=needs_logits,
                               needs_images=needs_images, needs_second=needs_second, name=name, columns=filled,
                               differentiable=differentiable, origin=origin)
        if columns is None and higher_is_better is not _UNDECLARED:
            add_column(name, "plug-in", bool(higher_is_better), tuple(scope), description or f"plug-in metric {name}",
                       citation or origin, source=name, differentiable=differentiable, origin=origin,
                       value_key=value_key or (headline[0] if headline else None))
        return function

    return add


def unregister_metric(name: str) -> None:
    """Remove a plug-in metric (and its column); isgame's own cannot be removed."""
    if name in BUILTIN_METRICS:
        raise InvalidInputError(f"{name!r} is isgame's own metric and cannot be removed")
    METRICS.pop(name, None)
    if COLUMN_SOURCES.get(name) == name:
        COLUMNS.pop(name, None)
        COLUMN_SOURCES.pop(name, None)


def plugin_columns() -> list[str]:
    """The matrix columns that plug-ins added, in registration order."""
    return [name for name, column in COLUMNS.items() if column.origin != BUILTIN_ORIGIN]


class ColumnView(Mapping):
    """A live, read-only view of one attribute of every column (``HIGHER_IS_BETTER``, ``METRIC_SCOPES``, ...):
    a column a plug-in adds later shows in it."""

    def __init__(self, attribute: str) -> None:
        self._attribute = attribute

    def __getitem__(self, name: str):
        return getattr(COLUMNS[name], self._attribute)

    def __iter__(self) -> Iterator[str]:
        return iter(list(COLUMNS))

    def __len__(self) -> int:
        return len(COLUMNS)

    def __repr__(self) -> str:
        return repr(dict(self))


class ColumnList(Sequence):
    """A live view of the columns (``as_names``: their names, else the :class:`MatrixMetric` entries)."""

    def __init__(self, *, as_names: bool) -> None:
        self._as_names = as_names

    def _items(self) -> list:
        return list(COLUMNS) if self._as_names else list(COLUMNS.values())

    def __getitem__(self, index):
        return self._items()[index]

    def __len__(self) -> int:
        return len(COLUMNS)

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, tuple, Sequence)) else NotImplemented

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return repr(tuple(self._items()))


from isgame.scoring.metrics import builtin as _builtin  # noqa: E402  (registers isgame's own metrics and columns)

#: the metrics isgame itself registers: a plug-in replaces one only with ``override=True``
BUILTIN_METRICS = frozenset(_builtin.BUILTIN_KEYS)
