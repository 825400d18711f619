"""How much the input fingerprint (SHA-256 of the rows as they stream) slows ``isgame score`` of stored logits.

Writes an (N, K) float32 .npy (default 10^6 x 1000, 4 GB), scores it with the fingerprint on and off
(alternating, after one warm-up read so both runs read from the page cache), and prints the best
CPU seconds of each and the seconds spent inside the hash itself, timed around every update (on a
shared machine wall-clock differences are swamped by other workers' load). The ratio does not depend
on N: both the hash and the accumulator are linear in the rows.
Usage: python benchmarks/fingerprint_overhead.py [N] [K] [REPEATS]
       python benchmarks/fingerprint_overhead.py --quick    # N = 5 x 10^4, K = 1000, 1 repeat
Ends with one JSON line (benchmarks/common.py).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import emit

from isgame.scoring.pipeline import score_predictions
from isgame.scoring.sources.samples import open_predictions


def write_logits(path: Path, n: int, k: int) -> None:
    """Seeded logits written in chunks (memory: one chunk)."""
    rng = np.random.default_rng(0)
    header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, k))
    for start in range(0, n, 50_000):
        stop = min(start + 50_000, n)
        header[start:stop] = rng.normal(size=(stop - start, k)).astype(np.float32) * 3
    header.flush()
    del header


HASH_SECONDS = [0.0]


def timed(path: Path, *, fingerprint: bool) -> float:
    source = open_predictions(str(path))
    if not fingerprint:
        source = replace(source, fingerprint=None)
    else:
        add_rows = source.fingerprint.add_rows

        def timed_add_rows(*args) -> None:
            tick = time.perf_counter()
            add_rows(*args)
            HASH_SECONDS[0] += time.perf_counter() - tick

        source.fingerprint.add_rows = timed_add_rows
    # CPU seconds of this process: on a shared machine other workers' load swamps wall-clock differences.
    started = time.process_time()
    score_predictions(source, kind="logits", splits=10, progress=False)
    return time.process_time() - started


def main() -> None:
    quick = "--quick" in sys.argv
    if quick:
        sys.argv = [sys.argv[0], "50000", "1000", "1"]
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
        hashing = HASH_SECONDS[0] / repeats
        headline = (f"Input fingerprint while scoring {n:,} x {k} logits: {off:.2f} CPU s without it, {on:.2f} with "
                    f"(best of {repeats}; {100 * (on - off) / off:+.1f}%); {hashing:.2f} s per run inside the hash "
                    f"({100 * hashing / off:.1f}% of the run without it).")
        emit("fingerprint_overhead", {"n": n, "k": k, "repeats": repeats, "cpu_seconds_without": off,
                                      "cpu_seconds_with": on, "overhead_percent": 100 * (on - off) / off,
                                      "hash_seconds_per_run": hashing}, headline=headline, quick=quick)


if __name__ == "__main__":
    main()
