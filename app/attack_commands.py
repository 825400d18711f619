"""Library entry points behind ``isgame attack inflate``, ``isgame attack bounded`` and ``isgame toy``.

Each runs its experiment, writes its arrays and figures into a folder (atomically) and returns a
result with ``to_dict()``. They raise :class:`~scoring.errors.IsgameError` and never exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from isgame import defaults
from isgame.app.figures import save_display, save_image_grid, save_images_npz, use_file_backend
from isgame.app.outputs import prepare_out_dir
from isgame.attacks.ball_ascent import AUTO, maximise_score
from isgame.attacks.ball_ascent_result import BoundedAttackDisplay, BoundedAttackResult, PerturbationGridDisplay
from isgame.attacks.inflate import InflateAttack
from isgame.attacks.inflate_result import InflateResult, InflateTraceDisplay
from isgame.attacks.robust_inflate import (
    ROBUST_INFLATE_SAMPLES,
    RobustInflateComparison,
    RobustInflateDisplay,
    robust_inflate_comparison,
)
from isgame.attacks.score_protocol import ScoreProtocol
from isgame.attacks.toy import ToyDensityDisplay, ToyResult, ToyScoresDisplay, toy_counterexample
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.domains import Domain, default_sources, load_domain
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.pipeline import classify
from isgame.scoring.provenance import input_record, make_provenance, tensor_record
from isgame.scoring.results import with_provenance
from isgame.scoring.sources.samples import noise_source, open_images

#: The variants ``--compare`` runs beside the default, with the settings measured best for each.
COMPARISON_VARIANTS = {
    "sign": {"optimizer": "sign", "step_size": 0.05},
    "adam-logit": {"optimizer": "adam-logit", "step_size": 0.05},
    "batch-MI": {"objective": "mutual-information", "step_size": 0.05},
}


def real_held_out_is(classifier, *, splits: int, images) -> float:
    """Classic IS of real held-out ``images`` (N, C, H, W) under ``classifier``, ``splits`` splits (at most one per
    image)."""
    return inception_score(classify(classifier, images), splits=min(splits, images.shape[0]), track_stderr=False).is_mean


def attack_domain(domain: Domain | None, classifier_name: str, weights: Path | None, real: str | None, *,
                  seed: int) -> Domain:
    """The domain an attack command runs on: ``domain``, else ``classifier_name``'s with the real images of
    ``real`` (a seeded subsample of at most :data:`~isgame.defaults.MAX_REAL`; default: a built-in domain's own,
    none for another classifier)."""
    if domain is not None:
        return domain
    return load_domain(classifier_name, weights=weights, real=real, seed=seed, require_images=False)


@dataclass(frozen=True)
class InflateReport:
    """The default attack, optional comparison runs, the real IS, and the files written."""

    result: InflateResult
    real_is: float | None
    noise: str
    seed: int
    classifier: str
    comparison: dict[str, InflateResult] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, object] | None = None  # how the result was made (isgame.scoring.provenance)
    robust: RobustInflateComparison | None = None

    def to_dict(self) -> dict[str, object]:
        return with_provenance({
            **({} if self.robust is None else {"robust": self.robust.to_dict()}),
            **self.result.to_dict(),
            "classifier": self.classifier,
            "noise": self.noise,
            "seed": self.seed,
            "real_is": self.real_is,
            "comparison": {name: {k: v for k, v in r.to_dict().items() if k != "trace"} | {
                "trace_is": [t.is_mean for t in r.trace]} for name, r in self.comparison.items()},
            "files": self.files}, self.provenance)


def run_inflate(
    *,
    domain: Domain | None = None,
    out_dir: Path | None = None,
    classifier_name: str = defaults.CLASSIFIER,
    weights: Path | None = None,
    real: str | None = None,
    n: int = defaults.INFLATE_SAMPLES,
    noise: str = "uniform",
    steps: int = defaults.INFLATE_STEPS,
    seed: int = defaults.SEED,
    optimizer: str = "newton",
    threshold: float = defaults.INFLATE_THRESHOLD,
    splits: int = defaults.SPLITS,
    compare: bool = False,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    robust_classifier: ImageClassifier | None = None,
) -> InflateReport:
    """Attack ``n`` seeded noise images toward cycling targets; write images, grids and the trace plot into
    ``out_dir`` (None: write nothing).

    The noise has the domain's image shape (a classifier's alone: its input's); the real IS is that of the domain's real images (default: ``real``, a
    source spec, else a built-in domain's own), and None when there are none to compare with. With
    ``robust_classifier`` (an adversarially trained one) and training images, the first
    :data:`ROBUST_INFLATE_SAMPLES` noise images are also inflated through it, and a side-by-side grid and
    nearest-training-image distances are written.
    """
    if n < 1:
        raise InvalidInputError(f"{parameter('n')} must be >= 1, got {n}")
    if noise not in ("uniform", "gaussian"):
        raise InvalidInputError(f"{parameter('noise')} must be uniform or gaussian, got {noise!r}")
    # A domain's noise has its images' shape; a classifier's alone, its input's.
    shape = None if domain is None else domain.image_shape
    domain = attack_domain(domain, classifier_name, weights, real, seed=seed)
    classifier = domain.classifier
    shape = (classifier.input_channels, *classifier.input_size) if shape is None else shape
    start_source = noise_source(noise, n=n, seed=seed, image_size=shape[1:], channels=shape[0])
    start = start_source.load_all()
    options = dict(steps=steps, threshold=threshold, splits=min(splits, n))
    result = InflateAttack(optimizer=optimizer, checkpoint=checkpoint, resume=resume, progress=progress,
                           **options)(classifier, start)
    comparison = {name: InflateAttack(**options, **variant)(classifier, start)
                  for name, variant in COMPARISON_VARIANTS.items()} if compare else {}
    real_is = None if domain.real is None else real_held_out_is(classifier, splits=splits, images=domain.real)
    robust = None
    if robust_classifier is not None and domain.train is not None:
        robust = _robust_comparison(domain, robust_classifier, start, **options)
    files = {} if out_dir is None else _write_inflate(prepare_out_dir(out_dir), result, comparison, real_is, robust)
    provenance = make_provenance("attack inflate", classifier=classifier, seed=seed, n=n, splits=min(splits, n),
                                 shuffled=False, inputs=[input_record(start_source, role="start")])
    return InflateReport(result=result, real_is=real_is, noise=noise, seed=seed, classifier=domain.classifier_name,
                         comparison=comparison, files=files, provenance=provenance.to_dict(), robust=robust)


def _robust_comparison(domain: Domain, robust_classifier: ImageClassifier, start, *, steps: int, threshold: float,
                       splits: int) -> RobustInflateComparison:
    """The first :data:`ROBUST_INFLATE_SAMPLES` noise images inflated through the robust classifier too (in the
    domain's image space), beside the standard one."""
    from isgame.probes.matrix.games import ImageSpaceClassifier

    count = min(start.shape[0], ROBUST_INFLATE_SAMPLES)
    shape = tuple(domain.image_shape)
    through = robust_classifier if (robust_classifier.input_channels, *robust_classifier.input_size) == shape \
        else ImageSpaceClassifier(robust_classifier, shape)
    real = None if domain.real is None else domain.real[:count]
    return robust_inflate_comparison(domain.classifier, through, start[:count], train=domain.train, real=real,
                                     steps=steps, threshold=threshold, splits=splits)


def _write_inflate(folder: Path, result: InflateResult, comparison: dict[str, InflateResult], real_is: float | None,
                   robust: RobustInflateComparison | None) -> dict[str, str]:
    """The attacked images, their grids and the trace plot (and the robust comparison's grid), atomically."""
    save_images_npz(folder / "inflated.npz", result.images, start=result.start.numpy(), targets=result.targets.numpy())
    save_image_grid(folder / "inflated_grid.png", result.images)
    save_image_grid(folder / "noise_grid.png", result.start)
    use_file_backend()
    save_display(InflateTraceDisplay.from_results({result.optimizer: result, **comparison}, real_is).plot(),
                 folder / "inflate_trace.png")
    files = {"images": "inflated.npz", "grid": "inflated_grid.png", "noise_grid": "noise_grid.png",
             "trace": "inflate_trace.png"}
    if robust is not None:
        files["robust_grid"] = save_display(RobustInflateDisplay(robust).plot(), folder / "inflated_vs_robust.png")
    return files


@dataclass(frozen=True)
class BoundedReport:
    """One sweep per norm (:class:`~isgame.attacks.ball_ascent_result.BoundedAttackResult`), and the files written."""

    source: str
    classifier: str
    sweeps: list[BoundedAttackResult]
    files: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, object] | None = None  # how the result was made (isgame.scoring.provenance)

    def to_dict(self) -> dict[str, object]:
        return with_provenance({"source": self.source, "classifier": self.classifier,
                "sweeps": [s.to_dict() for s in self.sweeps], "files": self.files}, self.provenance)


def run_bounded(
    *,
    domain: Domain | None = None,
    out_dir: Path | None = None,
    classifier_name: str = defaults.CLASSIFIER,
    weights: Path | None = None,
    source: str | None = None,
    norms: tuple[str, ...] = ("linf",),
    epsilons: list[float] | None = None,
    n: int | None = None,
    steps: int | None = None,
    splits: int = defaults.SPLITS,
    seed: int = defaults.SEED,
    strategy: str = AUTO,
    baseline_steps: int | None = None,
    dialect: str = "openai",
    cycling_norms: tuple[str, ...] | None = None,
) -> BoundedReport:
    """Raise the IS of real images inside each ε-ball, per norm (:func:`~isgame.attacks.ball_ascent.maximise_score`,
    ``strategy`` auto by default; the IS of ``dialect`` with ``splits`` splits, :class:`~isgame.attacks.score_protocol.
    ScoreProtocol`); write the score-vs-ε plot and one grid per norm of clean, attacked and magnified perturbations.

    The images are ``source``'s (first ``n``), else the domain's real images (first ``n``), else the held-out
    digits for a digits classifier. ``steps`` sets the strategies' steps per ε (default 10) and
    ``baseline_steps`` the own-class baseline's and the cycling PGD's (default 20). The older cycling-target PGD is
    run beside it for the norms of ``cycling_norms`` (None: every norm). ``out_dir`` None writes nothing.
    """
    if domain is not None and source is None:
        classifier, source = domain.classifier, domain.real_source
        images = domain.real if n is None else domain.real[:n]
        record = tensor_record(source, images, role="images")
    else:
        classifier = domain.classifier if domain is not None else load_classifier(classifier_name, weights=weights)
        name = classifier_name if domain is None else domain.classifier_name
        source = default_sources(name)["real"] if source is None else source
        if source is None:
            raise InvalidInputError(f"classifier {name} has no built-in real images: pass {parameter('source')} "
                                    "(real images of its domain to perturb)")
        opened = open_images(source, n=n, seed=seed, image_size=classifier.input_size)
        images = opened.load_all(conform=lambda image: classifier.preprocess(image).float())
        record = input_record(opened, role="images")
    budget = {"steps": steps} if steps is not None else {}
    if baseline_steps is not None:
        budget["baseline_steps"] = baseline_steps
    protocol = ScoreProtocol(dialect, splits)
    sweeps = [maximise_score(classifier, images, norm=norm, epsilons=epsilons, strategy=strategy, protocol=protocol,
                             seed=seed, compare_cycling=cycling_norms is None or norm in cycling_norms, **budget)
              for norm in norms]
    files = {}
    if out_dir is not None:
        folder = prepare_out_dir(out_dir)
        use_file_backend()
        files["plot"] = save_display(BoundedAttackDisplay(sweeps).plot(), folder / "bounded_is_vs_eps.png")
        for sweep in sweeps:
            files[f"examples_{sweep.norm}"] = save_display(PerturbationGridDisplay(sweep).plot(),
                                                           folder / f"bounded_examples_{sweep.norm}.png")
    provenance = make_provenance("attack bounded", classifier=classifier, seed=seed, n=int(images.shape[0]),
                                 dialect=dialect, splits=protocol.split_count,
                                 shuffled=dialect in ("torch-fidelity", "torchmetrics"), inputs=[record])
    return BoundedReport(source=source, classifier=classifier_name if domain is None else domain.classifier_name,
                         sweeps=sweeps, files=files, provenance=provenance.to_dict())


@dataclass(frozen=True)
class ToyReport:
    result: ToyResult
    files: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, object] | None = None  # how the result was made (isgame.scoring.provenance)

    def to_dict(self) -> dict[str, object]:
        return with_provenance({**self.result.to_dict(), "files": self.files}, self.provenance)


def run_toy(*, out_dir: Path | None = None, n: int = 100_000, seed: int = defaults.SEED) -> ToyReport:
    """Score the 1-D counter-example's generators; write the density and bar figures."""
    result = toy_counterexample(n=n, seed=seed)
    files = {}
    if out_dir is not None:
        folder = prepare_out_dir(out_dir)
        use_file_backend()
        files = {"densities": save_display(ToyDensityDisplay().plot(), folder / "toy_densities.png"),
                 "scores": save_display(ToyScoresDisplay(result).plot(), folder / "toy_scores.png")}
    return ToyReport(result=result, files=files,
                     provenance=make_provenance("attack toy", num_classes=2, seed=seed, n=n).to_dict())
