"""The defended score: ``digits-robust`` (PGD adversarially trained) against the standard ``digits``.

Measures, on the held-out digits (digits:test) unless said otherwise:

a. clean and robust accuracy of both classifiers at digits-robust's ε (foolbox LinfPGD, untargeted,
   50 steps: more than training's 7);
b. the bounded attack (``isgame attack bounded``: targeted L∞ PGD toward i mod K on real images, foolbox's
   default 40 steps) under each classifier: the smallest ε of one grid that lifts IS by 10% (IS under
   digits-robust is R-IS);
c. the inflate attack (``isgame attack inflate``, its defaults) from the same uniform noise under each
   classifier: final IS; FID of each inflated set against digits:test on the features of digits, digits-robust
   and digits-b (a neutral third network); the mean L2 distance (pixels in [0, 1], 64 of them) from each image
   to its nearest digits:train image; and a side-by-side grid of both sets in ``outputs/``.

The last line printed is one JSON object.

    python benchmarks/robust_classifier.py [--quick] [--n 1000] [--grid outputs/robust_inflate_grid.png]

Without ``--quick`` (and unless ``--no-retrain``) it also retrains digits-robust from its seed and reports the
largest weight difference from the shipped file and the agreement of their held-out predictions.

``--quick``: 200 inflated images, the bounded attack on the first 100 held-out digits with a coarser ε grid
(its ε to +10% is coarser too), robust accuracy on all 540, no retraining.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import emit

from isgame.attacks.bounded import bounded_sweep
from isgame.attacks.inflate import InflateAttack
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.adversarial_training import ROBUST_EPSILON, ROBUST_EVAL_STEPS, robust_accuracy
from isgame.scoring.metrics.fid import frechet_distance
from isgame.scoring.pipeline import classify_with_features
from isgame.scoring.sources.digits_data import digits_split
from isgame.scoring.sources.samples import open_images

#: ε grid of the bounded attack (L∞, [0, 1] pixel units): finer than the command's default at the small end
BOUNDED_EPSILONS = [0.0] + [k / 255 for k in (1, 2, 4, 8, 16, 32, 48, 56, 64, 72, 80, 88, 96, 112, 128)]
#: --quick's coarser grid (each ε is one 40-step PGD run per classifier)
QUICK_EPSILONS = [0.0] + [k / 255 for k in (16, 32, 64, 80, 96, 112, 128)]
NAMES = ("digits", "digits-robust")
FEATURE_SPACES = ("digits", "digits-robust", "digits-b")


def accuracies(classifiers: dict) -> dict:
    split = digits_split()
    return {name: robust_accuracy(c, split.test_images, split.test_labels, epsilon=ROBUST_EPSILON,
                                  steps=ROBUST_EVAL_STEPS, seed=0).to_dict() for name, c in classifiers.items()}


def bounded(classifiers: dict, n: int, epsilons: list[float]) -> dict:
    images = digits_split().test_images[:n]
    figures = {}
    for name, classifier in classifiers.items():
        sweep = bounded_sweep(classifier, images, norm="linf", epsilons=epsilons, seed=0)
        figures[name] = {"real_is": sweep.real_is, "epsilon_for_10_percent": sweep.epsilon_for_10_percent,
                         "is_by_epsilon_x255": {f"{s.epsilon * 255:g}": round(s.is_mean, 4) for s in sweep.scores},
                         "steps": sweep.steps, "n": sweep.n}
    return figures


def nearest_real_distance(images: torch.Tensor, train: torch.Tensor) -> float:
    """Mean over ``images`` of the L2 distance (pixels in [0, 1]) to the nearest training image."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=1).fit(train.flatten(1).numpy().astype(np.float64))
    distances, _ = index.kneighbors(images.flatten(1).numpy().astype(np.float64))
    return float(distances.mean())


def inflate(classifiers: dict, n: int) -> tuple[dict, dict]:
    """Inflate the same noise under each classifier; score each set in every feature space."""
    start = open_images("noise:uniform", n=n, seed=0).load_all()
    inflated = {name: InflateAttack()(c, start) for name, c in classifiers.items()}
    split = digits_split()
    spaces = {name: classifiers.get(name) or load_classifier(name) for name in FEATURE_SPACES}
    real_features = {name: classify_with_features(c, split.test_images)[1] for name, c in spaces.items()}
    sets = {"noise": start, "digits:train": split.train_images,
            **{f"inflated under {name}": result.images for name, result in inflated.items()}}
    fid = {label: {space: frechet_distance(classify_with_features(c, images)[1], real_features[space])
                   for space, c in spaces.items()} for label, images in sets.items()}
    nearest = {label: nearest_real_distance(images, split.train_images) for label, images in sets.items()
               if label != "digits:train"}
    nearest["digits:test"] = nearest_real_distance(split.test_images, split.train_images)
    figures = {"n": n, "final_is": {name: r.final_is for name, r in inflated.items()},
               "steps": {name: r.steps for name, r in inflated.items()},
               "fid_vs_digits_test": fid, "mean_nearest_train_l2": nearest}
    return figures, {name: r.images for name, r in inflated.items()}


def retrain_check() -> dict:
    """Retrain digits-robust from its seed (a few minutes) and compare it with the shipped file: largest weight
    difference (0.0 on the CPU that made it) and agreement of held-out predictions."""
    from isgame.scoring.classifiers.adversarial_training import ROBUST_TRAIN_STEPS
    from isgame.scoring.classifiers.digits import SHIPPED_DIGITS_WEIGHTS, train_digits_cnn

    tick = time.perf_counter()
    result = train_digits_cnn(SHIPPED_DIGITS_WEIGHTS["digits-robust"][1], adversarial_epsilon=ROBUST_EPSILON,
                              adversarial_steps=ROBUST_TRAIN_STEPS)
    seconds = time.perf_counter() - tick
    shipped = load_classifier("digits-robust").network
    shipped_state = shipped.state_dict()
    largest = max(float((value - shipped_state[key]).abs().max()) for key, value in result.network.state_dict().items())
    images = digits_split().test_images
    with torch.no_grad():
        agreement = float((result.network(images)[0].argmax(1) == shipped(images)[0].argmax(1)).float().mean())
    return {"training_seconds": seconds, "held_out_accuracy": result.held_out_accuracy,
            "largest_weight_difference": largest, "prediction_agreement": agreement}


def save_grid(images: dict, path: Path) -> None:
    """Both inflated sets side by side, 10 per class (rows: classes 0..9 by the cycling targets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    from isgame.app.figures import save_figure_atomic

    figure, axes = plt.subplots(1, len(images), figsize=(5 * len(images), 5.4))
    for ax, (name, batch) in zip(axes, images.items()):
        # Sample i has target i mod 10: reorder so that row c holds ten samples of class c.
        order = torch.arange(100).view(10, 10).t().flatten()
        shown = torch.nn.functional.interpolate(batch[:100][order], scale_factor=4, mode="nearest")
        grid = make_grid(shown, nrow=10, padding=2, pad_value=0.5)
        ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"inflated under {name} (row = target class)")
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure_atomic(figure, path)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 inflated images; bounded attack on 100 digits, coarse ε grid")
    parser.add_argument("--n", type=int, default=None, help="inflated images per classifier [1000; --quick: 200]")
    parser.add_argument("--grid", type=Path, default=Path("outputs/robust_inflate_grid.png"))
    parser.add_argument("--no-retrain", action="store_true",
                        help="skip retraining digits-robust from its seed (a few minutes; always skipped by --quick)")
    args = parser.parse_args()
    n = args.n or (200 if args.quick else 1000)
    torch.set_num_threads(1)  # 8x8 images: one thread beats two on a shared 2-core machine (measured 6x in PGD)
    classifiers = {name: load_classifier(name) for name in NAMES}
    seconds, tick = {}, time.perf_counter()
    accuracy = accuracies(classifiers)
    seconds["accuracy"], tick = time.perf_counter() - tick, time.perf_counter()
    print(f"accuracy at ε = {ROBUST_EPSILON}: {json.dumps(accuracy)}", flush=True)
    sweep = bounded(classifiers, 100 if args.quick else 540, QUICK_EPSILONS if args.quick else BOUNDED_EPSILONS)
    seconds["bounded"], tick = time.perf_counter() - tick, time.perf_counter()
    print(f"bounded: {json.dumps(sweep)}", flush=True)
    inflated, images = inflate(classifiers, n)
    seconds["inflate"] = time.perf_counter() - tick
    print(f"inflate: {json.dumps(inflated)}", flush=True)
    save_grid(images, args.grid)
    retrain = None if args.quick or args.no_retrain else retrain_check()
    if retrain is not None:
        print(f"retrained from the seed: {json.dumps(retrain)}", flush=True)
    summary(accuracy, sweep, inflated, args.quick, str(args.grid), seconds, retrain)


def summary(accuracy: dict, sweep: dict, inflated: dict, quick: bool, grid: str, seconds: dict,
            retrain: dict | None) -> dict:
    robust, standard = accuracy["digits-robust"], accuracy["digits"]
    fid = inflated["fid_vs_digits_test"]
    cross = {"robust_inflated_on_digits": fid["inflated under digits-robust"]["digits"],
             "standard_inflated_on_robust": fid["inflated under digits"]["digits-robust"],
             "robust_inflated_on_digits_b": fid["inflated under digits-robust"]["digits-b"],
             "standard_inflated_on_digits_b": fid["inflated under digits"]["digits-b"]}
    eps_is, eps_ris = sweep["digits"]["epsilon_for_10_percent"], sweep["digits-robust"]["epsilon_for_10_percent"]
    show = lambda e: "not reached on the grid" if e is None else f"{e * 255:g}/255"  # noqa: E731
    headline = (f"digits-robust: clean {100 * robust['clean_accuracy']:.1f}%, robust {100 * robust['robust_accuracy']:.1f}% "
                f"at L∞ ε = {ROBUST_EPSILON} ({ROBUST_EVAL_STEPS}-step PGD) against digits' "
                f"{100 * standard['robust_accuracy']:.1f}%; ε to lift IS by 10%: {show(eps_is)} (IS) vs {show(eps_ris)} "
                f"(R-IS); inflated sets' FID on digits-b features: {cross['standard_inflated_on_digits_b']:.1f} "
                f"(standard) vs {cross['robust_inflated_on_digits_b']:.1f} (robust).")
    figures = {"epsilon": ROBUST_EPSILON, "accuracy": accuracy, "bounded": sweep, "inflate": inflated,
               "cross_fid": cross, "grid": grid, "seconds": {k: round(v, 1) for k, v in seconds.items()},
               **({"retrain": retrain} if retrain is not None else {})}
    return emit("robust_classifier", figures, headline=headline, quick=quick)


if __name__ == "__main__":
    main()
