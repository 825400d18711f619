"""Library entry points behind ``isgame probe memorization|noise|sensitivity|domain`` and ``isgame matrix``.

Each runs its probe on a classifier, writes its figure(s) atomically into a folder and returns
a report with ``to_dict()``. They raise :class:`~isgame.scoring.errors.IsgameError` and never exit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from isgame.app.figures import save_display, save_image_grid, use_file_backend
from isgame.app.outputs import prepare_out_dir
from isgame.probes.domain import DomainDisplay, domain_probe
from isgame.probes.matrix import RobustnessMatrixDisplay, robustness_matrix
from isgame.probes.memorization import MemorizationDisplay, memorization_probe
from isgame.probes.noise_baselines import NoiseBaselineDisplay, noise_baselines
from isgame.probes.sensitivity import SensitivityDisplay, sensitivity_probe
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.errors import InvalidInputError

PROBE_NAMES = ("memorization", "noise", "sensitivity", "domain")


@dataclass(frozen=True)
class ProbeReport:
    """One probe's result and the files it wrote (names relative to the folder)."""

    name: str
    result: object
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"probe": self.name, **self.result.to_dict(), "files": self.files}


def _memorization(classifier, folder, seed, inflated):
    result = memorization_probe(classifier, seed=seed)
    files = {"plot": save_display(MemorizationDisplay(result).plot(), folder / "memorization.png")}
    examples = torch.cat([images[:10] for images in result.examples.values()])
    save_image_grid(folder / "memorization_examples.png", examples, nrow=10)
    files["examples"] = "memorization_examples.png"
    return result, files


def _noise(classifier, folder, seed, inflated):
    result = noise_baselines(classifier, seed=seed, inflated=inflated)
    return result, {"plot": save_display(NoiseBaselineDisplay(result).plot(), folder / "noise_baselines.png")}


def _sensitivity(classifier, folder, seed, inflated):
    result = sensitivity_probe(classifier, seed=seed)
    return result, {"plot": save_display(SensitivityDisplay(result).plot(), folder / "sensitivity.png")}


def _domain(classifier, folder, seed, inflated):
    result = domain_probe(classifier, seed=seed)
    files = {"plot": save_display(DomainDisplay(result).plot(), folder / "domain.png")}
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
    use_file_backend()
    result, files = PROBES[name](classifier, folder, seed, inflated)
    return ProbeReport(name=name, result=result, files=files)


def run_matrix(*, out_dir: Path | None = None, classifier_name: str = "digits", seed: int = 0) -> ProbeReport:
    """Play every game against every metric; write the heatmap and example grids."""
    classifier = load_classifier(classifier_name)
    folder = prepare_out_dir(out_dir, label="matrix")
    use_file_backend()
    result = robustness_matrix(classifier, seed=seed)
    files = {"heatmap": save_display(RobustnessMatrixDisplay(result).plot(), folder / "matrix.png")}
    save_image_grid(folder / "matrix_examples.png", torch.cat(list(result.examples.values())), nrow=10)
    files["examples"] = "matrix_examples.png"
    return ProbeReport(name="matrix", result=result, files=files)
