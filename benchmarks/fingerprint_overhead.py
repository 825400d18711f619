"""How much the input fingerprint (SHA-256 of the rows as they stream) slows ``isgame score`` of stored logits.

Writes an (N, K) float32 .npy (default 10^6 x 1000, 4 GB), scores it with the fingerprint on and off
(alternating, after one warm-up read so both runs read from the page cache), and prints the seconds
of each run and the overhead in percent. Usage: python benchmarks/fingerprint_overhead.py [N] [K] [REPEATS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from isgame.scoring.pipeline import score_predictions
from isgame.scoring.samples import open_predictions


def write_logits(path: Path, n: int, k: int) -> None:
    """Seeded logits written in chunks (memory: one chunk)."""
    rng = np.random.default_rng(0)
    header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, k))
    for start in range(0, n, 50_000):
        stop = min(start + 50_000, n)
        header[start:stop] = rng.normal(size=(stop - start, k)).astype(np.float32) * 3
    header.flush()
    del header


def timed(path: Path, *, fingerprint: bool) -> float:
    source = open_predictions(str(path))
    if not fingerprint:
        source = replace(source, fingerprint=None)
    started = time.perf_counter()
    score_predictions(source, kind="logits", splits=10, progress=False)
    return time.perf_counter() - started


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    with tempfile.TemporaryDirectory(dir=".") as folder:
        path = Path(folder) / "logits.npy"
        write_logits(path, n, k)
        timed(path, fingerprint=False)  # warm the page cache
        runs = {True: [], False: []}
        for _ in range(repeats):
            for on in (False, True):
                runs[on].append(timed(path, fingerprint=on))
        off, on = min(runs[False]), min(runs[True])
        print(f"N={n} K={k}: without fingerprint {off:.2f} s, with {on:.2f} s (best of {repeats}); "
              f"overhead {100 * (on - off) / off:+.1f}%")


if __name__ == "__main__":
    main()
