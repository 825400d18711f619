"""The inflate attack on Inception v3 (torchvision architecture, random weights) at 299 px: memory per chunk.

The attack runs its forward+backward passes in chunks of
``clamp(activation_budget_bytes // bytes_per_row, 1, batch_size)`` rows, ``bytes_per_row`` being the
activations autograd saves for one row (:mod:`isgame.attacks.chunk_size`). Each activation budget runs
in a fresh process; a thread samples that process's RSS every 5 ms during the attack, so the peak
above the RSS before the attack is the attack's own. Random weights, with batch norms set on seeded images so
that the logits depend on the input: the figures are about memory and speed, not about reaching K.

The last line printed is one JSON object.

    python benchmarks/inflate_inception.py [--quick] [--n 16] [--steps 3]

``--quick``: n = 8, 2 steps, the default budget only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch
from common import random_inception_v3

MIB = 2**20
PAGE = 4096


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakRss:
    """The largest RSS seen by a sampling thread between ``__enter__`` and ``__exit__``."""

    def __enter__(self) -> "PeakRss":
        self.before = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def random_inception_weights(folder: Path) -> Path:
    """:func:`common.random_inception_v3` (seed 0), saved as a plain state dict."""
    path = folder / "random_inception_v3.pth"
    torch.save(random_inception_v3().state_dict(), path)
    return path


def worker(weights: Path, n: int, steps: int, budget: int | None) -> dict:
    """One attack in this process; its figures as a dict (``budget`` None: no budget, one chunk of n rows).

    Against an isgame without activation budgets (before this benchmark existed) the attack runs one chunk
    of n rows and the per-row figures are None.
    """
    from isgame.attacks.inflate import InflateAttack
    from isgame.scoring.classifiers import load_classifier
    from isgame.scoring.sources.samples import noise_source

    torch.set_num_threads(2)
    classifier = load_classifier("inception-v3", weights=weights)
    start = noise_source("uniform", n=n, seed=0, image_size=(299, 299), channels=3).load_all()
    try:
        from isgame.attacks.chunk_size import chunk_rows, saved_activation_bytes_per_row
    except ImportError:  # the isgame of before: one chunk of batch_size rows
        bytes_per_row, rows, attack = None, n, InflateAttack(steps=steps, splits=1, batch_size=n)
    else:
        bytes_per_row = saved_activation_bytes_per_row(classifier, classifier.preprocess(start[:1]))
        effective_budget = budget if budget is not None else bytes_per_row * n
        rows = chunk_rows(bytes_per_row, activation_budget_bytes=effective_budget, batch_size=n)
        attack = InflateAttack(steps=steps, splits=1, batch_size=n, activation_budget_bytes=effective_budget)
    with PeakRss() as memory:
        result = attack(classifier, start)
    return {"budget_mib": None if budget is None else budget / MIB, "chunk_rows": rows,
            "saved_activations_mib_per_row": None if bytes_per_row is None else bytes_per_row / MIB,
            "predicted_chunk_activations_mib": None if bytes_per_row is None else rows * bytes_per_row / MIB,
            "peak_rss_above_start_mib": (memory.peak - memory.before) / MIB,
            "seconds": result.seconds, "steps": result.steps,
            "passes_per_sample": result.gradient_evaluations_per_sample,
            "forward_only_per_sample": (result.forward_evaluations - result.gradient_evaluations) / n,
            "fwd_bwd_images_per_s": result.gradient_evaluations / result.seconds,
            "samples_per_s": n / result.seconds, "initial_is": result.initial_is, "final_is": result.final_is}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 8, 2 steps, the default budget only")
    parser.add_argument("--n", type=int, default=None, help="noise images at 299 px [16; --quick: 8]")
    parser.add_argument("--steps", type=int, default=None, help="most gradient steps [3; --quick: 2]")
    parser.add_argument("--worker", nargs=2, metavar=("WEIGHTS", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.n or (8 if args.quick else 16)
    steps = args.steps or (2 if args.quick else 3)
    if args.worker:
        weights, budget = args.worker
        print(json.dumps(worker(Path(weights), n, steps, None if budget == "none" else int(budget))))
        return
    try:
        from isgame.attacks.chunk_size import DEFAULT_ACTIVATION_BUDGET_BYTES
    except ImportError:  # the isgame of before: no budget, one run
        DEFAULT_ACTIVATION_BUDGET_BYTES = None
    budgets = ([DEFAULT_ACTIVATION_BUDGET_BYTES] if args.quick or DEFAULT_ACTIVATION_BUDGET_BYTES is None
               else [256 * MIB, DEFAULT_ACTIVATION_BUDGET_BYTES])
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        weights = random_inception_weights(Path(folder))
        for budget in budgets:
            command = [sys.executable, __file__, "--worker", str(weights), "none" if budget is None else str(budget),
                       "--n", str(n), "--steps", str(steps)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
    default = runs[-1]
    budget_text = ("no activation budget" if default["budget_mib"] is None else
                   f"the default {default['budget_mib']:.0f} MiB activation budget "
                   f"({default['saved_activations_mib_per_row']:.0f} MiB saved per row)")
    headline = (f"Inception v3 (random weights), {n} noise images at 299 px, {default['steps']} steps: with "
                f"{budget_text} the attack runs {default['chunk_rows']} rows per chunk, peaks "
                f"{default['peak_rss_above_start_mib']:.0f} MiB above its start, at "
                f"{default['fwd_bwd_images_per_s']:.2f} forward+backward images/s and "
                f"{default['passes_per_sample']:.2f} passes per sample.")
    print(json.dumps({"benchmark": "inflate_inception", "n": n, "steps": steps, "quick": args.quick,
                      "image_size": 299, "runs": runs, "default": default, "headline": headline}))


if __name__ == "__main__":
    main()
