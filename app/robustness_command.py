"""Library entry point behind ``isgame robustness``: the leaderboard of the ε that fools each metric.

Runs :func:`~isgame.probes.leaderboard.robustness_leaderboard`, writes its JSON and figure into a folder
(atomically) and returns a report with ``to_dict()``. It raises :class:`~isgame.scoring.errors.IsgameError` and
never exits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from isgame import defaults
from isgame.app.figures import save_display, use_file_backend
from isgame.app.outputs import prepare_out_dir
from isgame.probes.leaderboard import (
    LEADERBOARD_BISECTION_STEPS,
    LeaderboardDisplay,
    LeaderboardResult,
    robustness_leaderboard,
)
from isgame.scoring.domains import AUTO, Domain, load_domain
from isgame.scoring.provenance import domain_provenance
from isgame.scoring.results import with_provenance
from isgame.scoring.runtime.atomic_io import write_json_atomic

#: the files written into the report folder
JSON_NAME, FIGURE_NAME = "robustness.json", "robustness.png"


@dataclass(frozen=True)
class RobustnessReport:
    """The leaderboard, the files written (names relative to the folder) and how the result was made."""

    result: LeaderboardResult
    files: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        return with_provenance({"command": "robustness", **self.result.to_dict(), "files": self.files},
                               self.provenance)


def run_robustness(*, domain: Domain | None = None, out_dir: Path | None = None,
                   classifier_name: str = defaults.CLASSIFIER, seed: int = defaults.SEED, n: int | None = None,
                   epsilons: list[float] | None = None, metrics: list[str] | None = None,
                   sources: list[str] | None = None, steps: int | None = None,
                   bisection_steps: int = LEADERBOARD_BISECTION_STEPS, alpha: float = defaults.ALPHA,
                   most_draws: int | None = None, second_classifier=AUTO, robust_classifier=AUTO,
                   progress: bool = False) -> RobustnessReport:
    """The leaderboard on ``domain`` (default: ``classifier_name``'s built-in domain), the arguments as
    :func:`~isgame.probes.leaderboard.robustness_leaderboard` takes them; writes ``robustness.json`` and the figure
    ``robustness.png`` into ``out_dir`` (None: write nothing)."""
    domain = load_domain(classifier_name) if domain is None else domain
    result = robustness_leaderboard(domain, n=n, seed=seed, epsilons=epsilons, metrics=metrics, sources=sources,
                                    steps=steps, bisection_steps=bisection_steps, alpha=alpha, most_draws=most_draws,
                                    second_classifier=second_classifier, robust_classifier=robust_classifier,
                                    progress=progress)
    provenance = domain_provenance("robustness", domain, seed=seed, n=result.n).to_dict()
    if out_dir is None:
        return RobustnessReport(result=result, provenance=provenance)
    folder = prepare_out_dir(out_dir)
    use_file_backend()
    files = {"figure": save_display(LeaderboardDisplay(result).plot(), folder / FIGURE_NAME), "json": JSON_NAME}
    report = RobustnessReport(result=result, files=files, provenance=provenance)
    write_json_atomic(folder / JSON_NAME, report.to_dict())
    return report
