"""IS dialects: how each reference implementation turns the same logits into its number.

| dialect          | shuffle                           | splits                         | float   | std  |
|------------------|-----------------------------------|--------------------------------|---------|------|
| openai           | none                              | rows i*N//s..(i+1)*N//s, s=10  | float32 | ddof 0 |
| torch-fidelity   | numpy RandomState(2020).permutation | i*N//s bounds, s=10          | float64 | ddof 0 |
| torchmetrics     | torch.randperm (seeded here)      | torch.chunk, s=10              | input dtype (float32) | ddof 1 |
| sbarratt         | none                              | k*(N//s), remainder dropped, s=1 | float64 (of float32 softmax) | ddof 0 |
| barratt-sharma   | none                              | none: I(y;x) over all rows     | float64 | s.e. by delta method |

What differs beyond this recipe is the classifier: the openai and torch-fidelity dialects
score the TF-ported Inception's 1008 logits, torchmetrics its "logits_unbiased", sbarratt
torchvision's 1000 classes. Given the same logits, only the recipe differs, and that is what
this module reproduces. For images, `isgame score --dialect torchmetrics` also truncates floats to
uint8 as torchmetrics does ((x * 255).byte()); :func:`logits_of_truncated` re-runs the network only on
the images that truncation changes (none for PNG or uint8 sources). One deviation: where a float32 softmax underflows to 0, the original
openai code computes 0 * log 0 = NaN; here 0 * log 0 = 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.metrics.score_result import spread_percent
from isgame.scoring.metrics.validation import check_predictions
from isgame.scoring.results import FieldsAsDict


@dataclass(frozen=True)
class DialectScore(FieldsAsDict):
    """One dialect's IS of a set of logits: mean, std (in that dialect's convention) and what it used."""

    dialect: str
    is_mean: float
    is_std: float
    splits: int
    rows_used: int
    std_convention: str


def _split_scores(p: torch.Tensor, log_p: torch.Tensor, bounds: list[tuple[int, int]]) -> torch.Tensor:
    """exp(mean KL(p_i || mean p)) of each row range, in p's dtype."""
    scores = []
    for start, stop in bounds:
        part, log_part = p[start:stop], log_p[start:stop]
        marginal = part.mean(dim=0, keepdim=True)
        kl = torch.where(part > 0, part * (log_part - marginal.log()), torch.zeros((), dtype=p.dtype))
        scores.append(kl.sum(dim=1).mean().exp())
    return torch.stack(scores)


def _floor_bounds(n: int, splits: int) -> list[tuple[int, int]]:
    return [(i * n // splits, (i + 1) * n // splits) for i in range(splits)]


def openai_dialect(logits: torch.Tensor, *, splits: int = 10, seed: int = 0) -> DialectScore:
    """improved-gan: float32 softmax, contiguous i*N//s splits, no shuffle, std ddof 0."""
    x = logits.float()
    scores = _split_scores(x.softmax(1), x.log_softmax(1), _floor_bounds(x.shape[0], splits)).double()
    return DialectScore("openai", float(scores.mean()), float(scores.std(correction=0)), splits, x.shape[0], "std ddof 0 over splits")


def torch_fidelity_dialect(logits: torch.Tensor, *, splits: int = 10, seed: int = 2020) -> DialectScore:
    """torch-fidelity: numpy RandomState(seed=2020) permutation, float64, i*N//s splits, std ddof 0."""
    n = logits.shape[0]
    x = logits[np.random.RandomState(seed).permutation(n)].double()
    scores = _split_scores(x.softmax(1), x.log_softmax(1), _floor_bounds(n, splits))
    return DialectScore("torch-fidelity", float(scores.mean()), float(scores.std(correction=0)), splits, n, "std ddof 0 over splits")


def torchmetrics_dialect(logits: torch.Tensor, *, splits: int = 10, seed: int = 0) -> DialectScore:
    """torchmetrics: torch.randperm (a generator seeded with ``seed``), torch.chunk, input dtype, std ddof 1.

    ``torch.chunk`` makes parts of ceil(N / s) rows, so it can return fewer than s parts.
    """
    n = logits.shape[0]
    x = logits.float()[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    chunk = math.ceil(n / splits)
    bounds = [(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    scores = _split_scores(x.softmax(1), x.log_softmax(1), bounds)
    std = float(scores.std()) if len(bounds) > 1 else math.nan
    return DialectScore("torchmetrics", float(scores.mean()), std, len(bounds), n, "std ddof 1 over torch.chunk parts")


def sbarratt_dialect(logits: torch.Tensor, *, splits: int = 1, seed: int = 0) -> DialectScore:
    """sbarratt/inception-score-pytorch: float32 softmax kept in float64, parts k*(N//s), remainder dropped."""
    n = logits.shape[0]
    p = logits.float().softmax(1).double()
    size = n // splits
    bounds = [(k * size, (k + 1) * size) for k in range(splits)]
    scores = _split_scores(p, torch.log(p), bounds)
    return DialectScore("sbarratt", float(scores.mean()), float(scores.std(correction=0)), splits, size * splits,
                        "std ddof 0 over splits")


def barratt_sharma_dialect(logits: torch.Tensor, *, splits: int = 1, seed: int = 0) -> DialectScore:
    """The improved score: exp(I(y;x)) over all rows; its std is exp(I) * s.e.(I) (delta method)."""
    result = inception_score(logits, splits=1)
    stderr = result.mutual_information_stderr_nats
    return DialectScore("barratt-sharma", result.improved_is,
                        result.improved_is * stderr if math.isfinite(stderr) else math.nan, 1, result.n,
                        "standard error of exp(I) from per-sample KL terms")


DIALECTS = {"openai": openai_dialect, "torch-fidelity": torch_fidelity_dialect, "torchmetrics": torchmetrics_dialect,
            "sbarratt": sbarratt_dialect, "barratt-sharma": barratt_sharma_dialect}
DEFAULT_SPLITS = {"openai": 10, "torch-fidelity": 10, "torchmetrics": 10, "sbarratt": 1, "barratt-sharma": 1}


@dataclass(frozen=True)
class DialectTable:
    """Every dialect's score of the same logits, and their spread."""

    scores: list[DialectScore]

    @property
    def spread_percent(self) -> float:
        return spread_percent([s.is_mean for s in self.scores])

    def to_dict(self) -> dict[str, object]:
        return {"dialects": [s.to_dict() for s in self.scores], "spread_percent": self.spread_percent}


def score_dialect(values: object, dialect: str, *, splits: int | None = None, seed: int | None = None) -> DialectScore:
    """Score (N, K) logits in ``dialect``; ``splits`` and ``seed`` default to the dialect's own."""
    if dialect not in DIALECTS:
        raise InvalidInputError(f"unknown dialect {dialect!r}; choose one of {', '.join(DIALECTS)} or all")
    logits = check_predictions(values, kind="logits", name="logits")
    splits = DEFAULT_SPLITS[dialect] if splits is None else splits
    if splits < 1 or splits > logits.shape[0]:
        raise InvalidInputError(f"N = {logits.shape[0]} samples is fewer than splits = {splits}; use fewer splits")
    options = {"splits": splits}
    if seed is not None:
        options["seed"] = seed
    return DIALECTS[dialect](logits, **options)


def dialect_table(values: object, *, splits: int | None = None, seed: int | None = None) -> DialectTable:
    """All dialects side by side, each at its defaults unless ``splits`` or ``seed`` (the permutation seed of
    the dialects that shuffle) is given."""
    return DialectTable([score_dialect(values, name, splits=splits if name not in ("barratt-sharma",) else None,
                                       seed=seed) for name in DIALECTS])


@dataclass(frozen=True)
class DialectReport:
    """A :class:`DialectTable` with what was scored and by what, as :class:`~scoring.pipeline.ScoreReport` has.

    ``classifier`` is the classifier's ``describe()`` (name, weights sha256, ...), None for logits;
    ``extra`` holds N, the uint8 truncation count and, under torchrun, the process count.
    """

    source: str
    input_kind: str
    classifier: dict[str, object] | None
    table: DialectTable
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def scores(self) -> list[DialectScore]:
        return self.table.scores

    @property
    def spread_percent(self) -> float:
        return self.table.spread_percent

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "input": self.input_kind, "classifier": self.classifier,
                **self.table.to_dict(), **self.extra}


def truncate_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """torchmetrics' ``(imgs * 255).byte()``, back on [0, 1]: floor(x * 255) / 255 (truncated, not rounded)."""
    return torch.floor(images * 255) / 255


def logits_of_truncated(classifier: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                        logits: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Logits of :func:`truncate_to_uint8` (``images``), given ``logits`` of ``images`` themselves.

    Only the images that truncation changes go through ``classifier`` again; the others keep their
    row of ``logits``. Returns the logits and how many images ran again (0 for uint8-valued input,
    such as PNG files, whose values k/255 truncate to themselves).
    """
    truncated = truncate_to_uint8(images)
    changed = (truncated != images).flatten(1).any(dim=1)
    count = int(changed.sum())
    if count == 0:
        return logits, 0
    out = logits.clone()
    with torch.no_grad():
        out[changed] = classifier(truncated[changed]).to(out.dtype)
    return out, count
