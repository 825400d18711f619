"""Peak RSS of ``isgame score`` on a large .npy of logits (default 10^6 x 1000 float32, 4 GB).

Writes the file once (chunked, seeded) unless it exists, then runs the real CLI in a child
process under ``/usr/bin/time -v`` and prints its peak RSS against the file size, and the
same for a 10x smaller file, so the ratio shows whether memory grows with N.

    python benchmarks/score_memory.py [--rows 1000000] [--classes 1000] [--dir /tmp/isgame-bench]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


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
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "isgame.cli", "score", str(path), "--input", "logits",
               "--splits", "10", "--quiet", "--json", str(path.with_suffix(".json"))]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return kib / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/isgame-bench"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for rows in (args.rows // 10, args.rows):
        path = args.dir / f"logits-{rows}x{args.classes}.npy"
        write_logits(path, rows, args.classes)
        rss, seconds = peak_rss_mib(path)
        print(f"N = {rows:>9}: file {path.stat().st_size / 2**20:8.0f} MiB, peak RSS {rss:7.1f} MiB, "
              f"{seconds:6.1f} s ({rows / seconds:,.0f} rows/s)", flush=True)


if __name__ == "__main__":
    main()
