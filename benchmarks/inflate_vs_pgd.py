"""Time to lift the IS of n uniform-noise images to >= 0.999 K: the native attack vs foolbox PGD.

Same classifier (digits), same noise, one run. For PGD (targeted LinfPGD, ε = 1, i.e. the whole
box, toward the same cycling targets) the number of steps is found by doubling from foolbox's
default and then bisection; only the run at the smallest sufficient step count is timed, which
favours PGD. "Passes" are forward+backward evaluations per sample.

    python benchmarks/inflate_vs_pgd.py [--n 10000] [--rel-stepsizes 0.0333 0.1 0.3 0.5 1.0]
"""

from __future__ import annotations

import argparse
import time

import torch

from isgame.attacks.bounded import targeted_pgd
from isgame.attacks.inflate import InflateAttack
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.inception_score import inception_score
from isgame.scoring.samples import open_images

GOAL = 0.999
PGD_EPSILON = 1.0


CHUNK = 1000  # both attacks run per-sample steps in chunks of this size (a multiple of K, so PGD targets stay i mod K)


def pgd_is(classifier, start, rel_stepsize, steps, seed=0) -> tuple[float, float]:
    tick = time.perf_counter()
    attacked = []
    for offset in range(0, start.shape[0], CHUNK):
        # Targets must stay i mod K over the whole set: chunks start at multiples of K.
        _, clipped, _ = targeted_pgd(classifier, start[offset : offset + CHUNK], norm="linf", epsilons=[PGD_EPSILON],
                                     steps=steps, rel_stepsize=rel_stepsize, seed=seed + offset)
        attacked.append(clipped[0])
    seconds = time.perf_counter() - tick
    with torch.no_grad():
        logits = torch.cat([classifier.logits_from_model_input(chunk) for chunk in attacked])
    return inception_score(logits, splits=10, track_stderr=False).is_mean, seconds


def pgd_time_to_goal(classifier, start, rel_stepsize, *, first_steps, max_steps) -> dict:
    goal = GOAL * classifier.num_classes
    steps, last_fail = first_steps, 0
    score, seconds = pgd_is(classifier, start, rel_stepsize, steps)
    first = {"first_steps": first_steps, "first_seconds": seconds, "first_is": score}
    while score < goal:
        last_fail, previous = steps, score
        steps *= 2
        if steps > max_steps:
            return {"rel_stepsize": rel_stepsize, "steps": None, "seconds": None, "is": score, **first}
        score, seconds = pgd_is(classifier, start, rel_stepsize, steps)
        if score < goal and score - previous < 1e-3:
            # A plateau: this step size oscillates below the goal; more steps will not get there.
            return {"rel_stepsize": rel_stepsize, "steps": None, "seconds": None, "is": score, **first}
    low, high = last_fail, steps
    while high - low > max(1, high // 16):
        middle = (low + high) // 2
        middle_score, middle_seconds = pgd_is(classifier, start, rel_stepsize, middle)
        if middle_score >= goal:
            high, score, seconds = middle, middle_score, middle_seconds
        else:
            low = middle
    return {"rel_stepsize": rel_stepsize, "steps": high, "seconds": seconds, "is": score, **first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rel-stepsizes", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--max-steps", type=int, default=320)
    args = parser.parse_args()
    torch.set_num_threads(2)
    classifier = load_classifier("digits")
    start = open_images("noise:uniform", n=args.n, seed=0).load_all()
    goal = GOAL * classifier.num_classes

    native = InflateAttack(steps=200, target_fraction_of_k=GOAL, batch_size=CHUNK)(classifier, start)
    print(f"native (newton): IS {native.final_is:.4f} >= {goal:.3f} after {native.steps} steps in {native.seconds:.2f} s; "
          f"{native.gradient_evaluations_per_sample:.2f} forward+backward passes per sample "
          f"(+{native.forward_evaluations_per_sample - native.gradient_evaluations_per_sample:.2f} forward-only checks)",
          flush=True)

    default_steps = 40  # foolbox LinfPGD's default
    default = pgd_time_to_goal(classifier, start, 0.01 / 0.3, first_steps=default_steps, max_steps=args.max_steps)
    print(f"default PGD: {default}", flush=True)
    rows = [default]
    for rel in args.rel_stepsizes:
        rows.append(pgd_time_to_goal(classifier, start, rel, first_steps=5, max_steps=args.max_steps))
        print(f"PGD rel_stepsize {rel}: {rows[-1]}", flush=True)
    print(f"{'PGD rel_stepsize':>17} {'steps':>6} {'seconds':>8} {'passes/sample':>14} {'IS':>8}")
    for row in rows:
        steps = "-" if row["steps"] is None else row["steps"]
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.2f}"
        print(f"{row['rel_stepsize']:>17.4f} {steps:>6} {seconds:>8} {steps:>14} {row['is']:>8.4f}")
    reached = [r for r in rows[1:] if r["seconds"] is not None]
    tuned = min(reached, key=lambda r: r["seconds"]) if reached else None
    if default["first_is"] >= goal:
        print(f"PGD exactly at foolbox's defaults ({default_steps} steps): IS {default['first_is']:.4f} in "
              f"{default['first_seconds']:.2f} s = {default['first_seconds'] / native.seconds:.1f}x the native time")
    if default["seconds"] is not None:
        print(f"default-step PGD with the fewest sufficient steps / native time: {default['seconds'] / native.seconds:.1f}x "
              f"({default['steps']} steps at foolbox's default rel_stepsize)")
    else:
        print(f"default PGD did not reach {goal:.3f} within {args.max_steps} steps")
    if tuned is not None:
        print(f"tuned PGD (rel_stepsize {tuned['rel_stepsize']}) / native time: {tuned['seconds'] / native.seconds:.1f}x")


if __name__ == "__main__":
    main()
