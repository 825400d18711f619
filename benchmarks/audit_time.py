"""Wall time of ``isgame audit`` (the digits default) over repeated runs: median and per-section seconds.

Each run is the real command in a fresh process (``python -m isgame.cli audit --quiet --json``),
so start-up, imports and report writing count. The per-section seconds come from the audit's
own ``section_seconds``; the numbers of the first run are compared with the later ones, which
must be identical (the same command gives the same numbers). Two profiles: the full audit and
``--fast`` (200 samples per section, 5 bootstrap draws per matrix cell, the bounded sweep in L∞ only).

    python benchmarks/audit_time.py [--quick] [--runs 3] [--profile full|fast|both]

Target (issue 16): median of 3 runs at most 45 s on 2 cores with the 11 x 10 matrix, at most 60 s
once the matrix grew (it is 17 x 20 now). ``--quick`` runs the fast profile once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import emit

TARGET_MEDIAN_SECONDS = 60.0
PROFILES = {"full": [], "fast": ["--fast"]}
#: keys whose values differ between identical runs by design
VOLATILE = {"seconds", "section_seconds", "out_dir", "files", "figures"}


def one_run(folder: Path, options: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "isgame.cli", "audit", "--quiet", "--out", str(folder / "audit"),
                    "--json", str(folder / "audit.json"), *options], check=True, capture_output=True)
    return time.perf_counter() - started, json.loads((folder / "audit.json").read_text())


def stable(value):
    """The audit's JSON without timings and paths, for comparing runs."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE and not k.endswith("seconds")}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def measure(profile: str, runs: int) -> dict:
    """``runs`` audits of one profile: wall seconds, their median, median section seconds, identical numbers."""
    walls, sections, reports = [], [], []
    for index in range(runs):
        with tempfile.TemporaryDirectory() as folder:
            wall, report = one_run(Path(folder), PROFILES[profile])
        walls.append(wall)
        sections.append(report["section_seconds"])
        reports.append(stable(report))
        print(f"{profile} run {index + 1}: {wall:.1f} s wall, audit {report['seconds']:.1f} s: "
              + ", ".join(f"{k} {v:.1f}" for k, v in report["section_seconds"].items()), file=sys.stderr, flush=True)
    median = statistics.median(walls)
    return {"runs": runs, "wall_seconds": [round(w, 2) for w in walls], "median_wall_seconds": round(median, 2),
            "median_section_seconds": {k: round(statistics.median(s[k] for s in sections), 2) for k in sections[0]},
            "identical_numbers": all(r == reports[0] for r in reports), "meets_target": median <= TARGET_MEDIAN_SECONDS}


def sentence(profile: str, figures: dict) -> str:
    slowest = sorted(figures["median_section_seconds"].items(), key=lambda item: -item[1])[:3]
    runs = figures["runs"]
    return (f"`isgame audit{' --fast' if profile == 'fast' else ''}` (digits) took a median of "
            f"{figures['median_wall_seconds']:.1f} s wall over {runs} run(s) "
            f"({', '.join(f'{w:.1f}' for w in figures['wall_seconds'])} s); the slowest sections: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in slowest)
            + (f"; the numbers of every run were {'identical' if figures['identical_numbers'] else 'NOT identical'}"
               if runs > 1 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--profile", choices=("full", "fast", "both"), default=None,
                        help="default both (quick: fast)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    chosen = args.profile or ("fast" if args.quick else "both")
    profiles = ["full", "fast"] if chosen == "both" else [chosen]
    figures = {profile: measure(profile, runs) for profile in profiles}
    # The first profile's figures stay at the top level, as before the profiles existed.
    figures = {**figures[profiles[0]], "profile": profiles[0], "profiles": figures,
               "targets": {"median_wall_seconds_max": TARGET_MEDIAN_SECONDS}}
    figures["meets_target"] = all(p["meets_target"] for p in figures["profiles"].values())
    headline = "; ".join(sentence(profile, figures["profiles"][profile]) for profile in profiles) + "."
    emit("audit_time", figures, headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
