"""One metric's scorecard: its column of the robustness matrix, the ε that fools it, and a page.

``isgame matrix --metric NAME`` (one metric, a plug-in's or isgame's own) plays every game against that
metric alone; the scorecard adds the leaderboard's attack aimed at it (white-box through its own loss when it has
one, else transfer from the FID attack) at a reduced size, and writes ``scorecard.html`` beside the matrix's
files: what the metric claims (direction, scope, family, citation, where it comes from), its verdict on every
game with the p-value and the reference, and its ε to fool on each degraded source.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from pathlib import Path

from isgame import defaults
from isgame.app.figures import save_display, use_file_backend
from isgame.app.probe_commands import ProbeReport
from isgame.probes.leaderboard import robustness_leaderboard
from isgame.probes.leaderboard_result import LeaderboardDisplay, LeaderboardResult
from isgame.scoring.domains import Domain
from isgame.scoring.metrics.registry import COLUMNS
from isgame.scoring.runtime.atomic_io import write_text_atomic

#: the leaderboard's size in a scorecard: images per set, PGD steps per ε, L∞ grid (/255), bisection steps
SCORECARD_SAMPLES, SCORECARD_STEPS, SCORECARD_GRID_255, SCORECARD_BISECTION = 100, 5, (0, 2, 8, 32), 1


@dataclass(frozen=True)
class Scorecard:
    """``metric``'s declaration, its matrix column (``verdicts``: per game, value, reference, p, verdict), its
    confusion counts, and the leaderboard entries for it (``leaderboard``)."""

    metric: str
    declaration: dict[str, object]
    verdicts: dict[str, dict[str, object]]
    confusion: dict[str, int]
    leaderboard: LeaderboardResult
    files: dict[str, str] = field(default_factory=dict)

    def epsilon_to_fool(self) -> dict[str, str]:
        """Per degraded source, the ε that fools the metric ("4/255", "> 32/255", "not applicable")."""
        return {entry.source: entry.epsilon_label() for entry in self.leaderboard.entries
                if entry.metric == self.metric}

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "declaration": self.declaration, "verdicts": self.verdicts,
                "confusion": self.confusion, "epsilon_to_fool": self.epsilon_to_fool(),
                "leaderboard": self.leaderboard.to_dict(), "files": self.files}


def metric_scorecard(matrix: ProbeReport, domain: Domain, *, out_dir: Path | None = None,
                     seed: int = defaults.SEED, second_classifier=None, robust_classifier=None) -> Scorecard:
    """The scorecard of the one metric of ``matrix`` (a matrix report of one column on ``domain``); writes
    ``scorecard.html`` and ``scorecard_leaderboard.png`` into ``out_dir`` (None: write nothing)."""
    result = matrix.result
    (metric,) = result.metrics
    column = COLUMNS[metric]
    declaration = {"direction": {True: "higher is better", False: "lower is better", None: "two-sided"}[
        column.higher_is_better], "scope": list(column.scope), "family": column.family,
        "description": column.description, "citation": column.citation, "origin": column.origin,
        "differentiable": column.differentiable}
    verdicts = {game: {"value": cell.value, "reference": cell.reference, "p_value": cell.p_value,
                       "p_adjusted": cell.p_adjusted, "verdict": cell.verdict}
                for game, row in result.cells.items() for name, cell in row.items() if name == metric}
    auxiliary = {key: value for key, value in (("second_classifier", second_classifier),
                                               ("robust_classifier", robust_classifier)) if value is not None}
    board = robustness_leaderboard(domain, n=min(SCORECARD_SAMPLES, domain.real.shape[0]), seed=seed,
                                   metrics=[metric], steps=SCORECARD_STEPS,
                                   epsilons=[e / 255 for e in SCORECARD_GRID_255],
                                   bisection_steps=SCORECARD_BISECTION, **auxiliary)
    card = Scorecard(metric=metric, declaration=declaration, verdicts=verdicts,
                     confusion=result.confusion()[metric], leaderboard=board)
    if out_dir is None:
        return card
    folder = Path(out_dir)
    use_file_backend()
    files = {"leaderboard": save_display(LeaderboardDisplay(board).plot(), folder / "scorecard_leaderboard.png"),
             "page": "scorecard.html"}
    card = replace(card, files=files)
    write_text_atomic(folder / "scorecard.html", render_scorecard_html(card, folder))
    return card


def render_scorecard_html(card: Scorecard, folder: Path) -> str:
    """The scorecard's page: the metric's claim, its verdict per game, its ε to fool, the leaderboard figure."""
    from isgame.app.report_html import VERDICT_NAMES, _figure, _number, _page, _table

    d = card.declaration
    counts = card.confusion
    rows = [[game, _number(v["value"]), _number(v["reference"]), _number(v["p_value"]), _number(v["p_adjusted"]),
             VERDICT_NAMES.get(v["verdict"], str(v["verdict"]))] for game, v in card.verdicts.items()]
    classes = [["", "", "", "", "", str(v["verdict"] or "unmeasured")] for v in card.verdicts.values()]
    epsilon = card.epsilon_to_fool()
    parts = [
        f"<h1>Scorecard: {html.escape(card.metric)}</h1>",
        f"<section class='card' id='answer'><p><b>{html.escape(card.metric)}</b> ({html.escape(d['direction'])}; "
        f"claims {html.escape(', '.join(d['scope']))}; {html.escape(d['family'])}; from "
        f"{html.escape(str(d['origin']))}) detects <b>{counts['detected']}</b> of the "
        f"{counts['detected'] + counts['missed']} games in its scope, misses <b>{counts['missed']}</b>, with "
        f"{counts['false_alarm']} false alarm(s) and {counts['undecided']} undecided.</p>"
        "<p><b>ε that fools it</b> (L∞, "
        + ("white-box through its own loss" if d["differentiable"] else "transfer from the FID attack") + "): "
        + ", ".join(f"{html.escape(source)} {html.escape(label)}" for source, label in epsilon.items()) + ".</p>"
        f"<p>{html.escape(str(d['description']))}. {html.escape(str(d['citation']))}</p></section>",
        "<h2 id='verdicts'>Its verdict on every game</h2>",
        _table(["game", "value", "held-out real", "p", "p (Holm)", "verdict"], rows, classes),
        "<h2 id='leaderboard'>The ε that fools it</h2>",
        _figure(folder, card.files["leaderboard"], "its value against ε: 0 = the unattacked degraded set, 1 = "
                "held-out real data"),
    ]
    return _page(f"isgame scorecard: {card.metric}", parts)

