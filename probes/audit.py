"""``isgame audit``: run the scores on the embedded default and write one report.

Writes ``report.json`` and ``source_scores.png`` into ``outputs/<run-id>/`` (or ``out``),
each atomically. Sections added by later work plug in here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from scoring.atomic_io import save_figure_atomic, write_json_atomic
from scoring.classifiers import load_classifier
from scoring.errors import InvalidInputError
from scoring.pipeline import ScoreReport, score_images
from scoring.samples import open_images

AUDIT_SOURCES = ("digits:test", "digits:train", "noise:uniform", "noise:gaussian")
AUDIT_NOISE_SAMPLES = 1000
AUDIT_SPLITS = 10


@dataclass(frozen=True)
class AuditReport:
    """Every section of one audit run, and where it was written."""

    out_dir: Path
    classifier: dict[str, object]
    seed: int
    scores: list[ScoreReport]
    seconds: float
    figures: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "out_dir": str(self.out_dir),
            "classifier": self.classifier,
            "seed": self.seed,
            "seconds": self.seconds,
            "scores": [score.to_dict() for score in self.scores],
            "figures": self.figures,
        }


class SourceScoresDisplay:
    """Two panels: IS and exp(I) per source against K; H(y) and E[H(y|x)] in bits against log2 K."""

    def __init__(self, names: list[str], is_means: list[float], is_stds: list[float], improved: list[float],
                 marginal_bits: list[float], conditional_bits: list[float], num_classes: int) -> None:
        self.names = names
        self.is_means = is_means
        self.is_stds = is_stds
        self.improved = improved
        self.marginal_bits = marginal_bits
        self.conditional_bits = conditional_bits
        self.num_classes = num_classes

    @classmethod
    def from_reports(cls, reports: list[ScoreReport]) -> "SourceScoresDisplay":
        results = [r.result for r in reports]
        return cls(
            [r.source for r in reports],
            [r.is_mean for r in results],
            [r.is_std for r in results],
            [r.improved_is for r in results],
            [r.marginal_entropy_bits for r in results],
            [r.conditional_entropy_bits for r in results],
            results[0].num_classes,
        )

    def plot(self, *, axes=None) -> "SourceScoresDisplay":
        import matplotlib.pyplot as plt
        import numpy as np

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(11, 4))
        x = np.arange(len(self.names))
        ax = axes[0]
        ax.bar(x - 0.2, self.is_means, 0.4, yerr=self.is_stds, capsize=3, color="#66c2a5", label="IS (mean ± std over splits)")
        ax.bar(x + 0.2, self.improved, 0.4, color="#fc8d62", label="exp(I(y;x)), all samples")
        ax.axhline(self.num_classes, color="black", linestyle=":", label=f"K = {self.num_classes}")
        ax.set_xticks(x, self.names, rotation=15)
        ax.set_ylabel("score")
        ax.set_title("Inception Score per source")
        ax.legend(fontsize=8)
        ax = axes[1]
        ax.bar(x - 0.2, self.marginal_bits, 0.4, color="#8da0cb", label="H(y), marginal")
        ax.bar(x + 0.2, self.conditional_bits, 0.4, color="#e78ac3", label="E[H(y|x)], conditional")
        ax.axhline(math.log2(self.num_classes), color="black", linestyle=":", label=f"log2 K = {math.log2(self.num_classes):.2f}")
        ax.set_xticks(x, self.names, rotation=15)
        ax.set_ylabel("bits")
        ax.set_title("Entropies per source")
        ax.legend(fontsize=8)
        self.axes_ = axes
        self.figure_ = axes[0].figure
        return self


def new_run_dir(root: Path) -> Path:
    """``root/<UTC timestamp>``, with a numeric suffix if that folder exists."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    candidate = root / stamp
    suffix = 2
    while candidate.exists():
        candidate = root / f"{stamp}-{suffix}"
        suffix += 1
    return candidate


def run_audit(*, out: Path | None = None, outputs_root: Path = Path("outputs"), classifier_name: str = "digits",
              seed: int = 0, progress: bool = True) -> AuditReport:
    """Score every audit source with ``classifier_name`` and write the report folder."""
    started = time.perf_counter()
    out_dir = Path(out) if out is not None else new_run_dir(Path(outputs_root))
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"--out {out_dir} exists and is not a folder; choose another path")
    classifier = load_classifier(classifier_name)
    reports = []
    for spec in AUDIT_SOURCES:
        source = open_images(spec, n=AUDIT_NOISE_SAMPLES if spec.startswith("noise:") else None, seed=seed,
                             image_size=classifier.input_size)
        reports.append(score_images(source, classifier, splits=AUDIT_SPLITS, seed=seed, progress=progress))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    display = SourceScoresDisplay.from_reports(reports).plot()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_figure_atomic(display.figure_, out_dir / "source_scores.png")
    plt.close(display.figure_)
    report = AuditReport(
        out_dir=out_dir,
        classifier=classifier.describe(),
        seed=seed,
        scores=reports,
        seconds=time.perf_counter() - started,
        figures={"source_scores": "source_scores.png"},
    )
    write_json_atomic(out_dir / "report.json", report.to_dict())
    return report
