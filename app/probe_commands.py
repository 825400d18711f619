"""Library entry points behind ``isgame probe memorization|noise|sensitivity|domain`` and ``isgame matrix``.

Each runs its probe on a classifier, writes its figure(s) atomically into a folder and returns
a report with ``to_dict()``. They raise :class:`~isgame.scoring.errors.IsgameError` and never exit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from isgame import defaults
from isgame.app.figures import save_display, save_image_grid, use_file_backend
from isgame.app.outputs import prepare_out_dir
from isgame.probes.domain import DomainDisplay, domain_probe
from isgame.probes.matrix import RobustnessMatrixDisplay, robustness_matrix
from isgame.probes.memorization import MemorizationDisplay, memorization_probe
from isgame.probes.noise_baselines import NoiseBaselineDisplay, noise_baselines
from isgame.probes.sensitivity import SensitivityDisplay, sensitivity_probe
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import AUTO, Domain, load_domain
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.provenance import domain_provenance
from isgame.scoring.results import with_provenance

PROBE_NAMES = ("memorization", "noise", "sensitivity", "domain")


@dataclass(frozen=True)
class ProbeReport:
    """One probe's result and the files it wrote (names relative to the folder)."""

    name: str
    result: object
    files: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, object] | None = None  # how the result was made (isgame.scoring.provenance)

    def to_dict(self) -> dict[str, object]:
        return with_provenance({"probe": self.name, **self.result.to_dict(), "files": self.files}, self.provenance)


@dataclass(frozen=True)
class ProbeSettings:
    """What shrinks or widens a probe run: ``n`` samples per generated set (None: each probe's default),
    ``steps`` of its attacks (None: default), a second classifier for the sensitivity probe's weights axis, and
    noise already attacked (the audit hands the inflate section's images to the noise baselines)."""

    seed: int = 0
    n: int | None = None
    steps: int | None = None
    classifier_b: ImageClassifier | None = None
    inflated: torch.Tensor | None = None
    attack: bool = True

    def sized(self, **extra) -> dict[str, object]:
        """Keyword arguments with ``n`` (and ``extra``) only where set, so each probe keeps its own defaults."""
        return {"seed": self.seed, **({} if self.n is None else {"n": self.n}),
                **{key: value for key, value in extra.items() if value is not None}}


def _memorization(domain, settings):
    result = memorization_probe(domain, **settings.sized())

    def write(folder):
        examples = torch.cat([images[:10] for images in result.examples.values()])
        save_image_grid(folder / "memorization_examples.png", examples, nrow=10)
        return {"plot": save_display(MemorizationDisplay(result).plot(), folder / "memorization.png"),
                "examples": "memorization_examples.png"}

    return result, write


def _noise(domain, settings):
    result = noise_baselines(domain, inflated=settings.inflated, attack=settings.attack,
                             **settings.sized(steps=settings.steps))
    return result, lambda folder: {"plot": save_display(NoiseBaselineDisplay(result).plot(),
                                                        folder / "noise_baselines.png")}


def _sensitivity(domain, settings):
    result = sensitivity_probe(domain, **settings.sized(classifier_b=settings.classifier_b))
    return result, lambda folder: {"plot": save_display(SensitivityDisplay(result).plot(), folder / "sensitivity.png")}


def _domain(domain, settings):
    result = domain_probe(domain, **settings.sized())

    def write(folder):
        save_image_grid(folder / "domain_examples.png", result.examples, nrow=10)
        return {"plot": save_display(DomainDisplay(result).plot(), folder / "domain.png"),
                "examples": "domain_examples.png"}

    return result, write


PROBES: dict[str, Callable] = {"memorization": _memorization, "noise": _noise, "sensitivity": _sensitivity,
                               "domain": _domain}


def write_figures(write: Callable[[Path], dict[str, str]], out_dir: Path | None) -> dict[str, str]:
    """``write(folder)`` into ``out_dir``, created (with the file backend), and the files it names; nothing is
    written, and no file named, when ``out_dir`` is None."""
    if out_dir is None:
        return {}
    folder = prepare_out_dir(out_dir)
    use_file_backend()
    return write(folder)


def run_probe(name: str, *, domain: Domain | None = None, out_dir: Path | None = None,
              classifier_name: str = defaults.CLASSIFIER, seed: int = defaults.SEED, inflated: torch.Tensor | None = None,
              n: int | None = None, steps: int | None = None, classifier_b: ImageClassifier | None = None,
              attack: bool = True) -> ProbeReport:
    """Run probe ``name`` (one of PROBE_NAMES) on ``domain`` (default: ``classifier_name``'s built-in domain), its real
    images in a seeded random order (:meth:`~isgame.scoring.domains.Domain.in_seeded_order`), and write its figures
    into ``out_dir`` (None: write nothing); ``n``, ``steps`` and ``classifier_b`` as in
    :class:`ProbeSettings`; ``attack=False`` leaves out what needs an attack (the noise baselines' inflated row)."""
    if name not in PROBES:
        raise InvalidInputError(f"unknown probe {name!r}; choose one of {', '.join(PROBE_NAMES)}")
    domain = (load_domain(classifier_name) if domain is None else domain).in_seeded_order(seed)
    settings = ProbeSettings(seed=seed, n=n, steps=steps, classifier_b=classifier_b, inflated=inflated, attack=attack)
    result, write = PROBES[name](domain, settings)
    files = write_figures(write, out_dir)
    provenance = domain_provenance(f"probe {name}", domain, seed=seed, n=n)
    return ProbeReport(name=name, result=result, files=files, provenance=provenance.to_dict())


#: the older name of :data:`isgame.defaults.MATRIX_DRAWS`
MATRIX_BOOTSTRAP = defaults.MATRIX_DRAWS


def run_matrix(*, domain: Domain | None = None, out_dir: Path | None = None,
               classifier_name: str = defaults.CLASSIFIER, seed: int = defaults.SEED, n: int | None = None,
               steps: int | None = None, games: dict | None = None, progress: bool = False,
               bootstrap: int = defaults.MATRIX_DRAWS, alpha: float = defaults.ALPHA, metrics: list[str] | None = None,
               second_classifier=AUTO, robust_classifier=AUTO) -> ProbeReport:
    """Play every game (or those of ``games``, name -> game) on ``domain`` against every metric (or ``metrics``)
    (``n`` samples per game, ``steps`` per attack game, ``bootstrap`` draws per cell, test level ``alpha``; the
    auxiliary classifiers as :func:`~isgame.probes.matrix.robustness_matrix` takes them); write the heatmap and
    example grids into ``out_dir`` (None: write nothing)."""
    domain = load_domain(classifier_name) if domain is None else domain
    result = robustness_matrix(domain, seed=seed, n=n, steps=steps, games=games, progress=progress,
                               bootstrap=bootstrap, alpha=alpha, metrics=metrics, second_classifier=second_classifier,
                               robust_classifier=robust_classifier)

    def write(folder: Path) -> dict[str, str]:
        save_image_grid(folder / "matrix_examples.png", torch.cat(list(result.examples.values())), nrow=10)
        return {"heatmap": save_display(RobustnessMatrixDisplay(result).plot(), folder / "matrix.png"),
                "examples": "matrix_examples.png"}

    files = write_figures(write, out_dir)
    provenance = domain_provenance("matrix", domain, seed=seed, n=n)
    return ProbeReport(name="matrix", result=result, files=files, provenance=provenance.to_dict())
