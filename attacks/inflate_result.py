"""What the inflate attack returns: the attacked images, the score per step, and its plot."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from isgame.scoring.metrics.score_result import from_legacy_json_keys
from isgame.scoring.plotting import Display
from isgame.scoring.results import FieldsAsDict


@dataclass(frozen=True)
class TraceStep(FieldsAsDict):
    """Scores of all n samples after ``step`` gradient steps (IS with the attack's splits).

    With the class shift, step 0 appears twice: the noise, then the shifted noise.
    """

    published = ("is_mean",)

    step: int
    is_mean: float
    mutual_information_nats: float
    conditional_entropy_bits: float
    fraction_at_target: float
    active: int
    seconds: float


    @classmethod
    def from_dict(cls, values: dict[str, float]) -> "TraceStep":
        return cls(**from_legacy_json_keys(values))


@dataclass(frozen=True)
class InflateResult:
    """The attacked images and how the score got there."""

    images: torch.Tensor = field(repr=False)
    start: torch.Tensor = field(repr=False)
    targets: torch.Tensor = field(repr=False)
    num_classes: int
    n: int
    splits: int
    optimizer: str
    objective: str
    threshold: float
    initial_is: float
    final_is: float
    final_is_uint8: float
    final_conditional_entropy_bits: float
    steps: int
    seconds: float
    gradient_evaluations: int
    forward_evaluations: int
    trace: list[TraceStep]
    mean_abs_change: float
    max_abs_change: float
    #: Whether the samples started from their noise plus their class's shift; the trace then starts with two
    #: step-0 rows, the noise and the shifted noise (:mod:`isgame.attacks.class_shift`).
    class_shift: bool = False
    #: Forward+backward passes of the class shift's grey images, included in ``gradient_evaluations``.
    class_shift_gradient_evaluations: int = 0

    @property
    def gradient_evaluations_per_sample(self) -> float:
        """Mean number of forward+backward passes per sample."""
        return self.gradient_evaluations / self.n

    @property
    def forward_evaluations_per_sample(self) -> float:
        """Mean number of forward passes per sample (each backward above has one; checks add the rest)."""
        return self.forward_evaluations / self.n

    @property
    def forward_only_evaluations_per_sample(self) -> float:
        """Forward passes per sample without a backward pass: the checks that find samples at target."""
        return (self.forward_evaluations - self.gradient_evaluations) / self.n

    def steps_to_fraction_of_k(self, fraction: float) -> int | None:
        """The first gradient step after which the IS of all samples is >= fraction * K; None if never."""
        return next((t.step for t in self.trace if t.is_mean >= fraction * self.num_classes), None)

    def to_dict(self) -> dict[str, object]:
        return {
            "num_classes": self.num_classes,
            "n": self.n,
            "splits": self.splits,
            "optimizer": self.optimizer,
            "objective": self.objective,
            "threshold": self.threshold,
            "initial_is": self.initial_is,
            "final_is": self.final_is,
            "final_is_uint8": self.final_is_uint8,
            "final_is_fraction_of_k": self.final_is / self.num_classes,
            "final_conditional_entropy_bits": self.final_conditional_entropy_bits,
            "steps": self.steps,
            "steps_to_999_of_k": self.steps_to_fraction_of_k(0.999),
            "seconds": self.seconds,
            "gradient_evaluations_per_sample": self.gradient_evaluations_per_sample,
            "forward_evaluations_per_sample": self.forward_evaluations_per_sample,
            "forward_only_evaluations_per_sample": self.forward_only_evaluations_per_sample,
            "class_shift": self.class_shift,
            "class_shift_gradient_evaluations": self.class_shift_gradient_evaluations,
            "mean_abs_change": self.mean_abs_change,
            "max_abs_change": self.max_abs_change,
            "trace": [step.to_dict() for step in self.trace],
        }


class InflateTraceDisplay(Display):
    """IS per step against K (left) and E[H(y|x)] in bits with the fraction at target (right)."""

    figsize = (11, 3.8)
    panels = 2

    def __init__(self, traces: dict[str, list[TraceStep]], num_classes: int, real_is: float | None = None) -> None:
        self.traces = traces
        self.num_classes = num_classes
        self.real_is = real_is

    @classmethod
    def from_results(cls, results: dict[str, InflateResult], real_is: float | None = None) -> "InflateTraceDisplay":
        first = next(iter(results.values()))
        return cls({name: r.trace for name, r in results.items()}, first.num_classes, real_is)

    def draw(self, axes) -> None:
        for name, trace in self.traces.items():
            steps = [t.step for t in trace]
            axes[0].plot(steps, [t.is_mean for t in trace], marker="o", markersize=3, label=name)
            axes[1].plot(steps, [t.conditional_entropy_bits for t in trace], marker="o", markersize=3, label=f"H(y|x), {name}")
        axes[0].axhline(self.num_classes, color="black", linestyle=":", label=f"K = {self.num_classes}")
        if self.real_is is not None:
            axes[0].axhline(self.real_is, color="#1b9e77", linestyle="--", label=f"real held-out IS = {self.real_is:.2f}")
        axes[0].set_xlabel("gradient step")
        axes[0].set_ylabel("Inception Score")
        axes[0].set_title("IS of noise under the inflate attack")
        axes[0].legend(fontsize=8)
        axes[1].set_xlabel("gradient step")
        axes[1].set_ylabel("E[H(y|x)] (bits)")
        axes[1].set_yscale("log")
        axes[1].set_title("conditional entropy")
        axes[1].legend(fontsize=8)
