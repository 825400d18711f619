"""``isgame check``: audit a claim on samples from any source, and write its page.

:func:`run_check` loads the samples (and the real reference and training images), asks
:func:`isgame.probes.claim.check_claim` for the evidence and the verdict, and writes the class
histogram, a sample grid and ``check.html`` into the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from isgame.app.figures import save_display, save_image_grid, use_file_backend
from isgame.app.outputs import prepare_out_dir
from isgame.app.probe_commands import ProbeReport
from isgame.app.report_html import render_check_html
from isgame.probes.claim import (DEFAULT_CLAIMED_DIALECT, DEFAULT_CLAIMED_SPLITS, ClassHistogramDisplay,
                                 check_claim)
from isgame.scoring.atomic_io import write_text_atomic
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.samples import open_images


@dataclass(frozen=True)
class CheckReport(ProbeReport):
    """The check's :class:`ProbeReport`, with what the loader decided about each source (``notes``)."""

    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "notes": list(self.notes)}


def run_check(samples: str, *, claimed: float, claimed_std: float = 0.0, claimed_splits: int = DEFAULT_CLAIMED_SPLITS,
              claimed_n: int | None = None, claimed_dialect: str = DEFAULT_CLAIMED_DIALECT,
              classifier_name: str = "digits", reference: str | None = None, train: str | None = None,
              n: int | None = None, seed: int = 0, out_dir: Path | None = None,
              value_range: str = "auto") -> CheckReport:
    """Load SAMPLES (and the real reference / training images), audit the claim, write check.json-ready data,
    a class-histogram figure, a sample grid and ``check.html`` into ``out_dir``.

    The result holds the two answers (``reproduced``, ``meaningful``); this function never exits.
    """
    classifier = load_classifier(classifier_name)
    notes: list[str] = []

    def load(spec: str, limit: int | None = None) -> torch.Tensor:
        source = open_images(spec, n=limit, seed=seed, image_size=classifier.input_size, value_range=value_range)
        notes.extend(source.notes)
        return source.load_all(conform=lambda image: classifier.preprocess(image).float())

    if reference is None and classifier_name in ("digits", "digits-b"):
        reference = "digits:test"  # the embedded default's own real held-out images
    if reference == samples:
        notes.append(f"{samples} is also the real reference: every sample's nearest real image is itself, so the "
                     "nearer-noise test passes by construction; pass other real images of the domain as the reference")
    result = check_claim(load(samples, n), claimed=claimed, claimed_std=claimed_std, claimed_splits=claimed_splits,
                         claimed_n=claimed_n, claimed_dialect=claimed_dialect, classifier_name=classifier_name,
                         reference=None if reference is None else load(reference),
                         train=None if train is None else load(train), seed=seed)
    folder = prepare_out_dir(out_dir, label="check")
    use_file_backend()
    files = {"histogram": save_display(ClassHistogramDisplay(result.class_histogram).plot(), folder / "check_histogram.png"),
             "samples": "check_samples.png", "html": "check.html"}
    save_image_grid(folder / files["samples"], result.examples, nrow=10)
    report = CheckReport(name="check", result=result, files=files, notes=tuple(notes))
    write_text_atomic(folder / "check.html", render_check_html(report.to_dict(), folder))
    return report
