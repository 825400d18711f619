"""Library entry points behind ``isgame probe memorization|noise|sensitivity|domain``.

Each runs its probe on a classifier, writes its figure(s) atomically into a folder and returns
a report with ``to_dict()``. They raise :class:`~scoring.errors.IsgameError` and never exit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import torch

from attacks.artifacts import save_image_grid
from probes.domain import DomainDisplay, domain_probe
from probes.matrix import RobustnessMatrixDisplay, robustness_matrix
from probes.memorization import MemorizationDisplay, memorization_probe
from probes.noise_baselines import NoiseBaselineDisplay, noise_baselines
from probes.sensitivity import SensitivityDisplay, sensitivity_probe
from scoring.atomic_io import close_figure, prepare_out_dir, save_figure_atomic
from scoring.classifiers import load_classifier
from scoring.errors import InvalidInputError
from scoring.samples import open_images

PROBE_NAMES = ("memorization", "noise", "sensitivity", "domain")


@dataclass(frozen=True)
class ProbeReport:
    """One probe's result and the files it wrote (names relative to the folder)."""

    name: str
    result: object
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"probe": self.name, **self.result.to_dict(), "files": self.files}


def _save(display, folder: Path, filename: str) -> str:
    save_figure_atomic(display.figure_, folder / filename)
    close_figure(display.figure_)
    return filename


def _memorization(classifier, folder, seed, inflated):
    result = memorization_probe(classifier, seed=seed)
    files = {"plot": _save(MemorizationDisplay.from_result(result).plot(), folder, "memorization.png")}
    examples = torch.cat([images[:10] for images in result.examples.values()])
    save_image_grid(folder / "memorization_examples.png", examples, nrow=10)
    files["examples"] = "memorization_examples.png"
    return result, files


def _noise(classifier, folder, seed, inflated):
    result = noise_baselines(classifier, seed=seed, inflated=inflated)
    return result, {"plot": _save(NoiseBaselineDisplay.from_result(result).plot(), folder, "noise_baselines.png")}


def _sensitivity(classifier, folder, seed, inflated):
    result = sensitivity_probe(classifier, seed=seed)
    return result, {"plot": _save(SensitivityDisplay.from_result(result).plot(), folder, "sensitivity.png")}


def _domain(classifier, folder, seed, inflated):
    result = domain_probe(classifier, seed=seed)
    files = {"plot": _save(DomainDisplay.from_result(result).plot(), folder, "domain.png")}
    save_image_grid(folder / "domain_examples.png", result.examples, nrow=10)
    files["examples"] = "domain_examples.png"
    return result, files


PROBES: dict[str, Callable] = {"memorization": _memorization, "noise": _noise, "sensitivity": _sensitivity,
                               "domain": _domain}


def run_probe(name: str, *, out_dir: Path | None = None, classifier_name: str = "digits", seed: int = 0,
              inflated: torch.Tensor | None = None) -> ProbeReport:
    """Run probe ``name`` (one of PROBE_NAMES) and write its figures into ``out_dir``."""
    if name not in PROBES:
        raise InvalidInputError(f"unknown probe {name!r}; choose one of {', '.join(PROBE_NAMES)}")
    classifier = load_classifier(classifier_name)
    folder = prepare_out_dir(out_dir, label=f"probe-{name}")
    matplotlib.use("Agg")
    result, files = PROBES[name](classifier, folder, seed, inflated)
    return ProbeReport(name=name, result=result, files=files)


def run_matrix(*, out_dir: Path | None = None, classifier_name: str = "digits", seed: int = 0) -> ProbeReport:
    """Play every game against every metric; write the heatmap and example grids."""
    classifier = load_classifier(classifier_name)
    folder = prepare_out_dir(out_dir, label="matrix")
    matplotlib.use("Agg")
    result = robustness_matrix(classifier, seed=seed)
    files = {"heatmap": _save(RobustnessMatrixDisplay.from_result(result).plot(), folder, "matrix.png")}
    save_image_grid(folder / "matrix_examples.png", torch.cat(list(result.examples.values())), nrow=10)
    files["examples"] = "matrix_examples.png"
    return ProbeReport(name="matrix", result=result, files=files)


def run_check(samples: str, *, claimed: float, claimed_std: float = 0.0, classifier_name: str = "digits",
              reference: str | None = None, train: str | None = None, n: int | None = None, seed: int = 0,
              out_dir: Path | None = None) -> ProbeReport:
    """Load SAMPLES (and the real reference / training images), audit the claim, write check.json-ready data,
    a class-histogram figure, a sample grid and ``check.html`` into ``out_dir``."""
    from probes.check import check_claim
    from probes.report_html import render_check_html
    from scoring.atomic_io import write_text_atomic

    classifier = load_classifier(classifier_name)
    size = classifier.input_size

    def load(spec: str, limit: int | None = None) -> torch.Tensor:
        return open_images(spec, n=limit, seed=seed, image_size=size).load_all(
            conform=lambda image: classifier.preprocess(image).float())

    if reference is None and classifier_name in ("digits", "digits-b"):
        reference = "digits:test"  # the embedded default's own real held-out images
    result = check_claim(load(samples, n), claimed=claimed, claimed_std=claimed_std, classifier_name=classifier_name,
                         reference=None if reference is None else load(reference),
                         train=None if train is None else load(train), seed=seed)
    folder = prepare_out_dir(out_dir, label="check")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(range(len(result.class_histogram)), result.class_histogram, color="#8da0cb")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("samples")
    ax.set_title("class histogram of the samples")
    save_figure_atomic(figure, folder / "check_histogram.png")
    close_figure(figure)
    save_image_grid(folder / "check_samples.png", result.examples, nrow=10)
    files = {"histogram": "check_histogram.png", "samples": "check_samples.png", "html": "check.html"}
    report = ProbeReport(name="check", result=result, files=files)
    write_text_atomic(folder / "check.html", render_check_html(report.to_dict(), folder))
    return report
