"""The inflate attack sharded across torchrun ranks against one process, in one run.

Runs ``isgame attack inflate`` on the same seeded noise three ways on this machine's cores:

* one process with ``T`` threads (T = the number of ranks, so both use the same cores);
* ``torchrun --nproc_per_node R`` with one thread per rank (gloo);
* one process with one thread (the per-rank work alone, for the scaling ratio).

It prints wall time (including start-up), the attack's own seconds, the ratios, and how far the
sharded result is from the one-process result: largest pixel difference, relative differences
of the final IS and of every trace step's IS, and whether step counts agree.

    python benchmarks/distributed_attack.py [--quick] [--n 20000] [--ranks 2] [--steps 50]

Ends with one JSON line (benchmarks/common.py); ``--quick`` uses n = 4000.
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
from common import emit, ratio


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
    parser.add_argument("--n", type=int, default=None, help="default 20000 (quick: 4000)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    args.n = args.n or (4_000 if args.quick else 20_000)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        runs = {
            f"1 process, {args.ranks} threads": attack(root / "a", n=args.n, steps=args.steps, ranks=1, threads=args.ranks),
            f"{args.ranks} ranks, 1 thread each": attack(root / "b", n=args.n, steps=args.steps, ranks=args.ranks, threads=1),
            "1 process, 1 thread": attack(root / "c", n=args.n, steps=args.steps, ranks=1, threads=1),
        }
    print(f"inflate attack, digits, n = {args.n}, at most {args.steps} steps", file=sys.stderr)
    print(f"{'run':28s} {'wall s':>8s} {'attack s':>9s} {'steps':>6s} {'final IS':>10s}", file=sys.stderr)
    for name, (result, wall, _) in runs.items():
        print(f"{name:28s} {wall:8.2f} {result['seconds']:9.2f} {result['steps']:6d} {result['final_is']:10.6f}",
              file=sys.stderr)
    (threaded, _, threaded_images), (sharded, _, sharded_images), (alone, _, _) = runs.values()
    trace_gap = max(abs(a["inception_score"] - b["inception_score"]) / a["inception_score"]
                    for a, b in zip(threaded["trace"], sharded["trace"]))
    figures = {
        "n": args.n, "ranks": args.ranks, "steps_limit": args.steps,
        "runs": {name: {"wall_s": wall, "attack_s": result["seconds"], "steps": result["steps"],
                        "final_is": result["final_is"]} for name, (result, wall, _) in runs.items()},
        "speedup_ranks_vs_one_thread": ratio(alone["seconds"], sharded["seconds"]),
        "speedup_ranks_vs_threads": ratio(threaded["seconds"], sharded["seconds"]),
        "max_pixel_diff": float(np.abs(threaded_images - sharded_images).max()),
        "final_is_rel_diff": abs(threaded["final_is"] - sharded["final_is"]) / threaded["final_is"],
        "max_trace_is_rel_diff": trace_gap, "same_steps": threaded["steps"] == sharded["steps"],
    }
    headline = (f"Inflate attack on {args.n:,} digits noise images: {args.ranks} one-thread torchrun ranks took "
                f"{sharded['seconds']:.2f} s of attack time, {figures['speedup_ranks_vs_one_thread']}x one 1-thread "
                f"process and {figures['speedup_ranks_vs_threads']}x one process with {args.ranks} threads; largest "
                f"pixel difference from one process {figures['max_pixel_diff']:.3g}, final IS relative difference "
                f"{figures['final_is_rel_diff']:.2g}.")
    emit("distributed_attack", figures, headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
