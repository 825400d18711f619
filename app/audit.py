"""``isgame audit`` (``isgame.audit()``): run every score, attack and probe on the embedded default; write one report.

Writes into ``outputs/<run-id>/`` (or ``out``), each file atomically: ``report.json`` and the
PNG figures of every section. A section that fails leaves the files of earlier sections intact.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from isgame.app.attack_commands import BoundedReport, InflateReport, ToyReport, run_bounded, run_inflate, run_toy
from isgame.app.probe_commands import PROBE_NAMES, ProbeReport, run_matrix, run_probe
from isgame.app.report_html import render_report_html
from isgame.app.figures import save_display, use_file_backend
from isgame.app.outputs import prepare_out_dir
from isgame.scoring.atomic_io import write_json_atomic, write_text_atomic
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.pipeline import ScoreReport, score_images
from isgame.scoring.samples import open_images

AUDIT_SOURCES = ("digits:test", "digits:train", "noise:uniform", "noise:gaussian")
AUDIT_NOISE_SAMPLES = 1000
AUDIT_SPLITS = 10
AUDIT_TOY_SAMPLES = 100_000


@dataclass(frozen=True)
class AuditReport:
    """Every section of one audit run, and where it was written."""

    out_dir: Path
    classifier: dict[str, object]
    seed: int
    scores: list[ScoreReport]
    inflate: InflateReport
    bounded: BoundedReport
    toy: ToyReport
    probes: dict[str, ProbeReport]
    matrix: ProbeReport
    seconds: float
    section_seconds: dict[str, float]
    figures: dict[str, str] = field(default_factory=dict)

    def headline(self) -> dict[str, object]:
        """How far IS was inflated, by what, and how fast."""
        r = self.inflate.result
        return {
            "real_is": self.inflate.real_is,
            "noise_is": r.initial_is,
            "inflated_is": r.final_is,
            "inflated_is_uint8": r.final_is_uint8,
            "num_classes": r.num_classes,
            "method": f"{r.optimizer} steps toward cycling targets from {self.inflate.noise} noise",
            "steps": r.steps,
            "steps_to_999_of_k": r.steps_to_fraction_of_k(0.999),
            "seconds": r.seconds,
            "gradient_evaluations_per_sample": r.gradient_evaluations_per_sample,
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "out_dir": str(self.out_dir),
            "classifier": self.classifier,
            "seed": self.seed,
            "seconds": self.seconds,
            "section_seconds": self.section_seconds,
            "headline": self.headline(),
            "scores": [score.to_dict() for score in self.scores],
            "inflate": self.inflate.to_dict(),
            "bounded": self.bounded.to_dict(),
            "toy": self.toy.to_dict(),
            "probes": {name: probe.to_dict() for name, probe in self.probes.items()},
            "matrix": self.matrix.to_dict(),
            "figures": self.figures,
        }


@dataclass
class SourceScoresDisplay:
    """Two panels: IS and exp(I) per source against K; H(y) and E[H(y|x)] in bits against log2 K."""

    names: list[str]
    is_means: list[float]
    is_stds: list[float]
    improved: list[float]
    marginal_bits: list[float]
    conditional_bits: list[float]
    num_classes: int

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


def _score_sources(classifier, folder: Path, *, seed: int, progress: bool) -> list[ScoreReport]:
    reports = []
    for spec in AUDIT_SOURCES:
        source = open_images(spec, n=AUDIT_NOISE_SAMPLES if spec.startswith("noise:") else None, seed=seed,
                             image_size=classifier.input_size)
        reports.append(score_images(source, classifier, splits=AUDIT_SPLITS, seed=seed, progress=progress))
    use_file_backend()
    save_display(SourceScoresDisplay.from_reports(reports).plot(), folder / "source_scores.png")
    return reports


def audit(*, out: Path | None = None, outputs_root: Path = Path("outputs"), classifier_name: str = "digits",
              seed: int = 0, progress: bool = True) -> AuditReport:
    """Run every section with ``classifier_name`` and write the report folder."""
    from isgame.scoring.progress import progress_bar

    started = time.perf_counter()
    folder = prepare_out_dir(out, outputs_root=outputs_root, label="audit")
    classifier = load_classifier(classifier_name)
    timings: dict[str, float] = {}
    sections = {
        "scores": lambda: _score_sources(classifier, folder, seed=seed, progress=False),
        "inflate": lambda: run_inflate(out_dir=folder, classifier_name=classifier_name, n=AUDIT_NOISE_SAMPLES, seed=seed,
                                       compare=True, progress=False),
        "bounded": lambda: run_bounded(out_dir=folder, classifier_name=classifier_name, norms=("linf", "l2"), seed=seed),
        "toy": lambda: run_toy(out_dir=folder, n=AUDIT_TOY_SAMPLES, seed=seed),
    }
    for probe_name in PROBE_NAMES:
        # The noise baselines reuse the inflate section's attacked noise instead of attacking again.
        sections[f"probe-{probe_name}"] = lambda probe_name=probe_name: run_probe(
            probe_name, out_dir=folder, classifier_name=classifier_name, seed=seed,
            inflated=results["inflate"].result.images if probe_name == "noise" else None)
    sections["matrix"] = lambda: run_matrix(out_dir=folder, classifier_name=classifier_name, seed=seed)
    results = {}
    with progress_bar("audit", total=len(sections), batches=len(sections), enabled=progress) as advance:
        for name, run in sections.items():
            tick = time.perf_counter()
            results[name] = run()
            timings[name] = time.perf_counter() - tick
            advance(1)
    figures = {"source_scores": "source_scores.png"}
    figures.update({f"inflate_{k}": v for k, v in results["inflate"].files.items() if v.endswith(".png")})
    figures.update({f"bounded_{k}": v for k, v in results["bounded"].files.items()})
    figures.update({f"toy_{k}": v for k, v in results["toy"].files.items()})
    probes = {name: results[f"probe-{name}"] for name in PROBE_NAMES}
    figures.update({f"matrix_{k}": v for k, v in results["matrix"].files.items()})
    for name, probe in probes.items():
        figures.update({f"{name}_{k}": v for k, v in probe.files.items()})
    report = AuditReport(
        out_dir=folder, classifier=classifier.describe(), seed=seed, scores=results["scores"],
        inflate=results["inflate"], bounded=results["bounded"], toy=results["toy"], probes=probes, matrix=results["matrix"],
        seconds=time.perf_counter() - started, section_seconds=timings, figures=figures,
    )
    payload = report.to_dict()
    write_json_atomic(folder / "report.json", payload)
    write_text_atomic(folder / "report.html", render_report_html(payload, folder))
    return report


def print_audit_summary(report: AuditReport, console) -> None:
    """The headline, then one table per section, then where the report is."""
    from isgame.app.tables import PROBE_TABLES, bounded_table, inflate_table, matrix_table, score_table, toy_table

    h = report.headline()
    console.print(
        f"[bold]Headline:[/bold] {h['method']} lifted IS from {h['noise_is']:.3f} to {h['inflated_is']:.4f} "
        f"(K = {h['num_classes']}; real held-out digits {h['real_is']:.3f}), past 0.999 K after {h['steps_to_999_of_k']} "
        f"of {h['steps']} steps, "
        f"{h['seconds']:.2f} s, {h['gradient_evaluations_per_sample']:.2f} gradient evaluations per sample; "
        f"saved as uint8 it still scores {h['inflated_is_uint8']:.4f}."
    )
    console.print(score_table(report.scores, title="scores on the digits default"))
    console.print(inflate_table(report.inflate))
    console.print(bounded_table(report.bounded))
    console.print(toy_table(report.toy))
    for name, probe in report.probes.items():
        console.print(PROBE_TABLES[name](probe))
    console.print(matrix_table(report.matrix))
    console.print(f"report written to {report.out_dir}/report.json and report.html ({report.seconds:.1f} s)")
