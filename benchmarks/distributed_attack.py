"""The inflate attack sharded across torchrun ranks against one process, in one run.

Runs ``isgame attack inflate`` on the same seeded noise three ways on this machine's cores:

* one process with ``T`` threads (T = the number of ranks, so both use the same cores);
* ``torchrun --nproc_per_node R`` with one thread per rank (gloo);
* one process with one thread (the per-rank work alone, for the scaling ratio).

It prints wall time (including start-up), the attack's own seconds, the ratios, and how far the
sharded result is from the one-process result: largest pixel difference, relative differences
of the final IS and of every trace step's IS, and whether step counts agree.

    python benchmarks/distributed_attack.py [--n 20000] [--ranks 2] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def attack(out: Path, *, n: int, steps: int, ranks: int, threads: int) -> tuple[dict, float, np.ndarray]:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m", "isgame.cli"]
                if ranks > 1 else [sys.executable, "-m", "isgame.cli"])
    command = launcher + ["attack", "inflate", "--num-samples", str(n), "--steps", str(steps), "--quiet",
                          "--out", str(out), "--json", str(out / "result.json")]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - started
    with np.load(out / "inflated.npz", allow_pickle=False) as arrays:
        images = arrays["images"]
    return json.loads((out / "result.json").read_text()), wall, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        runs = {
            f"1 process, {args.ranks} threads": attack(root / "a", n=args.n, steps=args.steps, ranks=1, threads=args.ranks),
            f"{args.ranks} ranks, 1 thread each": attack(root / "b", n=args.n, steps=args.steps, ranks=args.ranks, threads=1),
            "1 process, 1 thread": attack(root / "c", n=args.n, steps=args.steps, ranks=1, threads=1),
        }
    print(f"inflate attack, digits, n = {args.n}, at most {args.steps} steps")
    print(f"{'run':28s} {'wall s':>8s} {'attack s':>9s} {'steps':>6s} {'final IS':>10s}")
    for name, (result, wall, _) in runs.items():
        print(f"{name:28s} {wall:8.2f} {result['seconds']:9.2f} {result['steps']:6d} {result['final_is']:10.6f}")
    (threaded, threaded_wall, threaded_images), (sharded, sharded_wall, sharded_images), (alone, alone_wall, _) = runs.values()
    print(f"attack seconds, 1 thread / {args.ranks} ranks: {alone['seconds'] / sharded['seconds']:.2f}x")
    print(f"attack seconds, {args.ranks} threads / {args.ranks} ranks: {threaded['seconds'] / sharded['seconds']:.2f}x "
          f"(wall {threaded_wall / sharded_wall:.2f}x, start-up included)")
    trace_gap = max(abs(a["inception_score"] - b["inception_score"]) / a["inception_score"]
                    for a, b in zip(threaded["trace"], sharded["trace"]))
    print(f"sharded vs one process: max |pixel diff| {np.abs(threaded_images - sharded_images).max():.3g}, "
          f"pixels differing {int((threaded_images != sharded_images).sum())} of {threaded_images.size}, "
          f"final IS rel diff {abs(threaded['final_is'] - sharded['final_is']) / threaded['final_is']:.3g}, "
          f"max trace IS rel diff {trace_gap:.3g}, steps {threaded['steps']} vs {sharded['steps']}")


if __name__ == "__main__":
    main()
