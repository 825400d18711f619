"""Peak RSS of ``isgame score`` on a large .npy of logits (default 10^6 x 1000 float32, 4 GB).

Writes the file once (chunked, seeded) unless it exists, then runs the real CLI in a child
process under ``/usr/bin/time -v`` and prints its peak RSS against the file size, and the
same for a 10x smaller file, so the ratio shows whether memory grows with N.

    python benchmarks/score_memory.py [--quick] [--rows 1000000] [--classes 1000] [--dir /tmp/isgame-bench]

Ends with one JSON line (benchmarks/common.py); ``--quick`` uses 10^5 rows (and 10^4).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from common import cli_peak_rss, emit, ratio


def write_logits(path: Path, rows: int, classes: int, chunk: int = 50_000) -> None:
    if path.exists() and path.stat().st_size > rows * classes * 4:
        return
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, classes))
    rng = np.random.default_rng(0)
    for start in range(0, rows, chunk):
        stop = min(start + chunk, rows)
        array[start:stop] = rng.normal(scale=4.0, size=(stop - start, classes)).astype(np.float32)
    array.flush()
    del array


def peak_rss_mib(path: Path) -> tuple[float, float]:
    rss, seconds, _ = cli_peak_rss(["score", str(path), "--input", "logits", "--splits", "10", "--quiet",
                                    "--json", str(path.with_suffix(".json"))])
    return rss, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="default 10^6 (quick: 10^5)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/isgame-bench"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    largest = args.rows or (100_000 if args.quick else 1_000_000)
    runs = []
    for rows in (largest // 10, largest):
        path = args.dir / f"logits-{rows}x{args.classes}.npy"
        write_logits(path, rows, args.classes)
        rss, seconds = peak_rss_mib(path)
        runs.append({"rows": rows, "file_mib": path.stat().st_size / 2**20, "peak_rss_mib": rss, "seconds": seconds,
                     "rows_per_s": rows / seconds})
        print(f"N = {rows:>9}: file {runs[-1]['file_mib']:8.0f} MiB, peak RSS {rss:7.1f} MiB, "
              f"{seconds:6.1f} s ({rows / seconds:,.0f} rows/s)", file=sys.stderr, flush=True)
    small, large = runs
    headline = (f"`isgame score` on a {large['rows']:,} x {args.classes} float32 .npy ({large['file_mib']:,.0f} MiB) peaked at "
                f"{large['peak_rss_mib']:.1f} MiB RSS against {small['peak_rss_mib']:.1f} MiB for {small['rows']:,} rows "
                f"({ratio(large['peak_rss_mib'], small['peak_rss_mib'])}x for 10x the rows), "
                f"{large['rows_per_s']:,.0f} rows/s including start-up.")
    emit("score_memory", {"classes": args.classes, "runs": runs,
                          "peak_rss_ratio_10x_rows": ratio(large["peak_rss_mib"], small["peak_rss_mib"])},
         headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
