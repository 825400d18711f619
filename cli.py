"""The ``isgame`` command: typed options and one library call per command.

Library code raises :class:`scoring.errors.IsgameError`; only this module turns it into a
one-line message on stderr and a non-zero exit.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from isgame import defaults
from isgame._moved import REMOVAL_VERSION
from isgame.scoring.errors import IsgameError
from isgame.scoring.runtime.distributed import mark_failed

app = typer.Typer(
    name="isgame",
    help="Audit Inception Scores: score samples, game the score, probe what it cannot see.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")
EXIT_USER_ERROR = 2


class InputKind(str, Enum):
    images = "images"
    logits = "logits"
    probs = "probs"


# Help strings go through rich markup: write a literal "[" as "\\[" (tests/test_cli.py checks every help string).
# An option's help is one short line, so that it reads in an 80-column terminal (tests/test_cli.py checks that too);
# what needs more goes in the command's docstring (CLASSIFIER_HELP, which every command with --classifier shows).
CLASSIFIER_HELP = (
    "Classifiers (--classifier): digits, digits-b, digits-robust (shipped; digits-robust is PGD adversarially "
    "trained, for R-IS and R-FID); inception-v3 (torchvision's, from --weights or the torch hub cache); "
    "inception-v3-tf (torch-fidelity's 1008-logit port; pip install isgame\\[fidelity]); your own network as "
    "torchscript:PATH?... or package.module:function?... with options size=HxW, channels=1|3, mean, std "
    "(e.g. torchscript:net.pt?size=32x32). --weights replaces the shipped or cached weights: .safetensors for the "
    "digits classifiers; a .pth/.pt state dict or .safetensors for inception-v3 and inception-v3-tf (loaded with "
    "weights_only=True, never unpickled). Images (--train, --real, a SOURCE): a folder, .zip, .npy/.npz/.pt or a "
    "built-in source (digits:train, digits:test, noise:uniform, noise:gaussian); --train and --real are needed "
    "with any classifier but the digits ones, and at most --max-train and --max-real of them are held (a seeded "
    "subsample). Under torchrun write --num-samples, not --n: torchrun does not abbreviate.")
ClassifierOption = Annotated[str, typer.Option("--classifier", "-c", help="A shipped name or your own network.")]
WeightsOption = Annotated[Path | None, typer.Option("--weights", help=(
    ".safetensors or .pth/.pt, weights_only=True."))]
TrainOption = Annotated[str | None, typer.Option("--train", help="Training images \\[digits: digits:train].")]
RealOption = Annotated[str | None, typer.Option("--real", help="Held-out real images \\[digits: digits:test].")]
ClassNamesOption = Annotated[str | None, typer.Option("--class-names", help=(
    "K class names: a file, one a line, or a comma list."))]
MaxTrainOption = Annotated[int, typer.Option("--max-train", help="Most training images held (seeded subsample).")]
MaxRealOption = Annotated[int, typer.Option("--max-real", help="Most real images held (seeded subsample).")]


def steps_option(meaning: str):
    """The ``--steps`` option of a command that runs attacks; ``meaning`` says which."""
    return typer.Option("--steps", help=meaning)


def seed_option(meaning: str):
    """The ``--seed`` option; ``meaning`` says what the seed draws in this command."""
    return typer.Option("--seed", help=meaning)


JsonOption = Annotated[str | None, typer.Option("--json", help="Write JSON to PATH, or to stdout with '-'.")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Report folder \\[default: outputs/<run-id>].")]
PluginOption = Annotated[list[str] | None, typer.Option("--plugin", metavar="<module>", help=(
    "Plug-in module or .py file (repeatable)."))]


def use_plugins(plugins: list[str] | None) -> None:
    """Load the installed plug-ins and ``plugins``: a failure of one named here exits in one line; an installed
    one that fails is a note."""
    from isgame.scoring.runtime.plugins import load_plugins, plugin_notes

    run_or_exit(lambda: load_plugins(plugins))
    for note in plugin_notes():
        announce_note(note)
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto (a GPU if there is one).")]


#: the metavar of an option of a few choices (its help names them)
CHOICE = "<choice>"


class ValueRange(str, Enum):
    auto = "auto"
    unit = "0-1"
    byte = "0-255"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


# An option of a few choices shows CHOICE and names them in its help: their list as the metavar would take the
# width of every option's help in an 80-column terminal.
PrecisionOption = Annotated[Precision, typer.Option("--precision", metavar=CHOICE, help=(
    "Autocast: fp32, bf16 or fp16 (CUDA)."))]

RangeOption = Annotated[ValueRange, typer.Option("--range", metavar=CHOICE, help=(
    "Float images: 0-1, 0-255 or auto."))]

BatchSizeOption = Annotated[int | None, typer.Option("--batch-size", help="Images per batch.")]

BootstrapOption = Annotated[int | None, typer.Option("--bootstrap", help=(
    "Most draws a cell \\[default: as Holm needs]."))]
AlphaOption = Annotated[float, typer.Option("--alpha", help="Family-wise level of each column (Holm).")]
SecondClassifierOption = Annotated[str, typer.Option("--second-classifier", help=(
    "FID-b's classifier: a spec, auto or none."))]
RobustClassifierOption = Annotated[str, typer.Option("--robust-classifier", help=(
    "R-IS, R-FID's: a spec, auto or none."))]


def auxiliary_choice(value: str) -> str | None:
    """``none`` leaves the columns out; anything else (``auto`` or a spec) goes to the library as is."""
    return None if value.strip().lower() == "none" else value


def samples_option(meaning: str):
    """The one ``--n`` / ``--num-samples`` option; ``meaning`` says what N counts in this command."""
    return typer.Option("--n", "--num-samples", help=meaning)


EXIT_INTERRUPTED = 130


#: library parameter -> the flag that sets it, where the flag is not ``--`` + the name with dashes
FLAG_OF_PARAMETER = {"input_kind": "--input", "kind": "--input", "classifier_name": "--classifier",
                     "epsilons": "--eps", "out_dir": "--out", "value_range": "--range", "metrics": "--metric",
                     "games": "--game"}
#: where REAL and FAKE are arguments (fid, metrics) rather than the --real option of the other commands
POSITIONAL_IMAGES = {"real": "REAL", "fake": "FAKE"}


def flag_spelling(name: str, value: str | None, positional: dict[str, str] | None = None) -> str:
    """How a library parameter reads on this command line: ``splits=20`` becomes ``--splits 20``; names in
    ``positional`` are the command's arguments (``real`` is REAL in ``isgame fid``)."""
    flag = {**FLAG_OF_PARAMETER, **(positional or {})}.get(name, "--" + name.replace("_", "-"))
    if value == "False" and flag.startswith("--"):
        return "--no-" + flag[2:]  # a switch turned off: --no-attack
    return flag if value in (None, "True") else f"{flag} {value}"


def run_or_exit(call: Callable[[], T], *, positional: dict[str, str] | None = None) -> T:
    """Run a library call; turn a user error into one line on stderr (parameters named by their flags, or by the
    command's arguments in ``positional``) and exit code 2, Ctrl-C into exit 130."""
    try:
        return call()
    except IsgameError as error:
        message = error.render(lambda name, value: flag_spelling(name, value, positional), commands=True)
        typer.echo(f"isgame: error: {_rank_prefix()}{message}", err=True)
        raise typer.Exit(code=EXIT_USER_ERROR) from None
    except KeyboardInterrupt:
        # Every report file is written atomically, so whatever was finished is intact and nothing is half-written.
        typer.echo("isgame: interrupted; files already written are complete, nothing half-written was left", err=True)
        raise typer.Exit(code=EXIT_INTERRUPTED) from None


def _rank_prefix() -> str:
    """``rank R of W: `` under torchrun (an error may come from one rank's shard alone), else nothing."""
    import os

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return f"rank {os.environ.get('RANK', '?')} of {world_size}: " if world_size > 1 else ""


def print_notes(notes, *, positional: dict[str, str] | None = None) -> None:
    """Each note the loader left (files skipped, range detected, values clipped, --n capped) as one stderr line;
    under torchrun only rank 0 prints."""
    from isgame.scoring.runtime.distributed import current_group

    if not current_group().is_main:
        return
    for note in notes:
        text = (note.render(lambda name, value: flag_spelling(name, value, positional), commands=True)
                if hasattr(note, "render")
                else str(note))
        typer.echo(f"isgame: note: {text}", err=True)


@dataclass(frozen=True)
class DomainOptions:
    """What the domain options of a command say: its classifier (weights, device, precision) and, for the commands
    that run on a domain's images, its training and real images."""

    classifier: str
    weights: Path | None
    device: str
    precision: "Precision"
    train: str | None = None
    real: str | None = None
    class_names: str | None = None
    max_train: int = defaults.MAX_TRAIN
    max_real: int = defaults.MAX_REAL

    def classifier_spec(self) -> dict[str, object]:
        """The library's names for the classifier options: each command's library call builds its domain once the
        command's own options are checked (an Inception file takes seconds to load)."""
        return {"classifier_name": self.classifier, "weights": self.weights}

    def use_device(self) -> None:
        """Put every classifier the command loads on the device, at the precision, the options name."""
        use_device(self.device, self.precision)

    def open(self, *, seed: int, allow_stats: bool = False, require_images: bool = True):
        """Set the device, then load the domain (the digits default without --train and --real); its notes go to
        stderr. ``allow_stats``: --real may be a stats file (matrix and audit); ``require_images=False``: a
        classifier alone will do (its real images where it has built-in ones)."""
        from isgame.scoring.domains import load_domain

        self.use_device()
        domain = run_or_exit(lambda: load_domain(
            self.classifier, weights=self.weights, train=self.train, real=self.real, class_names=self.class_names,
            max_train=self.max_train, max_real=self.max_real, seed=seed, allow_stats=allow_stats,
            require_images=require_images))
        print_notes(domain.notes)
        return domain


#: the domain options, once: name -> (annotation, default), in help order
CLASSIFIER_OPTIONS = {"classifier": (ClassifierOption, defaults.CLASSIFIER), "weights": (WeightsOption, None),
                      "device": (DeviceOption, "auto"), "precision": (PrecisionOption, Precision.fp32)}
IMAGE_OPTIONS = {"train": (TrainOption, None), "real": (RealOption, None), "class_names": (ClassNamesOption, None),
                 "max_train": (MaxTrainOption, defaults.MAX_TRAIN), "max_real": (MaxRealOption, defaults.MAX_REAL)}


def reflowed(doc: str | None) -> str:
    """A docstring with each paragraph on one line: Typer keeps the line breaks of the paragraphs after the first,
    which then break mid-line in a terminal of another width."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in inspect.cleandoc(doc or "").split("\n\n"))


def one_line_paragraphs(command):
    """Give a command without the domain options its docstring :func:`reflowed`."""
    command.__doc__ = reflowed(command.__doc__)
    return command


def domain_options(*, images: bool):
    """Give a command the classifier options (and, with ``images``, the image options of a domain) in place of its
    parameter ``domain_options``, which receives them as one :class:`DomainOptions`."""
    block = {**CLASSIFIER_OPTIONS, **(IMAGE_OPTIONS if images else {})}

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        params = []
        for param in signature.parameters.values():
            if param.name != "domain_options":
                params.append(param)
                continue
            params.extend(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation,
                                            default=default) for name, (annotation, default) in block.items())

        @functools.wraps(command)
        def run(**kwargs):
            options = DomainOptions(**{name: kwargs.pop(name) for name in block})
            return command(domain_options=options, **kwargs)

        del run.__wrapped__  # Typer reads the signature below, not the command's
        run.__doc__ = f"{reflowed(command.__doc__)}\n\n{CLASSIFIER_HELP}"
        run.__signature__ = signature.replace(parameters=params)
        run.__annotations__ = {param.name: param.annotation for param in params}
        return run

    return decorate


def _refuse(message: str):
    """Raise a user error from the command line itself (for :func:`run_or_exit` to print)."""
    from isgame.scoring.errors import InvalidInputError

    raise InvalidInputError(message)


def run_folder(out: Path | None, label: str) -> Path:
    """Where a command writes: ``--out``, else a new folder ``outputs/<UTC time>-<label>``."""
    from isgame.app.outputs import new_run_dir

    return Path(out) if out is not None else new_run_dir(Path("outputs"), label=label)


def announce_note(note) -> None:
    """Print one note (a cost estimate before a long run) on stderr, now."""
    print_notes([note])


def use_device(device: str, precision: "Precision | str" = "fp32") -> None:
    """Put every classifier this command loads on ``device`` (one line and exit 2 if it does not exist), under
    autocast at ``precision``; on CUDA, with deterministic cuDNN kernels so that the same command gives the same
    numbers."""
    from isgame.scoring.classifiers import set_default_device, set_default_precision
    from isgame.scoring.classifiers.base import use_deterministic_cudnn

    if run_or_exit(lambda: set_default_device(device)).type == "cuda":
        use_deterministic_cudnn()
    run_or_exit(lambda: set_default_precision(getattr(precision, "value", precision)))


def emit_json(payload: dict, destination: str | None) -> None:
    """Write JSON to stdout ('-') or atomically to a file; under torchrun only rank 0 writes. Commands call it
    before they print their tables, so that a reader who closes stdout early never costs the file."""
    from isgame.scoring.runtime.distributed import current_group

    if destination is None or not current_group().is_main:
        return
    if destination == "-":
        from isgame.scoring.runtime.atomic_io import json_text

        sys.stdout.write(json_text(payload))
        return
    run_or_exit(lambda: _write_json_file(Path(destination), payload))


def _write_json_file(path: Path, payload: dict) -> None:
    from isgame.scoring.errors import InvalidInputError
    from isgame.scoring.runtime.atomic_io import write_json_atomic

    if path.is_dir():
        raise InvalidInputError(f"--json {path} is a folder; pass a file path such as {path / 'score.json'}")
    try:
        write_json_atomic(path, payload)
    except OSError as error:
        raise InvalidInputError(f"cannot write --json {path} ({error.strerror}); choose a writable path") from None


def console_for(json_destination: str | None) -> Console:
    """Tables go to stdout, or to stderr when stdout carries JSON; under torchrun only rank 0 prints."""
    from isgame.app.tables import make_console
    from isgame.scoring.runtime.distributed import current_group

    console = make_console(stderr=json_destination == "-")
    console.quiet = not current_group().is_main
    return console


@app.command()
@domain_options(images=False)
def score(
    source: Annotated[str, typer.Argument(help="Images, logits or a built-in source.")],
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    splits: Annotated[int | None, typer.Option("--splits", help="Splits \\[default: 10; --dialect: its own].")] = None,
    shuffle: Annotated[bool, typer.Option("--shuffle/--no-shuffle", help=(
        "Shuffle rows first (not with --dialect)."))] = False,
    seed: Annotated[int | None, typer.Option("--seed", help=(
        "Seed of noise and --shuffle \\[default: 0]."))] = None,
    n: Annotated[int | None, samples_option("Samples (noise) or the first N of SOURCE.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Rows per batch.")] = None,
    input_kind: Annotated[InputKind, typer.Option("--input", metavar=CHOICE, help=(
        "SOURCE holds images, logits or probs."))] = InputKind.images,
    dialect: Annotated[str | None, typer.Option("--dialect", help="Score as one implementation does, or 'all'.")] = None,
    value_range: RangeOption = ValueRange.auto,
    json_out: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """Score SOURCE: classic IS (mean ± std over splits), mutual information and entropies.

    SOURCE is a folder of images, .npy/.npz (images, or logits or probabilities with --input), digits:train,
    digits:test, noise:uniform or noise:gaussian. --dialect scores as openai, torch-fidelity, torchmetrics, sbarratt
    or barratt-sharma do ('all': side by side); images run through the network once (torchmetrics: again only where
    its uint8 truncation changes a pixel), each dialect orders the rows as its implementation does (its own
    permutation seed: torch-fidelity 2020, torchmetrics 0), so --shuffle is refused with it."""
    from isgame.app.scoring_commands import score_in_dialects, score_source

    domain_options.use_device()
    if dialect is not None:
        from isgame.app.tables import dialect_table_view

        table = run_or_exit(lambda: score_in_dialects(
            source, dialect, splits=splits, seed=seed, noise_seed=defaults.SEED if seed is None else seed,
            shuffle=shuffle, **domain_options.classifier_spec(), n=n, batch_size=batch_size, input_kind=input_kind.value,
            progress=not quiet, value_range=value_range.value))
        print_notes(table.extra.get("notes", ()))
        emit_json(table.to_dict(), json_out)
        console_for(json_out).print(dialect_table_view(table))
        return

    report = run_or_exit(lambda: score_source(
        source, **domain_options.classifier_spec(), splits=defaults.SPLITS if splits is None else splits, shuffle=shuffle,
        seed=defaults.SEED if seed is None else seed, n=n, batch_size=batch_size, input_kind=input_kind.value, progress=not quiet, value_range=value_range.value,
    ))
    print_notes(report.extra.get("notes", ()))
    from isgame.app.tables import score_table

    emit_json(report.to_dict(), json_out)
    console_for(json_out).print(score_table([report]))


@app.command()
@domain_options(images=True)
def audit(
    out: OutOption = None,
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    n: Annotated[int | None, samples_option("Generated samples per section \\[default: 1000].")] = None,
    steps: Annotated[int | None, steps_option("Steps of every attack \\[default: each its own].")] = None,
    attack: Annotated[bool, typer.Option("--attack/--no-attack", help="Run the attacks.")] = True,
    seed: Annotated[int, seed_option("Seed of every draw of the audit.")] = 0,
    fast: Annotated[bool, typer.Option("--fast", help="The one-minute profile (noisier).")] = False,
    bootstrap: BootstrapOption = None,
    alpha: AlphaOption = defaults.ALPHA,
    second_classifier: SecondClassifierOption = "auto",
    robust_classifier: RobustClassifierOption = "auto",
    plugin: PluginOption = None,
    json_out: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run every score, attack and probe on a domain (the embedded digits default, or --classifier with --train and
    --real) and write outputs/<run-id>/.

    The folder holds report.json, report.html (the answer first, then every section) and the figures. --n sets the
    generated samples per section (noise scored and attacked, probe and matrix samples; default 1000 noise images and
    each probe's own), --steps the gradient steps of every attack (default: each attack's own, inflate 50). --no-attack
    skips the attacks (inflate, bounded, the noise probe's attacked row and the matrix's attack games) on a slow
    classifier. --fast is the one-minute profile: 200 samples per section (unless --n) and the bounded sweep in L∞
    only; every section runs, with noisier figures. Plug-in metrics and games (--plugin, or installed) join the
    matrix."""
    from isgame.app.audit import audit as run_audit
    from isgame.app.audit import print_audit_summary

    use_plugins(plugin)
    domain = domain_options.open(seed=seed, allow_stats=True)
    matrix_options = {"alpha": alpha, "second_classifier": auxiliary_choice(second_classifier),
                      "robust_classifier": auxiliary_choice(robust_classifier),
                      **({} if bootstrap is None else {"bootstrap": bootstrap})}
    report = run_or_exit(lambda: run_audit(out=out, seed=seed, progress=not quiet, domain=domain, n=n, steps=steps,
                                           attack=attack, announce=announce_note, matrix_options=matrix_options,
                                           fast=fast))

    emit_json(report.to_dict(), json_out)
    print_audit_summary(report, console_for(json_out))


attack_app = typer.Typer(help="Game the score: inflate IS from noise, or push real images within an ε-ball.",
                         no_args_is_help=True)
app.add_typer(attack_app, name="attack")


class Noise(str, Enum):
    uniform = "uniform"
    gaussian = "gaussian"


class Optimizer(str, Enum):
    newton = "newton"
    sign = "sign"
    adam_logit = "adam-logit"


class Norm(str, Enum):
    linf = "linf"
    l2 = "l2"
    both = "both"


class Strategy(str, Enum):
    auto = "auto"
    own_class = "own-class"
    balanced = "balanced"
    direct = "direct"


@attack_app.command("inflate")
@domain_options(images=False)
def attack_inflate(
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    real: Annotated[str | None, typer.Option("--real", help="Real images to compare with \\[digits: digits:test].")] = None,
    n: Annotated[int, samples_option("Noise images to attack.")] = defaults.INFLATE_SAMPLES,
    noise: Annotated[Noise, typer.Option("--noise", metavar=CHOICE, help="uniform or gaussian noise.")] = Noise.uniform,
    steps: Annotated[int, typer.Option("--steps", help="Most gradient steps.")] = defaults.INFLATE_STEPS,
    optimizer: Annotated[Optimizer, typer.Option("--optimizer", metavar=CHOICE, help=(
        "Step rule: newton, sign or adam-logit."))] = Optimizer.newton,
    threshold: Annotated[float, typer.Option("--threshold", help="Stop a sample at this p(target|x).")] = defaults.INFLATE_THRESHOLD,
    compare: Annotated[bool, typer.Option("--compare", help="Also run the other step rules.")] = False,
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Save the state here every 5 steps.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from --checkpoint.")] = False,
    seed: Annotated[int, seed_option("Seed of the starting noise.")] = 0,
    out: OutOption = None,
    json_out: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """Gradient-ascend noise toward cycling target classes until IS approaches K.

    --compare also runs the sign and adam-logit step rules and the mutual-information objective; --real (digits
    classifiers: digits:test; others: none) gives the real held-out IS the attack is compared with."""
    from isgame.app.attack_commands import run_inflate
    from isgame.app.tables import inflate_table

    domain_options.use_device()
    report = run_or_exit(lambda: run_inflate(
        out_dir=run_folder(out, "inflate"), **domain_options.classifier_spec(), real=real, n=n, noise=noise.value, steps=steps, seed=seed, optimizer=optimizer.value, threshold=threshold,
        compare=compare, checkpoint=checkpoint, resume=resume, progress=not quiet))
    emit_json(report.to_dict(), json_out)
    console = console_for(json_out)
    console.print(inflate_table(report))


@attack_app.command("bounded")
@domain_options(images=False)
def attack_bounded(
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    source: Annotated[str | None, typer.Option("--source", "--real", help="Real images \\[digits: digits:test].")] = None,
    eps: Annotated[str | None, typer.Option("--eps", help="ε list, e.g. 0,1/255,8/255.")] = None,
    norm: Annotated[Norm, typer.Option("--norm", metavar=CHOICE, help="Ball: linf, l2 or both.")] = Norm.linf,
    strategy: Annotated[Strategy, typer.Option("--strategy", metavar=CHOICE, help=(
        "auto, own-class, balanced or direct."))] = Strategy.auto,
    dialect: Annotated[str, typer.Option("--dialect", help="The IS raised and reported.")] = "openai",
    splits: Annotated[int, typer.Option("--splits", help="Its splits (barratt-sharma has none).")] = defaults.SPLITS,
    n: Annotated[int | None, samples_option("Use the first N images.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Steps of ε/4 per strategy and ε \\[default: 10].")] = None,
    seed: Annotated[int, seed_option("Seed of cycling PGD's starts, noise --source.")] = defaults.SEED,
    out: OutOption = None,
    json_out: JsonOption = None,
) -> None:
    """Raise the IS of real images inside each ε-ball (L∞ or L2): IS per ε for each strategy, beside own-class and
    cycling-target PGD (foolbox); the smallest ε for +1%, +5% and +10%, refined by bisection.

    --eps is a comma-separated list (default L∞: 0,1,2,4,8,16,32 /255; L2: those x sqrt(C H W)). --strategy: auto
    (per split the best of the others and of own-class PGD), own-class, balanced (targets that even out each
    split's classes) or direct (ascend the IS itself). --dialect, the IS raised and reported: openai,
    torch-fidelity, torchmetrics (no uint8 truncation), sbarratt or barratt-sharma (exp(I), one marginal; no
    --splits). --steps: steps of ε/4 per strategy per ε; the own-class and cycling PGD comparisons take 20."""
    from isgame.app.attack_commands import run_bounded
    from isgame.app.tables import bounded_table
    from isgame.attacks.bounded import parse_epsilons

    domain_options.use_device()
    norms = ("linf", "l2") if norm is Norm.both else (norm.value,)
    report = run_or_exit(lambda: run_bounded(
        out_dir=run_folder(out, "bounded"), **domain_options.classifier_spec(), source=source, norms=norms,
        epsilons=None if eps is None else parse_epsilons(eps), n=n, steps=steps, seed=seed,
        strategy=strategy.value, dialect=dialect, splits=splits))
    emit_json(report.to_dict(), json_out)
    console_for(json_out).print(bounded_table(report))


weights_app = typer.Typer(help=(
    "The Inception weights isgame knows (torchvision's and the TF port of torch-fidelity and pytorch-fid): list, "
    "locate, fetch and verify them. fetch is the only command that uses the network."), no_args_is_help=True)
app.add_typer(weights_app, name="weights")
#: exit code of ``weights path`` for a file not cached and of ``weights verify`` for a file that is not a known one
EXIT_WEIGHTS_NOT_FOUND = 1
WeightsNameArgument = Annotated[str, typer.Argument(
    help="A known weights name or its file name.")]


@weights_app.command("list")
def weights_list(
    verify: Annotated[bool, typer.Option("--verify", help="Hash every cached file (0.3 s a 100 MB).")] = False,
    json_out: JsonOption = None,
) -> None:
    """Every known weights file: its published URL and SHA-256, and whether it is in a torch hub cache."""
    from isgame.app.weights_commands import weights_listing, weights_table
    from isgame.scoring.classifiers.weights_registry import list_weights

    statuses = run_or_exit(lambda: list_weights(verify=verify))
    emit_json(weights_listing(statuses), json_out)
    console_for(json_out).print(weights_table(statuses))


@weights_app.command("path")
def weights_path(name: WeightsNameArgument, json_out: JsonOption = None) -> None:
    """Print where NAME is cached, or where fetch would put it; exit 1 when it is not cached."""
    from isgame.scoring.classifiers.weights_registry import fetch_hint
    from isgame.scoring.classifiers.weights_registry import weights_path as locate

    status = run_or_exit(lambda: locate(name))
    emit_json(status.to_dict(), json_out)
    if json_out != "-":
        typer.echo(str(status.path))
    if not status.present:
        typer.echo(f"isgame: note: {status.entry.file_name} is not cached; {fetch_hint(status.entry.name)}", err=True)
        raise typer.Exit(code=EXIT_WEIGHTS_NOT_FOUND)


@weights_app.command("fetch")
def weights_fetch(
    name: WeightsNameArgument,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Folder \\[default: the torch hub cache].")] = None,
    url: Annotated[str | None, typer.Option("--url", help="A mirror; the published hash is checked.")] = None,
    quiet: QuietOption = False,
    json_out: JsonOption = None,
) -> None:
    """Download NAME, check its SHA-256 and write it atomically into the cache; a cut download resumes on the next
    fetch. Nothing is downloaded when a verified copy is already there."""
    from isgame.app.weights_commands import fetch_summary
    from isgame.scoring.classifiers.weights_fetch import fetch_weights

    result = run_or_exit(lambda: fetch_weights(name, cache_dir=cache_dir, progress=not quiet, url=url))
    emit_json(result.to_dict(), json_out)
    console_for(json_out).print(fetch_summary(result), soft_wrap=True, markup=False, highlight=False)


@weights_app.command("verify")
def weights_verify(
    path: Annotated[Path, typer.Argument(help="The weights file to hash and identify.")],
    json_out: JsonOption = None,
) -> None:
    """Hash PATH and say which known weights file it is; exit 1 when it is none of them or not the file its name
    claims."""
    from isgame.app.weights_commands import verification_line
    from isgame.scoring.classifiers.weights_registry import verify_weights

    result = run_or_exit(lambda: verify_weights(path))
    emit_json(result.to_dict(), json_out)
    console_for(json_out).print(verification_line(result), soft_wrap=True, markup=False, highlight=False)
    if not result.ok:
        raise typer.Exit(code=EXIT_WEIGHTS_NOT_FOUND)


@app.command()
def toy(
    n: Annotated[int, typer.Option("--n", help="Monte Carlo samples per generator.")] = 100_000,
    seed: Annotated[int, seed_option("Seed of the Monte Carlo draws.")] = 0,
    out: OutOption = None,
    json_out: JsonOption = None,
) -> None:
    """The 1-D counter-example: generators that beat the data's IS."""
    from isgame.app.attack_commands import run_toy
    from isgame.app.tables import toy_table
    report = run_or_exit(lambda: run_toy(out_dir=run_folder(out, "toy"), n=n, seed=seed))
    emit_json(report.to_dict(), json_out)
    console_for(json_out).print(toy_table(report))


class ProbeName(str, Enum):
    memorization = "memorization"
    noise = "noise"
    sensitivity = "sensitivity"
    domain = "domain"


@app.command()
@domain_options(images=True)
def probe(
    name: Annotated[ProbeName, typer.Argument(help="Which probe to run.")],
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    classifier_b: Annotated[str | None, typer.Option("--classifier-b", help=(
        "sensitivity: a second classifier \\[digits: digits-b]."))] = None,
    weights_b: Annotated[Path | None, typer.Option("--weights-b", help="Weights file of --classifier-b.")] = None,
    n: Annotated[int | None, samples_option("Samples per set \\[default: 1000].")] = None,
    steps: Annotated[int | None, steps_option("noise: inflate steps \\[default: 30].")] = None,
    seed: Annotated[int, seed_option("Seed of the probe's noise, subsets, attacks.")] = 0,
    out: OutOption = None,
    json_out: JsonOption = None,
) -> None:
    """Probe what IS cannot see: memorisation, noise baselines, sensitivity, domain mismatch.

    sensitivity's weights axis compares --classifier with --classifier-b, a second classifier of the same K (the
    same kinds of spec; digits: digits-b; other classifiers: seeded perturbed copies only)."""
    from isgame.app.probe_commands import run_probe
    from isgame.app.tables import PROBE_TABLES
    from isgame.scoring.classifiers import load_classifier

    domain = domain_options.open(seed=seed)
    second = None if classifier_b is None else run_or_exit(lambda: load_classifier(classifier_b, weights=weights_b))
    report = run_or_exit(lambda: run_probe(name.value, domain=domain, out_dir=run_folder(out, f"probe-{name.value}"),
                                           seed=seed, n=n, steps=steps,
                                           classifier_b=second))
    emit_json(report.to_dict(), json_out)
    console_for(json_out).print(PROBE_TABLES[name.value](report))


@app.command()
@domain_options(images=True)
def matrix(
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    n: Annotated[int | None, samples_option("Samples per game \\[default: 540 at most].")] = None,
    steps: Annotated[int | None, steps_option("Steps of the attack games.")] = None,
    seed: Annotated[int, seed_option("Seed of games, subsets, cells, bootstrap.")] = 0,
    bootstrap: BootstrapOption = None,
    alpha: AlphaOption = defaults.ALPHA,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Only this column (repeatable).")] = None,
    game: Annotated[list[str] | None, typer.Option("--game", help="Only this game (repeatable).")] = None,
    second_classifier: SecondClassifierOption = "auto",
    robust_classifier: RobustClassifierOption = "auto",
    plugin: PluginOption = None,
    out: OutOption = None,
    json_out: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """The robustness matrix: every game against every metric, against held-out real data of the domain: each cell a
    one-sided sign test over half-samples, Holm-corrected within its column, and a verdict (detected, missed,
    false alarm, no alarm, not applicable, undecided). --real may be a stats file (isgame stats save): the
    distribution metrics then compare against it.

    --n: samples per game (default: the real images held, at most 540). --steps: gradient steps of the attack games
    (default: inflate 30, bounded 10 a strategy and 20 for own-class PGD, FID feature attack 60). --metric and
    --game repeat, e.g. --metric IS --metric FID, --game 'IS-inflated noise' (default: every column the domain
    allows, all 17 games; the held-out real reference is always played). --bootstrap caps the half-sample draws per
    cell (default: as many as Holm's correction needs in each column, at level --alpha). --second-classifier
    (FID-b) and --robust-classifier (R-IS, R-FID): a classifier spec, auto (digits: digits-b, digits-robust) or
    none. --seed draws the games' noise and attacks, KID's subsets, the data-copying test's cells and the
    half-samples. --plugin loads a module or .py file that registers metrics (with a direction: a column) or
    games; with one --metric the matrix is that metric's scorecard."""
    from isgame.app.probe_commands import run_matrix
    from isgame.app.tables import matrix_confusion_table, matrix_summary_lines, matrix_table
    from isgame.probes.matrix.games import select_games

    use_plugins(plugin)
    domain = domain_options.open(seed=seed, allow_stats=True)
    folder = run_folder(out, "matrix")
    report = run_or_exit(lambda: run_matrix(
        domain=domain, out_dir=folder, seed=seed, n=n, steps=steps, progress=not quiet,
        games=None if not game else run_or_exit(lambda: select_games(game)),
        bootstrap=defaults.MATRIX_DRAWS if bootstrap is None else bootstrap, alpha=alpha, metrics=metric,
        second_classifier=auxiliary_choice(second_classifier), robust_classifier=auxiliary_choice(robust_classifier)))
    # what the run itself decided about the domain (a clustered stored order, scored in a seeded order)
    print_notes([note for note in report.result.domain.get("notes", []) if note not in map(str, domain.notes)])
    card = None
    if len(report.result.metrics) == 1:  # one metric: its scorecard, with the ε that fools it
        from isgame.app.scorecard import metric_scorecard

        card = run_or_exit(lambda: metric_scorecard(
            report, domain, out_dir=folder, seed=seed,
            second_classifier=auxiliary_choice(second_classifier), robust_classifier=auxiliary_choice(robust_classifier)))
    emit_json({**report.to_dict(), **({} if card is None else {"scorecard": card.to_dict()})}, json_out)
    console = console_for(json_out)
    console.print(matrix_table(report))
    console.print(matrix_confusion_table(report.result))
    for line in matrix_summary_lines(report.result):
        console.print(line)
    if card is not None:
        console.print(f"scorecard of {card.metric}: ε to fool " + ", ".join(
            f"{source} {label}" for source, label in card.epsilon_to_fool().items())
            + (f"; {card.files['page']} written" if card.files else ""))


class LeaderboardSource(str, Enum):
    honest_kde = "honest-kde"
    uniform_noise = "uniform-noise"
    both = "both"


@app.command()
@domain_options(images=True)
def robustness(
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    n: Annotated[int | None, samples_option("Images per attacked set \\[default: 200 at most].")] = None,
    eps: Annotated[str | None, typer.Option("--eps", help="L∞ ε grid, e.g. 0,2/255,8/255.")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Only this metric (repeatable).")] = None,
    source: Annotated[LeaderboardSource, typer.Option("--source", metavar=CHOICE, help=(
        "honest-kde, uniform-noise or both."))] = LeaderboardSource.both,
    steps: Annotated[int | None, steps_option("PGD steps per ε \\[default: 10].")] = None,
    seed: Annotated[int, seed_option("Seed of images, order and draws.")] = 0,
    plugin: PluginOption = None,
    out: OutOption = None,
    json_out: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """The leaderboard: the L∞ ε at which each metric stops flagging degraded images under attack.

    Each differentiable metric is attacked white-box (PGD on its own loss, each ε starting from the previous ε's
    best set) on degraded images (--source: the matrix's honest KDE samples, uniform noise, or both); at each ε
    the robustness matrix's one-sided test judges the attacked set against held-out real data, and the ε to fool
    is the first grid ε whose verdict is missed, refined by bisection ("> ε_max" when none is: not robust, only
    not fooled within the grid). Metrics without a loss are judged on the FID attack's images (IS∞ on the IS
    attack's), labelled transfer; the FID attack is also judged on FID-b and the wavelet distance. --eps is a
    comma-separated grid (default 0,1,2,4,8,16,32 /255); --metric repeats (default: every column the domain
    allows); plug-in metrics (--plugin) that declare differentiable=True are attacked white-box too."""
    from isgame.app.robustness_command import run_robustness
    from isgame.app.tables import robustness_table
    from isgame.attacks.bounded import parse_epsilons
    from isgame.probes.leaderboard import LEADERBOARD_SOURCES

    use_plugins(plugin)
    sources = list(LEADERBOARD_SOURCES) if source is LeaderboardSource.both else [source.value]
    domain = domain_options.open(seed=seed)
    report = run_or_exit(lambda: run_robustness(
        domain=domain, out_dir=run_folder(out, "robustness"), seed=seed, n=n,
        epsilons=None if eps is None else parse_epsilons(eps), metrics=metric, sources=sources, steps=steps,
        progress=not quiet))
    emit_json(report.to_dict(), json_out)
    console_for(json_out).print(robustness_table(report))


#: ``isgame check``'s exit code for each (reproduced, meaningful) answer; 2 stays a user error, 1 a crash
EXIT_NOT_REPRODUCED, EXIT_NOT_MEANINGFUL, EXIT_NEITHER = 3, 4, 5
CHECK_EXIT_CODES = {(True, True): 0, (False, True): EXIT_NOT_REPRODUCED, (True, False): EXIT_NOT_MEANINGFUL,
                    (False, False): EXIT_NEITHER}


CHECK_HELP = "\n\n".join([
    "Audit a claimed IS: is it reproduced, and is it meaningful? Each answer comes with its reasons.",
    "Reproduced: the claim lies within its protocol's value on SAMPLES (--claimed-dialect, --claimed-splits, "
    "--claimed-n) ± that protocol's std over splits and the claim's rounding. Every other dialect and preprocessing "
    "variant is recomputed as context: it explains a mismatch, it does not widen the range.",
    "Meaningful: the samples are not nearer noise than real images (--real), not out of the classifier's "
    "domain, and not copied from --train, as a whole (C_T) or in part (more near-copies than held-out images give).",
    "\n".join(["Exit codes, for scripts:",
               "0  reproduced and meaningful",
               f"{EXIT_NOT_REPRODUCED}  not reproduced (meaningful)",
               f"{EXIT_NOT_MEANINGFUL}  reproduced but not meaningful",
               f"{EXIT_NEITHER}  neither reproduced nor meaningful",
               f"{EXIT_USER_ERROR}  user error (bad option, missing file); 1 a crash; {EXIT_INTERRUPTED} interrupted"]),
    "The claim's protocol: --claimed-dialect is openai, torch-fidelity, torchmetrics, sbarratt or barratt-sharma "
    "(no splits); --claimed-n takes the first N of SAMPLES (default: all; more than SAMPLES holds is an error); "
    "--claimed-std is reported beside the protocol's own std, which decides. --steps: gradient steps of the gaming "
    "ceiling's inflate attack on min(500, N) noise images; --no-attack skips it on a slow classifier. --seed draws "
    "the noise baseline, the gaming ceiling's starting noise and the data-copying test (and noise SAMPLES).",
    CLASSIFIER_HELP,
])


@app.command(help=CHECK_HELP)
@domain_options(images=False)
def check(
    samples: Annotated[str, typer.Argument(help="The samples behind the claim.")],
    claimed: Annotated[float, typer.Option("--claimed", help="The claimed Inception Score.")],
    claimed_std: Annotated[float, typer.Option("--claimed-std", help="The claimed std.")] = 0.0,
    claimed_splits: Annotated[int, typer.Option("--claimed-splits", help="Splits the claim used.")] = 10,
    claimed_n: Annotated[int | None, typer.Option("--claimed-n", help="Samples the claim used.")] = None,
    claimed_dialect: Annotated[str, typer.Option("--claimed-dialect", help="The claim's implementation.")] = "openai",
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    real: Annotated[str | None, typer.Option("--real", help=(
        "Held-out real images \\[digits: digits:test]."))] = None,
    reference: Annotated[str | None, typer.Option("--reference", hidden=True, help=(
        f"Deprecated name of --real, removed in isgame {REMOVAL_VERSION}."))] = None,
    train: Annotated[str | None, typer.Option("--train", help="Training images, for copies.")] = None,
    n: Annotated[int | None, samples_option("Use the first N samples.")] = None,
    steps: Annotated[int, steps_option("Steps of the gaming ceiling.")] = 20,
    attack: Annotated[bool, typer.Option("--attack/--no-attack", help="Run the gaming ceiling.")] = True,
    seed: Annotated[int, seed_option("Seed of noise and the copy test.")] = 0,
    value_range: RangeOption = ValueRange.auto,
    out: OutOption = None,
    json_out: JsonOption = None,
) -> None:
    """Audit a claimed IS: two answers, reproduced and meaningful, mapped to exit codes (see CHECK_HELP)."""
    from isgame.app.check import run_check
    from isgame.app.tables import check_lines

    domain_options.use_device()
    if reference is not None:
        print_notes([f"--reference is deprecated and removed in isgame {REMOVAL_VERSION}; write --real"])
        if real is not None and real != reference:
            run_or_exit(lambda: _refuse("--real and --reference name the same images; give one (--real)"))
    report = run_or_exit(lambda: run_check(
        samples, claimed=claimed, claimed_std=claimed_std, claimed_splits=claimed_splits, claimed_n=claimed_n,
        claimed_dialect=claimed_dialect, **domain_options.classifier_spec(), real=real or reference,
        train=train, n=n, seed=seed, out_dir=run_folder(out, "check"), value_range=value_range.value,
        steps=steps, attack=attack, announce=announce_note))
    print_notes(report.notes)
    emit_json(report.to_dict(), json_out)
    console = console_for(json_out)
    for line in check_lines(report.result):
        console.print(line)
    code = CHECK_EXIT_CODES[(report.result.reproduced, report.result.meaningful)]
    if code:
        raise typer.Exit(code=code)


@app.command()
@domain_options(images=False)
def fid(
    real: Annotated[str, typer.Argument(help="Real images, or stored statistics.")],
    fake: Annotated[str, typer.Argument(help="Generated images.")],
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    n: Annotated[int | None, samples_option("First N images of each (noise: how many).")] = None,
    batch_size: BatchSizeOption = None,
    seed: Annotated[int, seed_option("Seed of noise sources.")] = 0,
    value_range: RangeOption = ValueRange.auto,
    save_stats: Annotated[Path | None, typer.Option("--save-stats", help="Also save FAKE's mu and sigma (.npz).")] = None,
    json_out: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """FID between REAL and FAKE on the classifier's features (streamed; shards under torchrun).

    REAL is images or stored statistics, an .npz with mu and sigma (pytorch-fid --save-stats, openai's reference
    batches); FAKE the same kinds of image source. --save-stats writes FAKE's, as pytorch-fid's --save-stats."""
    domain_options.use_device()
    from isgame.app.scoring_commands import fid_between

    result = run_or_exit(lambda: fid_between(real, fake, n=n, seed=seed, **domain_options.classifier_spec(),
                                             batch_size=batch_size, progress=not quiet, value_range=value_range.value,
                                             save_stats=save_stats), positional=POSITIONAL_IMAGES)
    print_notes(result["notes"], positional=POSITIONAL_IMAGES)
    n_real = "stored statistics" if result["n_real"] is None else result["n_real"]
    emit_json(result, json_out)
    space = "logits (it returns no features)" if result["classifier"].get("features_are_logits") else "features"
    console_for(json_out).print(f"FID({real}, {fake}) = {result['fid']:.4f} on {result['feature_dim']}-d "
                                f"{domain_options.classifier} {space} (N = {n_real} and {result['n_fake']})")


@app.command()
@domain_options(images=False)
def metrics(
    real: Annotated[str, typer.Argument(help="Real images, or stored FID statistics.")],
    fake: Annotated[str, typer.Argument(help="Generated images.")],
    metric: Annotated[list[str] | None, typer.Option("--metric", help="A metric (repeatable) \\[default: all].")] = None,
    train: Annotated[str | None, typer.Option("--train", help="Training images: adds C_T, authenticity, FLD.")] = None,
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    n: Annotated[int | None, samples_option("First N of REAL and FAKE (noise: how many).")] = None,
    batch_size: BatchSizeOption = None,
    seed: Annotated[int, seed_option("Seed of noise, KID's subsets, C_T's k-means.")] = 0,
    kid_subsets: Annotated[int, typer.Option("--kid-subsets", help="KID subsets.")] = defaults.KID_SUBSETS,
    kid_subset_size: Annotated[int, typer.Option("--kid-subset-size", help=(
        "Rows per KID subset, at most N."))] = defaults.KID_SUBSET_SIZE,
    value_range: RangeOption = ValueRange.auto,
    second_classifier: SecondClassifierOption = "auto",
    plugin: PluginOption = None,
    json_out: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """FID, KID, precision/recall, density/coverage, Vendi, sliced Wasserstein, RBF MMD, FID/IS at N = infinity, a
    wavelet Fréchet distance, FID-b on a second classifier (digits: digits-b) and, with --train, C_T, authenticity
    and FLD of FAKE against REAL."""
    domain_options.use_device()
    use_plugins(plugin)
    from isgame.app.metrics_command import compute_metrics
    from isgame.app.tables import metrics_table

    result = run_or_exit(lambda: compute_metrics(
        real, fake, metrics=metric, train=train, **domain_options.classifier_spec(), n=n, seed=seed,
        batch_size=batch_size, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, progress=not quiet,
        value_range=value_range.value, second_classifier=auxiliary_choice(second_classifier)),
        positional=POSITIONAL_IMAGES)
    print_notes(result.notes, positional=POSITIONAL_IMAGES)
    emit_json(result.to_dict(), json_out)
    console_for(json_out).print(metrics_table(result))


stats_app = typer.Typer(help="Reference statistics you can trust: feature mean, covariance, a seeded subset of "
                                "features, and a key of every setting that made them.", no_args_is_help=True)
app.add_typer(stats_app, name="stats")


@stats_app.command("save")
@domain_options(images=False)
def stats_save(
    source: Annotated[str, typer.Argument(help="Real images.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .npz to write, e.g. real.stats.npz.")],
    domain_options: DomainOptions = None,  # the domain options, filled in by @domain_options
    n: Annotated[int | None, samples_option("Use the first N images of SOURCE.")] = None,
    subset: Annotated[int | None, typer.Option("--subset", help="Feature rows kept \\[default: 10000].")] = None,
    seed: Annotated[int, seed_option("Seed of the stored subset and noise.")] = 0,
    batch_size: BatchSizeOption = None,
    value_range: RangeOption = ValueRange.auto,
    json_out: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """Stream SOURCE's features once and write float64 mean and covariance, a seeded feature subset and the key
    (classifier, weights SHA-256, layer, preprocessing, dtype, input fingerprint); fid and check take the file as
    their real images and refuse it when the key does not match."""
    from isgame.app.scoring_commands import save_stats

    domain_options.use_device()
    result = run_or_exit(lambda: save_stats(source, out, **domain_options.classifier_spec(), n=n, seed=seed,
                                            subset=subset, batch_size=batch_size, progress=not quiet,
                                            value_range=value_range.value))
    print_notes(result.notes)
    summary = result.to_dict()
    emit_json(summary, json_out)
    console_for(json_out).print(f"{out}: mean and covariance of {summary['n']} {summary['feature_dim']}-d "
                                f"{domain_options.classifier} "
                                f"features, {summary['subset_rows']} rows kept (seed {seed})")


@app.command()
@one_line_paragraphs
def compare(
    a: Annotated[str, typer.Argument(help="A JSON of isgame score --json.")],
    b: Annotated[str, typer.Argument(help="Another, to compare with A.")],
    dialect_spread: Annotated[str | None, typer.Option("--dialect-spread", help="A --dialect all JSON.")] = None,
    json_out: JsonOption = None,
) -> None:
    """May A and B be compared? The protocol fields that differ, how far they alone move IS, and the standard error.

    --dialect-spread: a table of every dialect of the same samples (isgame score SAMPLES --dialect all --json PATH);
    its spread bounds a difference of dialect."""
    from isgame.app.compare_command import compare_files
    from isgame.app.tables import compare_table

    comparison = run_or_exit(lambda: compare_files(a, b, dialect_spread=dialect_spread),
                             positional={"a": "A", "b": "B"})
    emit_json(comparison.to_dict(), json_out)
    console_for(json_out).print(compare_table(comparison))


@app.command("train-digits")
@one_line_paragraphs
def train_digits(
    out: Annotated[Path, typer.Option("--out", help="Where to write the safetensors weights.")],
    seed: Annotated[int, typer.Option("--seed", help="Training seed: 0 digits, 1 digits-b.")] = 0,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 30,
    adversarial_epsilon: Annotated[float | None, typer.Option("--adversarial-epsilon", help=(
        "PGD training at this L∞ radius."))] = None,
    adversarial_steps: Annotated[int | None, typer.Option("--adversarial-steps", help=(
        "PGD steps a batch \\[default: 7]."))] = None,
    json_out: JsonOption = None,
) -> None:
    """Retrain the embedded digits CNN from a seed (reproduces the shipped weights).

    --seed 0 reproduces digits, 1 digits-b, and 2 with --adversarial-epsilon 0.1 digits-robust. --adversarial-epsilon
    trains with PGD (Madry et al.) at that L∞ radius in \\[0, 1] pixel units (default: standard training), with
    --adversarial-steps PGD steps per batch (default: 7, digits-robust's)."""
    from isgame.scoring.classifiers.digits import save_digits_network, train_digits_cnn

    result = run_or_exit(lambda: train_digits_cnn(seed, epochs=epochs, adversarial_epsilon=adversarial_epsilon,
                                                  adversarial_steps=adversarial_steps))
    run_or_exit(lambda: save_digits_network(result, out))
    adversarial = "" if adversarial_epsilon is None else f" (PGD adversarial training, ε = {adversarial_epsilon:g})"
    emit_json({**result.to_dict(), "weights": str(out)}, json_out)
    console_for(json_out).print(
        f"seed {seed}: held-out accuracy {100 * result.held_out_accuracy:.2f}% after {epochs} epochs{adversarial}; "
        f"weights in {out}"
    )


class ReaderMayLeave:
    """``sys.stdout`` for a command whose reader may close the pipe early (``isgame check ... | head -1``).

    Once the reader is gone, what is left to print is dropped and stdout points at the null device, so the
    command still writes its ``--json`` file and its own exit code decides the status (a closed pipe is no
    error of the command's). Everything else is the wrapped stream's.
    """

    def __init__(self, stream) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop_the_rest()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop_the_rest()

    def _drop_the_rest(self) -> None:
        import os

        self.reader_gone = True
        # Python flushes the real stdout once more at exit; pointed at the null device, that flush cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        except (OSError, ValueError):
            pass
        finally:
            os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main() -> None:
    if not isinstance(sys.stdout, ReaderMayLeave) and sys.stdout is not None:
        sys.stdout = ReaderMayLeave(sys.stdout)
    try:
        app()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            mark_failed()
        raise
    except BaseException:
        mark_failed()
        raise


if __name__ == "__main__":
    main()
