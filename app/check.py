"""``isgame check``: audit a claim on samples from any source, and write its page.

:func:`run_check` loads the samples (and the real reference and training images), asks
:func:`isgame.probes.claim.check_claim` for the evidence and the verdict, and writes the class
histogram, a sample grid and ``check.html`` into the run folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from isgame import defaults
from isgame._moved import warn_renamed
from isgame.app.cost import estimate_cost
from isgame.app.figures import save_display, save_image_grid, use_file_backend
from isgame.app.outputs import prepare_out_dir
from isgame.app.probe_commands import ProbeReport
from isgame.app.report_html import render_check_html
from isgame.probes.claim import (
    CEILING_STEPS,
    DEFAULT_CLAIMED_DIALECT,
    DEFAULT_CLAIMED_SPLITS,
    ClassHistogramDisplay,
    check_claim,
    check_cost_passes,
    validated_claim,
)
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.user import with_input_size
from isgame.scoring.domains import load_domain
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.notes import Note
from isgame.scoring.provenance import input_record, make_provenance, tensor_record
from isgame.scoring.runtime.atomic_io import write_text_atomic
from isgame.scoring.sources.samples import first_files_note, open_images


@dataclass(frozen=True)
class CheckReport(ProbeReport):
    """The check's :class:`ProbeReport`, with what the loader decided about each source (``notes``)."""

    notes: tuple[str, ...] = ()
    #: with a stats file as the real images: its path, N and the samples' FID against it
    reference_statistics: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        extra = {} if self.reference_statistics is None else {"reference_statistics": self.reference_statistics}
        return {**super().to_dict(), "notes": list(self.notes), **extra}


def run_check(samples: str, *, claimed: float, claimed_std: float = 0.0, claimed_splits: int = DEFAULT_CLAIMED_SPLITS,
              claimed_n: int | None = None, claimed_dialect: str = DEFAULT_CLAIMED_DIALECT,
              classifier_name: str = defaults.CLASSIFIER, reference: str | None = None, train: str | None = None,
              n: int | None = None, seed: int = defaults.SEED, out_dir: Path | None = None,
              value_range: str = "auto", weights: Path | None = None, real: str | None = None,
              steps: int = CEILING_STEPS, attack: bool = True,
              announce: Callable[[str], None] | None = None) -> CheckReport:
    """Load SAMPLES (and the real images and training images), audit the claim, write check.json-ready data,
    a class-histogram figure, a sample grid and ``check.html`` into ``out_dir`` (None: write nothing).

    The domain is ``classifier_name``'s (with ``weights``): ``real`` are held-out real images of it (default: a
    built-in domain's own, the digits' digits:test), at most :data:`~isgame.defaults.MAX_REAL` (a seeded
    subsample beyond); ``train`` at most :data:`~isgame.defaults.MAX_TRAIN`. ``reference`` is the older name of
    ``real`` (deprecated; removed in isgame 0.4). Images of another size than the samples are resized, with
    them, to the classifier's input (a note says so). ``steps`` and ``attack`` size the gaming ceiling;
    ``announce`` receives the cost estimate before a long run. The result holds the two answers (``reproduced``,
    ``meaningful``); this function never exits.
    """
    real = _real_or_reference(real, reference)
    notes: list[str] = []
    classifier_name = with_input_size(classifier_name, [samples, real, train], notes=notes)
    classifier = load_classifier(classifier_name, weights=weights)
    records: list[dict] = []
    source = open_images(samples, n=n, seed=seed, image_size=classifier.input_size, value_range=value_range)
    notes.extend(source.notes)
    sample_images = source.load_all(conform=lambda image: classifier.preprocess(image).float())
    records.append(input_record(source, role="samples"))
    # A bad claim is refused before the real images load and before any estimate is printed.
    validated_claim(sample_images, claimed=claimed, claimed_std=claimed_std, claimed_splits=claimed_splits,
                    claimed_n=claimed_n, claimed_dialect=claimed_dialect)
    # A claim's protocol takes the first N by design; a note says when those rows leave out whole class subfolders.
    if claimed_n is not None and claimed_n < sample_images.shape[0]:
        notes.extend(note for note in [first_files_note(samples, claimed_n, name="claimed_n")] if note)
    reference_stats = _reference_statistics(real, classifier, notes)
    domain = load_domain(classifier_name, weights=weights, network=classifier, require_images=False, seed=seed,
                         value_range=value_range, train=train, real=None if reference_stats is not None else real)
    if reference_stats is not None:  # the statistics serve FID; the tests on real images are not run
        domain = replace(domain, real=None, real_source=None)
    notes.extend(domain.notes)
    if domain.real_source == samples:
        notes.append(f"{samples} is also the real reference: every sample's nearest real image is itself, so the "
                     "nearer-noise test passes by construction; pass other real images of the domain as the reference")
    # Each set stays at its stored size: the classifier resizes it on the way in, and the resize variants are
    # recomputed from the samples as stored; the pixel tests bring the sets to one shape themselves.
    others = {name: images for name, images in (("reference", domain.real), ("train", domain.train))
              if images is not None}
    if announce is not None:
        _announce_cost(announce, classifier, sample_images, others, attack=attack, steps=steps)
    result = check_claim(sample_images, claimed=claimed, claimed_std=claimed_std, claimed_splits=claimed_splits,
                         claimed_n=claimed_n, claimed_dialect=claimed_dialect, classifier_name=classifier_name,
                         reference=others.get("reference"), train=others.get("train"), seed=seed, weights=weights,
                         classifier=classifier, steps=steps, attack=attack)
    provenance = _check_provenance(classifier, result, seed=seed, records=records, others=others,
                                   specs={"reference": domain.real_source, "train": train})
    notes.extend(_pixel_space_note(result.pixel_space))
    notes.extend(_order_note(samples, result))
    statistics = None if reference_stats is None else _fid_against(reference_stats, real, classifier, sample_images)
    return _write_check(result, out_dir, notes=notes, provenance=provenance.to_dict(), statistics=statistics)


def _real_or_reference(real: str | None, reference: str | None) -> str | None:
    """``real``, or its older name ``reference`` with a :class:`DeprecationWarning`; both at once must agree."""
    if reference is None:
        return real
    warn_renamed("run_check(reference=...)", "real=...", stacklevel=4)
    if real is not None and real != reference:
        raise InvalidInputError(f"{parameter('real')} and {parameter('reference')} name the same images; give one")
    return reference


def _write_check(result, out_dir: Path | None, *, notes: list, provenance: dict,
                 statistics: dict | None) -> CheckReport:
    """Write the class histogram, the sample grid and ``check.html`` into ``out_dir`` (None: write nothing); the
    report."""
    report = CheckReport(name="check", result=result, notes=tuple(notes), provenance=provenance,
                         reference_statistics=statistics)
    if out_dir is None:
        return report
    folder = prepare_out_dir(out_dir)
    use_file_backend()
    files = {"histogram": save_display(ClassHistogramDisplay(result.class_histogram).plot(),
                                       folder / "check_histogram.png"),
             "samples": "check_samples.png", "html": "check.html"}
    save_image_grid(folder / files["samples"], result.examples, nrow=10)
    report = replace(report, files=files)
    write_text_atomic(folder / "check.html", render_check_html(report.to_dict(), folder))
    return report


def _check_provenance(classifier, result, *, seed: int, records: list[dict], others: dict[str, torch.Tensor],
                      specs: dict[str, str | None]):
    """The check's provenance: the claim's protocol, the samples as streamed, the real and training images as held
    (at most MAX_REAL / MAX_TRAIN of :mod:`isgame.defaults`, a seeded subsample beyond)."""
    held = [tensor_record(specs[name], images, role=name) for name, images in others.items()]
    return make_provenance("check", classifier=classifier, seed=seed, dialect=result.protocol["dialect"],
                           n=result.protocol["n"], splits=result.protocol["splits"], inputs=[*records, *held])


def _order_note(samples: str, result) -> list[Note]:
    """The sample-order warning, when class-sorted samples meet the claim's contiguous splits."""
    order = result.sample_order
    if order is None or not order["warned"]:
        return []
    return [Note(f"{samples}: the predicted classes come in {order['runs']} runs where a random order gives "
                 f"{order['expected_runs']:.1f} ± {order['runs_std']:.1f} (z = {order['z']:.1f}): the samples look "
                 f"class-sorted, so each contiguous split of {result.protocol['dialect']} sees few classes; IS "
                 f"{order['is_contiguous']:.4f} as stored, {order['is_shuffled']:.4f} after a seeded shuffle "
                 f"(seed {order['seed']})")]


def _reference_statistics(reference: str | None, classifier, notes: list):
    """The stats file named as the real images (refused unless made with this classifier's settings), or None."""
    from isgame.scoring.metrics.fid import is_statistics_file
    from isgame.scoring.sources.stats_file import load_reference_stats

    if reference is None or not is_statistics_file(reference):
        return None
    stats = load_reference_stats(reference, classifier=classifier)
    notes.append(Note(f"{reference} holds feature statistics, not images: it serves the samples' FID against the real "
                      "images; the tests that need real images (nearer noise than real, the real images' E[H(y|x)], "
                      f"C_T and authenticity) are not run; pass real images as {parameter('real')} for them"))
    return stats


def _fid_against(stats, path: str, classifier, samples: torch.Tensor) -> dict[str, object]:
    from isgame.scoring.metrics.fid import features_to_statistics, statistics_to_fid
    from isgame.scoring.pipeline import classify_with_features

    features = classify_with_features(classifier, samples)[1].double().numpy()
    return {"path": str(path), "n": stats.statistics.n, "fid": statistics_to_fid(stats.statistics,
                                                                                 features_to_statistics(features))}


def _announce_cost(announce: Callable[[str], None], classifier, samples: torch.Tensor,
                   others: dict[str, torch.Tensor], *, attack: bool, steps: int) -> None:
    """Hand ``announce`` the check's cost estimate when the network alone would take long."""
    cost = estimate_cost(classifier, tuple(samples.shape[1:]), check_cost_passes(
        samples.shape[0], reference=others["reference"].shape[0] if "reference" in others else 0,
        attack=attack, steps=steps, resized=tuple(samples.shape[-2:]) != tuple(classifier.input_size)))
    if cost.worth_announcing:
        announce(Note(cost.describe(f"checking {samples.shape[0]} samples",
                                    f"{parameter('n')}, {parameter('steps')} and {parameter('attack', 'False')}")))


def _pixel_space_note(space: dict | None) -> list[str]:
    """A note when the sets differ in size, so the pixel tests compare them at the classifier's input."""
    if not space or not space["resized"]:
        return []
    listed = ", ".join(f"{name} {'x'.join(map(str, shape))}"
                       for name, shape in space["shapes"].items())
    return [f"images differ in size ({listed}): the pixel tests (nearer noise, C_T, authenticity, near-copies) "
            f"compare them at {space['at']} {'x'.join(map(str, space['shape']))}, the others resized to it; the "
            "scores read each set at its stored size"]
