"""How strong is the ε-bounded attack? IS per ε for each strategy, against foolbox's PGD, and the ε each needs.

One run, per domain (the held-out digits; the test suite's "shapes" domain, RGB 12x12 and K = 5, from
``tests/factories.py``: the same image generator and network, 500 held-out images in a seeded random
order), L∞, the openai IS with 10 contiguous splits:

* ``auto`` and the chain of every strategy (own-class, balanced, direct: each warm-started from its own
  best set of the ε before), from one :func:`isgame.attacks.ball_ascent.maximise_score` run;
* the own-class PGD a reviewer writes (foolbox, toward each image's own class, 20 steps of ε/4, last
  iterate) and foolbox's PGD toward the cycling targets i mod K at the same budget, each from the clean
  images at every ε;
* foolbox's cycling PGD with its own defaults (40 steps of 0.033 ε, random start): the attack
  ``isgame attack bounded`` ran before, on its old grid up to 128/255.

For each, the smallest ε reaching +1%, +5% and +10% over the clean IS: bracketed by the grid and refined by two
geometric bisections (every midpoint attacked afresh; the ascent's own runs warm-start as the library
does), and the ratio of each ε to ``auto``'s. The last line is one JSON object with a ``headline``.

    python benchmarks/bounded_strength.py [--quick]

``--quick``: the digits only, and no single-strategy threshold searches (their chains still come from the
auto run).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from common import emit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from isgame.attacks.ball_ascent import STRATEGIES, maximise_score  # noqa: E402
from isgame.attacks.bounded import targeted_pgd  # noqa: E402
from isgame.attacks.score_protocol import ScoreProtocol  # noqa: E402
from isgame.scoring.classifiers import load_classifier  # noqa: E402
from isgame.scoring.runtime.threads import single_threaded  # noqa: E402
from isgame.scoring.sources.digits_data import digits_split  # noqa: E402

GRID_255 = (0, 1, 2, 4, 8, 16, 32)
#: the old sweep's grid (``isgame attack bounded`` before): the cycling attack with foolbox's defaults runs on it
OLD_GRID_255 = (0, 1, 2, 4, 8, 16, 32, 64, 128)
PERCENTS = (1, 5, 10)
BISECTIONS = 2
COMPARISON_STEPS = 20
SHAPES_REAL = 500


def digits():
    return load_classifier("digits"), digits_split().test_images


def shapes(folder: Path):
    """The suite's shapes domain: its network (tests/factories.py), 500 held-out images in a seeded random order."""
    from factories import shapes_images, train_shapes_network

    folder.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(train_shapes_network()), str(folder / "shapes.pt"))
    classifier = load_classifier(f"torchscript:{folder / 'shapes.pt'}?size=12x12")
    images, _ = shapes_images(SHAPES_REAL, seed=2)
    return classifier, images[torch.randperm(SHAPES_REAL, generator=torch.Generator().manual_seed(0))]


def fresh_attack_scores(classifier, images, *, targets: str, steps: int | None, rel_stepsize: float | None):
    """score(ε) of foolbox PGD from the clean images: toward each image's own class ("own", no random start: the
    reviewer's) or the cycling targets ("cycling", foolbox's seeded random start)."""
    import foolbox as fb

    from isgame.attacks.bounded import ModelInputLogits

    protocol = ScoreProtocol()
    model_input = classifier.preprocess(images).float()
    with torch.no_grad():
        own = classifier.logits_from_model_input(model_input).argmax(dim=1)

    def score(epsilon: float) -> float:
        if epsilon == 0:
            attacked = model_input
        elif targets == "own":
            attack = fb.attacks.LinfPGD(rel_stepsize=rel_stepsize, steps=steps, random_start=False)
            model = fb.PyTorchModel(ModelInputLogits(classifier).eval(), bounds=(0, 1), device=torch.device("cpu"))
            _, clipped, _ = attack(model, model_input, fb.criteria.TargetedMisclassification(own), epsilons=[epsilon])
            attacked = clipped[0]
        else:
            _, clipped, _ = targeted_pgd(classifier, model_input, norm="linf", epsilons=[epsilon], steps=steps,
                                         rel_stepsize=rel_stepsize)
            attacked = clipped[0]
        with torch.no_grad():
            return protocol.score(classifier.logits_from_model_input(attacked))

    return score


def threshold(grid: list[float], scores: list[float], goal: float, score_at) -> dict:
    """The smallest ε reaching ``goal``: the grid's bracket, then :data:`BISECTIONS` geometric midpoints."""
    above = next((i for i, s in enumerate(scores) if s >= goal), None)
    if above is None:
        return {"epsilon_255": None, "bracket_255": None}
    if above == 0:
        return {"epsilon_255": 0.0, "bracket_255": [0.0, 0.0]}
    low, high = grid[above - 1], grid[above]
    for _ in range(BISECTIONS):
        middle = math.sqrt(low * high) if low > 0 else high / 2
        if score_at(middle) >= goal:
            high = middle
        else:
            low = middle
    return {"epsilon_255": high * 255, "bracket_255": [low * 255, high * 255]}


def search_figures(search) -> dict:
    return {"epsilon_255": None if search.epsilon is None else search.epsilon * 255,
            "bracket_255": None if search.bracket is None else [b * 255 for b in search.bracket]}


def measure(name: str, classifier, images, *, single_strategies: bool) -> dict:
    grid = [e / 255 for e in GRID_255]
    started = time.perf_counter()
    result = maximise_score(classifier, images, epsilons=grid, percents=PERCENTS, compare_cycling=True)
    auto_seconds = time.perf_counter() - started
    clean = result.clean_score
    lines = {"auto": [s.is_mean for s in result.scores],
             **{strategy: [s.is_mean for s in scores] for strategy, scores in result.strategy_scores.items()},
             "own-class PGD (20 steps)": [s.is_mean for s in result.baseline],
             "cycling PGD (20 steps)": [s.is_mean for s in result.cycling]}
    thresholds = {"auto": {p: search_figures(result.thresholds[f"{p:g}"]) for p in PERCENTS}}
    if single_strategies:
        for strategy in STRATEGIES:
            alone = maximise_score(classifier, images, epsilons=grid, strategy=strategy, percents=PERCENTS,
                                   compare_cycling=False, baseline=False)
            thresholds[strategy] = {p: search_figures(alone.thresholds[f"{p:g}"]) for p in PERCENTS}
    fresh = {"own-class PGD (20 steps)": fresh_attack_scores(classifier, images, targets="own",
                                                             steps=COMPARISON_STEPS, rel_stepsize=0.25),
             "cycling PGD (20 steps)": fresh_attack_scores(classifier, images, targets="cycling",
                                                           steps=COMPARISON_STEPS, rel_stepsize=0.25)}
    for label, score_at in fresh.items():
        thresholds[label] = {p: threshold(grid, lines[label], clean * (1 + p / 100), score_at) for p in PERCENTS}
    old_grid = [e / 255 for e in OLD_GRID_255]
    old = fresh_attack_scores(classifier, images, targets="cycling", steps=None, rel_stepsize=None)
    old_scores = [old(e) for e in old_grid]
    lines["cycling PGD (foolbox defaults, old grid)"] = old_scores
    thresholds["cycling PGD (foolbox defaults, old grid)"] = {
        p: threshold(old_grid, old_scores, clean * (1 + p / 100), old) for p in PERCENTS}
    ratios = {}
    for p in PERCENTS:
        reference = thresholds["auto"][p]["epsilon_255"]
        ratios[str(p)] = {label: (None if reference in (None, 0) or t[p]["epsilon_255"] is None
                                  else round(t[p]["epsilon_255"] / reference, 3))
                          for label, t in thresholds.items() if label != "auto"}
    auto = lines["auto"]
    return {
        "domain": name, "n": result.n, "num_classes": result.num_classes, "protocol": result.protocol.describe(),
        "clean_is": clean, "epsilons_255": list(GRID_255), "old_epsilons_255": list(OLD_GRID_255),
        "is_per_epsilon": {label: [round(v, 4) for v in values] for label, values in lines.items()},
        "epsilon_for_percent": {label: {str(p): t[p] for p in PERCENTS} for label, t in thresholds.items()},
        "epsilon_ratio_to_auto": ratios,
        "ceiling": {"labels_kept": result.ceiling.labels_kept, "labels_changed": result.ceiling.labels_changed},
        "auto_monotone": auto == sorted(auto),
        "chains_monotone": all(v == sorted(v) for k, v in lines.items() if k in STRATEGIES),
        "auto_at_least_own_class_pgd": all(a >= b for a, b in zip(auto, lines["own-class PGD (20 steps)"])),
        "auto_seconds": round(auto_seconds, 1), "auto_passes": result.passes,
    }


def sentence(figures: dict) -> str:
    labels = {"auto": "auto", "own-class PGD (20 steps)": "own-class PGD",
              "cycling PGD (foolbox defaults, old grid)": "the old cycling PGD"}

    def needs(p: int) -> str:
        if figures["clean_is"] * (1 + p / 100) > figures["ceiling"]["labels_changed"]:
            return f"+{p}% is above the ceiling"
        found = []
        for label, name in labels.items():
            value = figures["epsilon_for_percent"][label][str(p)]["epsilon_255"]
            found.append(f"{name} {'not within the grid' if value is None else f'{value:.3g}/255'}")
        return f"ε for +{p}%: " + ", ".join(found)

    at8 = GRID_255.index(8)
    lines = figures["is_per_epsilon"]
    return (f"{figures['domain']} (N = {figures['n']}, K = {figures['num_classes']}, clean IS "
            f"{figures['clean_is']:.3f}): IS at 8/255 auto {lines['auto'][at8]:.3f}, own-class PGD "
            f"{lines['own-class PGD (20 steps)'][at8]:.3f}, the old cycling PGD "
            f"{lines['cycling PGD (foolbox defaults, old grid)'][at8]:.3f}; {needs(5)}; {needs(1)}; {needs(10)}; "
            f"ceilings {figures['ceiling']['labels_kept']:.3f} (labels kept) and "
            f"{figures['ceiling']['labels_changed']:.3f} (labels changed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the digits only, no single-strategy searches")
    args = parser.parse_args()
    import tempfile

    # Both domains' sets are small enough that the library runs its ascent on one thread; the foolbox comparisons
    # run on one thread too, so that a busy second core slows every attack alike.
    with single_threaded():
        domains = {"digits": measure("digits", *digits(), single_strategies=not args.quick)}
        if not args.quick:
            with tempfile.TemporaryDirectory() as folder:
                domains["shapes"] = measure("shapes", *shapes(Path(folder)), single_strategies=True)
    met = {"monotone": all(d["auto_monotone"] and d["chains_monotone"] for d in domains.values()),
           "auto_at_least_own_class_pgd": all(d["auto_at_least_own_class_pgd"] for d in domains.values())}
    headline = ("L∞, openai IS with 10 splits. " + "; ".join(sentence(d) for d in domains.values()) + ". Auto is "
                f"monotone and never below own-class PGD: {'yes' if all(met.values()) else 'NO'}.")
    emit("bounded_strength", {"domains": domains, "met": met}, headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
