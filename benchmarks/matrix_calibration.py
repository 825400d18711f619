"""Calibration of the robustness matrix's verdicts on the digits: false alarms under null games, and power.

A verdict is a claim, so its error rates are measured, not assumed. Each repeat plays the matrix on the digits
with its own seed (so its own seeded order of the held-out images, its own draws) and n held-out images as the
reference, and adds:

* **null games**, which degrade nothing, so that any flag is a false alarm:
  - *fresh held-out resample*: n other held-out images, disjoint from the reference's;
  - *real data in another order*: the reference's own images in a seeded random order (paired rows);
* **graded games**, each degrading one aspect by a known amount:
  - fidelity: honest KDE samples at shrinking bandwidths (smaller: closer to the training images);
  - diversity: truncation towards the class means at ψ = 0.9 .. 0.25 (smaller: less variety);
  - novelty: the reference with a share of its images replaced by training images (copies).

It reports, per metric, the rate at which its column flags a null game in a repeat (Holm controls that
family-wise rate at alpha: it must stay at or below alpha plus two Monte-Carlo standard errors), and per
metric and graded game the detection rate over the repeats, for the metrics whose scope holds the game's
aspect: the power curve.

    python benchmarks/matrix_calibration.py [--quick] [--repeats R] [--n N]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from common import emit

ALPHA = 0.05
BANDWIDTHS = (0.8, 0.4, 0.2, 0.1)
PSIS = (0.9, 0.75, 0.5, 0.25)
COPY_SHARES = (0.1, 0.25, 0.5, 1.0)


def null_games():
    """The two null games, as undeclared functions wrapped with ``degrades=()``."""
    from isgame.probes.matrix.games import Game

    def fresh(domain, n, seed, *, steps=None):
        return domain.real[n:2 * n].clone()

    def permutation(n: int, seed: int) -> np.ndarray:
        return np.random.default_rng((seed, 7)).permutation(n)

    def reordered(domain, n, seed, *, steps=None):
        return domain.real[:n][torch.from_numpy(permutation(n, seed))].clone()

    return {"null: fresh held-out resample": Game("null: fresh held-out resample", fresh, "null", ()),
            "null: real data in another order": Game("null: real data in another order", reordered, "null", (),
                                                     held_out=True, origin=lambda d, n, s: permutation(n, s))}


def graded_games(quick: bool):
    """name -> (aspect, strength, Game) for the three grades."""
    from isgame.probes.matrix.games import Game, _bandwidth, _kde, truncation

    games = {}
    for bandwidth in BANDWIDTHS[::2] if quick else BANDWIDTHS:
        def kde(domain, n, seed, *, steps=None, bandwidth=bandwidth):
            return _kde(domain, seed).sample(n, bandwidth=_bandwidth(domain, bandwidth), seed=seed)

        games[f"KDE h={bandwidth:g}"] = ("fidelity", bandwidth, Game(f"KDE h={bandwidth:g}", kde, "grade",
                                                                      ("fidelity",)))
    for psi in PSIS[::2] if quick else PSIS:
        def truncated(domain, n, seed, *, steps=None, psi=psi):
            return truncation(domain, n, seed, psi=psi)

        games[f"truncation ψ={psi:g}"] = ("diversity", psi, Game(f"truncation ψ={psi:g}", truncated, "grade",
                                                                  ("diversity",), held_out=True,
                                                                  origin=lambda d, n, s: np.arange(n)))
    for share in COPY_SHARES[::2] if quick else COPY_SHARES:
        def copies(domain, n, seed, *, steps=None, share=share):
            images = domain.real[:n].clone()
            count = round(share * n)
            rows = np.random.default_rng((seed, 11)).choice(domain.train.shape[0], count, replace=False)
            images[:count] = domain.train[torch.from_numpy(rows)]
            return images

        games[f"copies {share:.0%}"] = ("novelty", share, Game(f"copies {share:.0%}", copies, "grade", ("novelty",)))
    return games


def one_repeat(domain, seed: int, n: int, games: dict) -> dict:
    from isgame.probes.matrix import robustness_matrix
    from isgame.probes.matrix.games import GAMES, REFERENCE_GAME

    return robustness_matrix(domain, n=n, seed=seed, games={REFERENCE_GAME: GAMES[REFERENCE_GAME], **games},
                             alpha=ALPHA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--n", type=int, default=180, help="reference images (a third of the 540 held-out digits)")
    args = parser.parse_args()
    from isgame.scoring.domains import digits_domain

    repeats = args.repeats or (6 if args.quick else 20)
    domain = digits_domain()
    nulls, graded = null_games(), graded_games(args.quick)
    flagged = {}  # metric -> repeats with a false alarm
    detected = {}  # (game, metric) -> repeats detected
    started = time.perf_counter()
    metrics = []
    for repeat in range(repeats):
        result = one_repeat(domain, repeat, args.n, {**nulls, **{name: game for name, (_, _, game) in graded.items()}})
        metrics = result.metrics
        for metric in metrics:
            if any(result.cells[name][metric].verdict == "false_alarm" for name in nulls):
                flagged[metric] = flagged.get(metric, 0) + 1
            for name in graded:
                if result.cells[name][metric].verdict == "detected":
                    detected[(name, metric)] = detected.get((name, metric), 0) + 1
        print(f"repeat {repeat + 1}/{repeats}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    mc_error = math.sqrt(ALPHA * (1 - ALPHA) / repeats)
    false_alarms = {metric: flagged.get(metric, 0) / repeats for metric in metrics}
    from isgame.probes.matrix.measurements import METRIC_SCOPES

    power = {metric: {name: detected.get((name, metric), 0) / repeats for name, (aspect, _, _) in graded.items()
                      if aspect in METRIC_SCOPES[metric]} for metric in metrics}
    worst = max(false_alarms.values())
    within = worst <= ALPHA + 2 * mc_error
    curves = {aspect: [name for name, (a, _, _) in graded.items() if a == aspect]
              for aspect in ("fidelity", "diversity", "novelty")}
    headline = (f"Robustness matrix on the digits, {repeats} repeats of n = {args.n}: the highest false-alarm rate of "
                f"a column under two null games is {worst:.2f} (alpha {ALPHA}, Monte-Carlo error {mc_error:.3f}; "
                f"{'within' if within else 'ABOVE'} alpha + 2 errors); FID detects "
                + ", ".join(f"{name} {power['FID'].get(name, 0):.0%}" for name in curves['fidelity'])
                + "; C_T detects " + ", ".join(f"{name} {power['C_T'].get(name, 0):.0%}" for name in curves['novelty']))
    emit("matrix_calibration", {"repeats": repeats, "n": args.n, "alpha": ALPHA, "monte_carlo_error": mc_error,
                                "false_alarm_rate": false_alarms, "within_alpha": within, "power": power,
                                "grades": {name: {"aspect": aspect, "strength": strength}
                                           for name, (aspect, strength, _) in graded.items()},
                                "seconds": round(time.perf_counter() - started, 1)},
         headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
