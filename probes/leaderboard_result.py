"""The leaderboard's result: per metric and degraded source, the smallest ε (L∞) that fools the metric, and the figure.

Units: ε in [0, 1] pixel units (``epsilon``); the tables and labels show it in 1/255 steps ("4/255"). A metric's
``normalised`` value along ε is (value - value at ε = 0) / (held-out real's value - value at ε = 0): 0 is the
unattacked degraded set, 1 is held-out real data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from isgame.scoring.plotting import Display

#: how an entry's sets were made: attacked through the metric's own loss, or another metric's attack's sets
WHITE_BOX = "white-box"
FOOLED, NOT_WITHIN_GRID, NOT_APPLICABLE, UNDEFINED = "fooled", "not fooled within the grid", "not applicable", "undefined"


def epsilon_label(epsilon: float | None) -> str:
    """ε in 1/255 steps: "0", "4/255", "2.83/255"."""
    if epsilon is None or math.isnan(epsilon):
        return "n/a"
    if epsilon == 0:
        return "0"
    steps = epsilon * 255
    return f"{round(steps)}/255" if abs(steps - round(steps)) < 1e-9 else f"{steps:.3g}/255"


@dataclass(frozen=True)
class EpsilonVerdict:
    """One attacked set's judgement: its ``epsilon``, the metric's ``value``, the test's ``p_value`` (NaN: not
    tested), ``draws``, and the matrix's ``verdict`` (detected, missed, not_applicable; None: value undefined)."""

    epsilon: float
    value: float
    p_value: float
    draws: int
    verdict: str | None

    def to_dict(self) -> dict[str, object]:
        return {"epsilon": self.epsilon, "epsilon_255": self.epsilon * 255, "value": self.value,
                "p_value": self.p_value, "draws": self.draws, "verdict": self.verdict}


@dataclass(frozen=True)
class LeaderboardEntry:
    """One metric on one degraded source: its value and verdict along the grid, and the ε that fools it.

    ``attack`` is "white-box" (sets attacked through this metric's own loss) or "transfer from M" (the sets of
    metric M's attack). ``grid`` holds one :class:`EpsilonVerdict` per grid ε, ``bisection`` the midpoints tried
    between the last flagged and the first missed grid ε. ``epsilon_to_fool`` is the smallest ε found whose set the
    test no longer flags (None: none within the grid, or not applicable), an upper bound on the smallest ε this
    attack needs; ``status`` says which. ``attack_losses``: the attack's loss at each grid ε (white-box only).
    """

    metric: str
    source: str
    attack: str
    status: str
    epsilon_to_fool: float | None
    reference_value: float
    higher_is_better: bool | None
    grid: list[EpsilonVerdict] = field(default_factory=list)
    bisection: list[EpsilonVerdict] = field(default_factory=list)
    attack_losses: list[float] | None = None

    @property
    def epsilons(self) -> list[float]:
        return [g.epsilon for g in self.grid]

    @property
    def values(self) -> list[float]:
        return [g.value for g in self.grid]

    @property
    def clean_value(self) -> float:
        return self.grid[0].value if self.grid else math.nan

    @property
    def normalised(self) -> list[float]:
        """0 at the unattacked set, 1 at held-out real's value; NaN where the two coincide or a value is undefined."""
        span = self.reference_value - self.clean_value
        if not math.isfinite(span) or abs(span) <= 1e-12 * max(abs(self.reference_value), 1.0):
            return [math.nan for _ in self.grid]
        return [(g.value - self.clean_value) / span + 0.0 for g in self.grid]  # + 0.0: no -0.0 in the JSON

    def epsilon_label(self) -> str:
        """"4/255", "> 32/255" (none within the grid), or "not applicable"."""
        if self.status == NOT_APPLICABLE:
            return "not applicable"
        if self.status == UNDEFINED:
            return "undefined"
        if self.epsilon_to_fool is None:
            return f"> {epsilon_label(max(self.epsilons))}"
        return epsilon_label(self.epsilon_to_fool)

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "source": self.source, "attack": self.attack, "status": self.status,
                "epsilon_to_fool": self.epsilon_to_fool,
                "epsilon_to_fool_255": None if self.epsilon_to_fool is None else self.epsilon_to_fool * 255,
                "epsilon_to_fool_label": self.epsilon_label(), "higher_is_better": self.higher_is_better,
                "value_clean": self.clean_value, "value_at_max_epsilon": self.grid[-1].value if self.grid else None,
                "held_out_real": self.reference_value, "normalised": self.normalised,
                "grid": [g.to_dict() for g in self.grid], "bisection": [b.to_dict() for b in self.bisection],
                "attack_losses": self.attack_losses}


@dataclass(frozen=True)
class LeaderboardResult:
    """Every entry (one per metric and source; white-box or transfer), the FID attack's transfer to FID-b and the
    wavelet distance (``transfers``), and the settings: ``epsilons`` the L∞ grid, ``n`` images per set, ``steps``
    PGD steps per ε, ``bisection_steps``, the test's ``alpha`` and ``most_draws``."""

    entries: list[LeaderboardEntry]
    transfers: list[LeaderboardEntry]
    epsilons: list[float]
    sources: list[str]
    metrics: list[str]
    n: int
    seed: int
    steps: int
    bisection_steps: int
    alpha: float
    most_draws: int
    domain: dict[str, object] = field(default_factory=dict)
    auxiliary: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def entry(self, metric: str, source: str) -> LeaderboardEntry:
        """The entry of ``metric`` on ``source``."""
        return next(e for e in self.entries if e.metric == metric and e.source == source)

    def to_dict(self) -> dict[str, object]:
        return {
            "epsilons": self.epsilons, "epsilons_255": [e * 255 for e in self.epsilons], "norm": "linf",
            "sources": self.sources, "metrics": self.metrics, "n": self.n, "seed": self.seed,
            "steps_per_epsilon": self.steps, "bisection_steps": self.bisection_steps,
            "test": {"kind": "the robustness matrix's one-sided sign test of the attacked set against held-out real "
                             "data over half-samples, each set a family of one at level alpha (no Holm across the "
                             "grid: flagging is easier than in the matrix, so a reported ε to fool is conservative)",
                     "alpha": self.alpha, "most_draws": self.most_draws},
            "epsilon_to_fool": "the smallest grid ε whose attacked set the test no longer flags (verdict missed), "
                               "refined by bisection between the last flagged and the first missed grid ε (upper end "
                               "of the final bracket); '> ε_max' when every grid ε is flagged",
            "normalised": "(value - value at ε = 0) / (held-out real - value at ε = 0): 0 unattacked, 1 real",
            "entries": [e.to_dict() for e in self.entries],
            "transfer": [t.to_dict() for t in self.transfers],
            "domain": self.domain, "auxiliary_classifiers": self.auxiliary, "notes": list(self.notes),
            "seconds": self.seconds,
        }


class LeaderboardDisplay(Display):
    """Each metric's normalised value (0 unattacked, 1 held-out real) against ε, one panel per source; the grid ε
    are evenly spaced (0, 1/255, 2/255, ...), × where the verdict is missed; dashed lines judge another metric's
    attack's sets (transfer, the FID attack's to FID-b and the wavelet distance among them)."""

    def figure_size(self) -> tuple[float, float]:
        # At most about 11 inches wide: shown 800 px wide, a 9 pt label then stays at least 9 px high.
        return 4.3 * max(1, len(self.result.sources)) + 2.3, 4.8

    @property
    def panels(self) -> int:  # one per source
        return max(1, len(self.result.sources))

    def draw(self, axes) -> None:
        import numpy as np

        r = self.result
        panels = list(np.atleast_1d(axes))
        colours = _colours(r.metrics)
        positions = range(len(r.epsilons))
        for ax, source in zip(panels, r.sources):
            for entry in [e for e in [*r.entries, *r.transfers]
                          if e.source == source and e.status not in (NOT_APPLICABLE, UNDEFINED)]:
                values = entry.normalised
                if all(math.isnan(v) for v in values):
                    continue
                style = "-" if entry.attack == WHITE_BOX else "--"
                ax.plot(positions, values, style, marker="o", markersize=3, linewidth=1.4,
                        color=colours[entry.metric],
                        label=entry.metric if entry.attack == WHITE_BOX else f"{entry.metric} ({entry.attack})")
                missed = [i for i, g in enumerate(entry.grid) if g.verdict == "missed"]
                ax.plot(missed, [values[i] for i in missed], linestyle="none", marker="x", markersize=7,
                        color=colours[entry.metric])
            ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
            ax.axhline(0.0, color="grey", linewidth=0.6)
            ax.set_xticks(list(positions), [epsilon_label(e) for e in r.epsilons], fontsize=9, rotation=30)
            ax.tick_params(axis="y", labelsize=9)
            ax.set_xlabel("L∞ ε of the attack", fontsize=10)
            ax.set_ylabel("normalised value (0 unattacked, 1 real)", fontsize=10)
            ax.set_title(f"{source} (n = {r.n}); × not flagged", fontsize=10)
            ax.set_ylim(-0.6, 1.6)
        panels[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)


def _colours(metrics: list[str]) -> dict[str, object]:
    import matplotlib

    palette = matplotlib.colormaps["tab20"]
    return {metric: palette(i % 20) for i, metric in enumerate(metrics)}
