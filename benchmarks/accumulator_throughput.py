"""Throughput (samples/s) and peak RSS of the streaming IS accumulator on synthetic K = 1000 logits.

Each N runs in a fresh subprocess so that its peak RSS is its own. Logits are generated batch
by batch (never all at once), so a flat peak RSS across N shows the accumulator itself is O(1) in N.

    python benchmarks/accumulator_throughput.py [--sizes 10000 100000 1000000] [--batch 8192]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_one(n: int, k: int, batch: int, splits: int, track_stderr: bool) -> dict:
    import torch

    from isgame.scoring.accumulator import InceptionScoreAccumulator

    generator = torch.Generator().manual_seed(0)
    accumulator = InceptionScoreAccumulator(k, splits=splits, total=n, track_stderr=track_stderr)
    generating = 0.0
    start = time.perf_counter()
    for offset in range(0, n, batch):
        tick = time.perf_counter()
        logits = torch.randn(min(batch, n - offset), k, generator=generator) * 4
        generating += time.perf_counter() - tick
        accumulator.update(logits)
    result = accumulator.compute()
    seconds = time.perf_counter() - start - generating
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "k": k, "track_stderr": track_stderr, "seconds": seconds, "samples_per_s": n / seconds,
            "peak_rss_mib": peak_mib, "is_mean": result.is_mean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--child", type=str, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, stderr = args.child.split(",")
        print(json.dumps(run_one(int(n), args.k, args.batch, args.splits, stderr == "1")))
        return
    rows = []
    for track_stderr in (True, False):
        for n in args.sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--child", f"{n},{int(track_stderr)}", "--k", str(args.k),
                 "--batch", str(args.batch), "--splits", str(args.splits)],
                check=True, capture_output=True, text=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'N':>9} {'stderr':>6} {'samples/s':>11} {'peak RSS MiB':>13}")
    for row in rows:
        print(f"{row['n']:>9} {str(row['track_stderr']):>6} {row['samples_per_s']:>11.0f} {row['peak_rss_mib']:>13.1f}")
    for track_stderr in (True, False):
        subset = [r for r in rows if r["track_stderr"] == track_stderr]
        ratio = subset[-1]["peak_rss_mib"] / subset[0]["peak_rss_mib"]
        print(f"stderr={track_stderr}: peak RSS at N={subset[-1]['n']} / at N={subset[0]['n']} = {ratio:.3f}")


if __name__ == "__main__":
    main()
