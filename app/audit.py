"""``isgame audit`` (``isgame.audit()``): run every score, attack and probe on a domain; write one report.

The domain is the embedded digits default unless the caller passes another (:func:`isgame.load_domain`):
any classifier with its training images and held-out real images.

Writes into ``outputs/<run-id>/`` (or ``out``), each file atomically: ``report.json`` and the
PNG figures of every section. A section that fails leaves the files of earlier sections intact.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from isgame import defaults
from isgame.app.attack_commands import BoundedReport, InflateReport, ToyReport, run_bounded, run_inflate, run_toy
from isgame.app.cost import CostEstimate, estimate_cost
from isgame.app.figures import figure_layout, save_display, use_file_backend
from isgame.app.outputs import prepare_out_dir
from isgame.app.probe_commands import PROBE_NAMES, ProbeReport, run_matrix, run_probe
from isgame.app.report_html import render_report_html
from isgame.app.robustness_command import RobustnessReport, run_robustness
from isgame.scoring.domains import AUTO, Domain, load_domain
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.notes import Note
from isgame.scoring.pipeline import ScoreReport, score_images
from isgame.scoring.plotting import Display
from isgame.scoring.provenance import domain_provenance
from isgame.scoring.results import with_provenance
from isgame.scoring.runtime.atomic_io import write_json_atomic, write_text_atomic
from isgame.scoring.sources.samples import noise_source, tensor_source

AUDIT_NOISE_SAMPLES = defaults.INFLATE_SAMPLES
AUDIT_INFLATE_STEPS = defaults.INFLATE_STEPS
#: the fewest generated samples per section (the memorisation probe's C_T needs a cell of 21)
AUDIT_MIN_SAMPLES = 21
AUDIT_SPLITS = defaults.SPLITS
AUDIT_TOY_SAMPLES = 100_000
#: the audit's matrix takes fewer resampling draws per cell than ``isgame matrix``, to keep within its budget
AUDIT_MATRIX_BOOTSTRAP = defaults.AUDIT_MATRIX_DRAWS
#: ``fast=True``, the one-minute profile: generated samples per section (noise scored and attacked, the bounded
#: sweep's real images, probe and matrix samples) and bootstrap draws per matrix cell, unless given. 200 is a
#: multiple of 10 splits x 10 classes: with 25 samples a split, no split of the cycling targets is uniform and the
#: inflated IS of the digits stops at 9.80 instead of reaching 0.999 K.
AUDIT_FAST_SAMPLES = 200
AUDIT_FAST_BOOTSTRAP = defaults.AUDIT_FAST_DRAWS
#: the fast profile's bounded sweep: L∞ only, the norm the literature reports (the full audit adds L2)
AUDIT_FAST_NORMS = ("linf",)
#: the leaderboard's reduced size in the audit: images per set, PGD steps per ε, its L∞ grid (/255), bisection steps
#: (``isgame robustness`` itself: 200 images, 10 steps, 0..32/255 in 7 points, 3 bisection steps)
AUDIT_LEADERBOARD_SAMPLES, AUDIT_LEADERBOARD_STEPS = 100, 5
AUDIT_LEADERBOARD_GRID_255, AUDIT_LEADERBOARD_BISECTION = (0, 2, 8, 32), 1


@dataclass(frozen=True)
class AuditReport:
    """Every section of one audit run, and where it was written."""

    out_dir: Path
    classifier: dict[str, object]
    seed: int
    scores: list[ScoreReport]
    inflate: InflateReport | None
    bounded: BoundedReport | None
    toy: ToyReport
    probes: dict[str, ProbeReport]
    matrix: ProbeReport
    seconds: float
    section_seconds: dict[str, float]
    figures: dict[str, str] = field(default_factory=dict)
    #: the leaderboard at the audit's reduced size (None when the attacks were skipped)
    robustness: RobustnessReport | None = None
    #: per figure, its smallest text in CSS px at the width report.html shows it (None: no text, an image grid)
    figures_min_text_px: dict[str, float | None] = field(default_factory=dict)
    domain: dict[str, object] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)
    provenance: dict[str, object] | None = None  # how the result was made (isgame.scoring.provenance)

    def headline(self) -> dict[str, object] | None:
        """How far IS was inflated, by what, and how fast, and the three numbers (:meth:`headline_numbers`); None
        when the attacks were skipped."""
        if self.inflate is None:
            return None
        r = self.inflate.result
        return {
            "numbers": self.headline_numbers(),
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

    def headline_numbers(self) -> dict[str, dict[str, object]]:
        """The audit in three numbers: the inflate steps that take noise to 0.999 K; the smallest L∞ ε (refined by
        bisection) that lifts the held-out real images' IS by 5%; replayed training images against held-out ones."""
        numbers = {}
        if self.inflate is not None:
            r = self.inflate.result
            numbers["noise_to_k"] = {"steps": r.steps_to_fraction_of_k(0.999), "from_is": r.initial_is,
                                     "to_is": r.final_is, "num_classes": r.num_classes}
        sweep = next((s for s in self.bounded.sweeps if s.norm == "linf"), None) if self.bounded else None
        if sweep is not None and "5" in sweep.thresholds:
            search = sweep.thresholds["5"]
            numbers["epsilon_for_5_percent"] = {"norm": "linf", "epsilon": search.epsilon, "bracket": search.bracket,
                                                "clean_is": sweep.clean_score, "target_is": search.target,
                                                "largest_epsilon": sweep.epsilons[-1]}
        held_out, train = self.scores[0].result.is_mean, self.scores[1].result.is_mean
        numbers["training_replay"] = {"train_is": train, "held_out_is": held_out,
                                      "percent_above_held_out": 100 * (train / held_out - 1)}
        return numbers

    def to_dict(self) -> dict[str, object]:
        return with_provenance({
            "out_dir": str(self.out_dir),
            "classifier": self.classifier,
            "seed": self.seed,
            "seconds": self.seconds,
            "section_seconds": self.section_seconds,
            "headline": self.headline(),
            "scores": [score.to_dict() for score in self.scores],
            "inflate": None if self.inflate is None else self.inflate.to_dict(),
            "bounded": None if self.bounded is None else self.bounded.to_dict(),
            "toy": self.toy.to_dict(),
            "probes": {name: probe.to_dict() for name, probe in self.probes.items()},
            "matrix": self.matrix.to_dict(),
            "robustness": None if self.robustness is None else self.robustness.to_dict(),
            "figures": self.figures,
            "figures_min_text_px": self.figures_min_text_px,
            "domain": self.domain,
            "settings": self.settings}, self.provenance)


@dataclass
class SourceScoresDisplay(Display):
    """Two panels: IS and exp(I) per source against K; H(y) and E[H(y|x)] in bits against log2 K."""

    figsize = (11, 4)
    panels = 2

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

    def draw(self, axes) -> None:
        import numpy as np
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


def _score_sources(domain: Domain, folder: Path, *, n_noise: int, seed: int) -> list[ScoreReport]:
    """IS of the domain's real and training images and of uniform and Gaussian noise of its shape."""
    channels, height, width = domain.image_shape
    # The training images in a seeded order too, as the real ones: a class-per-folder source reads class by class.
    train = domain.train[torch.from_numpy(np.random.default_rng(seed).permutation(domain.train.shape[0]))]
    sources = [tensor_source(domain.real_source, domain.real), tensor_source(domain.train_source, train)] + [
        noise_source(kind, n=n_noise, seed=seed, image_size=(height, width), channels=channels)
        for kind in ("uniform", "gaussian")]
    reports = [score_images(source, domain.classifier, splits=min(AUDIT_SPLITS, source.num_samples), seed=seed,
                            progress=False) for source in sources]
    use_file_backend()
    save_display(SourceScoresDisplay.from_reports(reports).plot(), folder / "source_scores.png")
    return reports


def audit_cost(domain: Domain, *, n: int, steps: int, attack: bool = True) -> CostEstimate:
    """Image passes the audit makes through the classifier (f+b = 3 passes), timed on this machine (work outside
    the network is not counted; passes in small batches cost more per image than the timing's):
    the scores, four inflate runs of ``n`` noise images for ``steps`` steps, the bounded sweep's PGD, the probes
    and the matrix's 17 games with its attacks."""
    real, train = domain.real.shape[0], domain.train.shape[0]
    matrix_n = min(real, train, 540, n)
    scores = real + train + 2 * n
    # The probes, forward only: sensitivity scores three sets (real, KDE, noise) under 17 weights, 6 preprocessing
    # variants and 4 JPEG settings; memorisation the replays and six KDE bandwidths; noise and domain, their rows.
    sets = min(n, real) + 2 * n
    probes = 27 * sets + 6 * train + 2 * real + 10 * n + 800
    # 17 games through the classifier and up to two auxiliary ones, three pools of 5n, the train and real sets.
    matrix = 3 * 17 * matrix_n + 3 * 5 * matrix_n + 3 * (train + real)
    if attack:
        inflate = 4 * 3 * n * steps  # four step rules, f+b = 3 passes, an upper bound (samples stop early)
        # Two norms, six ε > 0, each: three strategies of 10 steps, the own-class and cycling PGD of 20; then three
        # thresholds of two bisections, each up to three strategies.
        strategy, comparison = min(steps, 10), min(steps, 20)
        bounded = 2 * min(real, n) * 3 * (6 * (3 * strategy + 2 * comparison) + 3 * 2 * 3 * strategy)
        # inflate 30, the FID feature attack 60, the ε-bounded game at 8/255: three strategies of 10 + own-class PGD 20
        matrix += 3 * matrix_n * (min(steps, 30) + min(steps, 60) + 3 * min(steps, 10) + min(steps, 20))
        scores += inflate + bounded
    passes = scores + probes + matrix
    return estimate_cost(domain.classifier, domain.image_shape, passes)


def audit(*, out: Path | None = None, outputs_root: Path = Path("outputs"), classifier_name: str = defaults.CLASSIFIER,
          seed: int = defaults.SEED, progress: bool = True, domain: Domain | None = None, n: int | None = None,
          steps: int | None = None, attack: bool = True, announce=None,
          matrix_options: dict | None = None, fast: bool = False) -> AuditReport:
    """Run every section on ``domain`` (default: ``classifier_name``'s built-in domain) and write the report folder.

    ``n`` sets the generated samples per section (noise scored and attacked, probe and matrix samples; default
    1000 noise images and each probe's own default), ``steps`` the gradient steps of every attack (default: each
    attack's own); both shrink a run on a slow classifier; ``attack=False`` skips every attack (the inflate and
    bounded sections, the noise probe's attacked row, the matrix's attack games). ``announce`` receives the cost
    estimate of a long run. ``matrix_options`` go to the matrix (``bootstrap``, default
    :data:`AUDIT_MATRIX_BOOTSTRAP`; ``alpha``; ``second_classifier``; ``robust_classifier``). ``fast=True`` is the
    one-minute profile: ``n`` defaults to :data:`AUDIT_FAST_SAMPLES`, the matrix's bootstrap to
    :data:`AUDIT_FAST_BOOTSTRAP`, and the bounded sweep is L∞ only; every section still runs, on fewer samples,
    so its figures are noisier (the bounded sweep's thresholds and the matrix's standard errors above all);
    ``settings`` records the profile.
    """
    if n is not None and n < AUDIT_MIN_SAMPLES:
        raise InvalidInputError(f"{parameter('n')} must be >= {AUDIT_MIN_SAMPLES} (the memorisation probe's C_T needs "
                                f"a k-means cell of 21 samples), got {n}")
    if steps is not None and steps < 1:
        raise InvalidInputError(f"{parameter('steps')} must be >= 1, got {steps}")
    started = time.perf_counter()
    if fast:
        n = AUDIT_FAST_SAMPLES if n is None else n
        matrix_options = {"bootstrap": AUDIT_FAST_BOOTSTRAP, **(matrix_options or {})}
    domain = _ordered_domain(load_domain(classifier_name) if domain is None else domain, seed=seed, n=n,
                             steps=steps, attack=attack, announce=announce)
    folder = prepare_out_dir(out, outputs_root=outputs_root, label="audit")
    sections = _sections(domain, folder, seed=seed, n=n, steps=steps, attack=attack, fast=fast,
                         matrix_options={"bootstrap": AUDIT_MATRIX_BOOTSTRAP, **(matrix_options or {})})
    results, timings = _run_sections(sections, progress=progress)
    probes = {name: results[f"probe-{name}"] for name in PROBE_NAMES}
    figures = _figures(results, probes)
    report = AuditReport(
        out_dir=folder, classifier=domain.classifier.describe(), seed=seed, scores=results["scores"],
        inflate=results.get("inflate"), bounded=results.get("bounded"), toy=results["toy"], probes=probes,
        matrix=results["matrix"], robustness=results.get("robustness"),
        seconds=time.perf_counter() - started, section_seconds=timings, figures=figures,
        figures_min_text_px={key: figure_layout(folder / name)["min_text_px"] for key, name in figures.items()},
        domain=domain.describe(), settings={"n": n, "steps": steps, "attack": attack, "fast": fast,
                  "matrix_bootstrap": results["matrix"].result.bootstrap},
        provenance=domain_provenance("audit", domain, seed=seed, n=n).to_dict(),
    )
    payload = report.to_dict()
    write_json_atomic(folder / "report.json", payload)
    write_text_atomic(folder / "report.html", render_report_html(payload, folder))
    return report


def _ordered_domain(domain: Domain, *, seed: int, n: int | None, steps: int | None, attack: bool,
                    announce) -> Domain:
    """``domain`` with its real images in a seeded random order, so that no stored class order decides a figure;
    ``announce`` hears why (a clustered stored order) and the cost estimate of a long run."""
    ordered = domain.in_seeded_order(seed)
    if announce is not None:
        for note in ordered.notes[len(domain.notes):]:
            announce(note)
        cost = audit_cost(ordered, n=AUDIT_NOISE_SAMPLES if n is None else n,
                          steps=AUDIT_INFLATE_STEPS if steps is None else steps, attack=attack)
        if cost.worth_announcing:
            announce(Note(cost.describe("the audit", f"{parameter('n')}, {parameter('steps')} and "
                                                     f"{parameter('attack', 'False')}")))
    return ordered


def _run_sections(sections: dict, *, progress: bool) -> tuple[dict, dict[str, float]]:
    """Each section in order (a section reads the results before it), with a progress bar; results and seconds."""
    from isgame.scoring.runtime.progress import progress_bar

    results, timings = {}, {}
    with progress_bar("audit", total=len(sections), batches=len(sections), enabled=progress) as advance:
        for name, run in sections.items():
            tick = time.perf_counter()
            results[name] = run(results)
            timings[name] = time.perf_counter() - tick
            advance(1)
    return results, timings


def _sections(domain: Domain, folder: Path, *, seed: int, n: int | None, steps: int | None, attack: bool,
              matrix_options: dict, fast: bool = False) -> dict:
    """Each section as a call on the results so far, in report order."""
    from isgame.probes.matrix.games import ATTACK_GAMES, GAMES

    n_noise = AUDIT_NOISE_SAMPLES if n is None else n
    norms = AUDIT_FAST_NORMS if fast else ("linf", "l2")
    sections = {"scores": lambda results: _score_sources(domain, folder, n_noise=n_noise, seed=seed)}
    if attack:
        sections["inflate"] = lambda results: run_inflate(
            domain=domain, out_dir=folder, n=n_noise, seed=seed, compare=True, progress=False,
            steps=AUDIT_INFLATE_STEPS if steps is None else steps,
            robust_classifier=domain.auxiliary_classifier("robust", matrix_options.get("robust_classifier", AUTO)))
        # The older cycling-target PGD beside the L∞ sweep only: it shows the old attack losing, once.
        sections["bounded"] = lambda results: run_bounded(domain=domain, out_dir=folder, norms=norms,
                                                          seed=seed, n=n, steps=steps, baseline_steps=steps,
                                                          cycling_norms=("linf",))
    sections["toy"] = lambda results: run_toy(out_dir=folder, n=AUDIT_TOY_SAMPLES, seed=seed)
    for probe_name in PROBE_NAMES:
        # The noise baselines reuse the inflate section's attacked noise instead of attacking again.
        sections[f"probe-{probe_name}"] = lambda results, probe_name=probe_name: run_probe(
            probe_name, domain=domain, out_dir=folder, seed=seed, n=n, steps=steps, attack=attack,
            inflated=results["inflate"].result.images if probe_name == "noise" and attack else None)
    games = GAMES if attack else {name: play for name, play in GAMES.items() if name not in ATTACK_GAMES}
    # The matrix plays at most as many samples as there are real and training images.
    matrix_n = None if n is None else min(n, domain.real.shape[0], domain.train.shape[0])
    sections["matrix"] = lambda results: run_matrix(domain=domain, out_dir=folder, seed=seed, n=matrix_n, steps=steps,
                                                    games=games, **matrix_options)
    if attack:
        auxiliary = {role: matrix_options[role] for role in ("second_classifier", "robust_classifier")
                     if role in matrix_options}
        sections["robustness"] = lambda results: run_robustness(
            domain=domain, out_dir=folder, seed=seed, progress=False,
            n=min(AUDIT_LEADERBOARD_SAMPLES, domain.real.shape[0], n or AUDIT_LEADERBOARD_SAMPLES),
            steps=AUDIT_LEADERBOARD_STEPS if steps is None else min(steps, AUDIT_LEADERBOARD_STEPS),
            epsilons=[e / 255 for e in AUDIT_LEADERBOARD_GRID_255], bisection_steps=AUDIT_LEADERBOARD_BISECTION,
            alpha=matrix_options.get("alpha", defaults.ALPHA), **auxiliary)
    return sections


def _figures(results: dict, probes: dict[str, ProbeReport]) -> dict[str, str]:
    figures = {"source_scores": "source_scores.png"}
    if "inflate" in results:
        figures.update({f"inflate_{k}": v for k, v in results["inflate"].files.items() if v.endswith(".png")})
        figures.update({f"bounded_{k}": v for k, v in results["bounded"].files.items()})
    figures.update({f"toy_{k}": v for k, v in results["toy"].files.items()})
    figures.update({f"matrix_{k}": v for k, v in results["matrix"].files.items()})
    if "robustness" in results:
        figures["robustness_figure"] = results["robustness"].files["figure"]
    for name, probe in probes.items():
        figures.update({f"{name}_{k}": v for k, v in probe.files.items()})
    return figures


def headline_sentence(numbers: dict[str, dict[str, object]], noun: str = "digits") -> str:
    """The three numbers in one line: noise -> K in n steps; the ε for +5% on held-out data; replay against it."""
    parts = []
    if "noise_to_k" in numbers:
        k = numbers["noise_to_k"]
        steps = "not within the budget" if k["steps"] is None else f"{k['steps']} step{'' if k['steps'] == 1 else 's'}"
        parts.append(f"noise -> 0.999 K in {steps} (IS {k['from_is']:.2f} -> {k['to_is']:.3f} of {k['num_classes']})")
    if "epsilon_for_5_percent" in numbers:
        e = numbers["epsilon_for_5_percent"]
        where = (f"not within L∞ ε <= {e['largest_epsilon'] * 255:.3g}/255" if e["epsilon"] is None else
                 f"at L∞ ε = {e['epsilon'] * 255:.3g}/255 (bracket {e['bracket'][0] * 255:.3g}-"
                 f"{e['bracket'][1] * 255:.3g})")
        parts.append(f"held-out {noun} +5% (IS {e['clean_is']:.3f} -> {e['target_is']:.3f}) {where}")
    r = numbers["training_replay"]
    parts.append(f"replayed training {noun} score {r['train_is']:.3f} against {r['held_out_is']:.3f} held out "
                 f"({r['percent_above_held_out']:+.1f}%)")
    return "; ".join(parts) + "."


def print_audit_summary(report: AuditReport, console) -> None:
    """The headline, then one table per section, then where the report is."""
    from isgame.app.tables import PROBE_TABLES, bounded_table, inflate_table, matrix_table, score_table, toy_table

    h = report.headline()
    noun = report.domain.get("noun", "real images")
    if h is None:
        console.print("[bold]Headline:[/bold] the attacks were skipped; the probes and the matrix without its "
                      "attack games follow.")
    else:
        console.print(f"[bold]Headline in three numbers:[/bold] {headline_sentence(h['numbers'], noun)}")
        console.print(
            f"[bold]Headline:[/bold] {h['method']} lifted IS from {h['noise_is']:.3f} to {h['inflated_is']:.4f} "
            f"(K = {h['num_classes']}; real held-out {noun} {h['real_is']:.3f}), past 0.999 K after "
            f"{h['steps_to_999_of_k']} of {h['steps']} steps, {h['seconds']:.2f} s, "
            f"{h['gradient_evaluations_per_sample']:.2f} gradient evaluations per sample; "
            f"saved as uint8 it still scores {h['inflated_is_uint8']:.4f}."
        )
    console.print(score_table(report.scores, title=f"scores on the domain of {report.classifier['name']}"))
    if report.inflate is not None:
        console.print(inflate_table(report.inflate))
        console.print(bounded_table(report.bounded))
    console.print(toy_table(report.toy))
    for name, probe in report.probes.items():
        console.print(PROBE_TABLES[name](probe))
    console.print(matrix_table(report.matrix))
    console.print(f"report written to {report.out_dir}/report.json and report.html ({report.seconds:.1f} s)")
