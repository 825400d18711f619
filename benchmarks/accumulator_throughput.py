"""Streaming IS at K = 1000 from a ``.npy`` of logits: rows/s with and without the standard error, peak RSS.

The path measured is the command's: ``open_predictions`` streams rows from the file and
``score_predictions`` feeds them to the accumulator, exactly as ``isgame score FILE.npy --input logits``.
The files (seeded N(0, 4^2) float32 logits) are written once into ``--dir`` and read from the page
cache, so the figure is the accumulator's, not the disk's; ``read_rows_per_s`` is the loader alone
(the ceiling). With the standard error the command reads the rows twice (the second pass of
``InceptionScoreAccumulator.second_pass``), so its ceiling is half the loader's. Each (N, stderr) runs in a fresh subprocess, so its peak RSS is its own: a flat RSS
across N shows that memory does not grow with N.

    python benchmarks/accumulator_throughput.py [--quick] [--sizes 10000 100000 1000000] [--dir DIR]

Targets: >= 150,000 rows/s without the standard error, >= 60,000 with it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import emit, peak_rss_mib, ratio, run_child

K = 1000
TARGETS = {"rows_per_s_min": 150_000, "rows_per_s_with_stderr_min": 60_000}


def logits_file(folder: Path, n: int) -> Path:
    """A seeded (n, K) float32 .npy, written in blocks so that writing it needs little memory."""
    path = folder / f"logits-{n}x{K}.npy"
    if not path.exists():
        rng = np.random.default_rng(0)
        array = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=np.float32, shape=(n, K))
        for first in range(0, n, 50_000):
            rows = min(50_000, n - first)
            array[first : first + rows] = rng.standard_normal((rows, K), dtype=np.float32) * 4
        array.flush()
        del array
        path.with_suffix(".tmp.npy").rename(path)
    return path


def child(path: Path, track_stderr: bool) -> dict:
    import torch

    from isgame.scoring.pipeline import score_predictions
    from isgame.scoring.sources.samples import open_predictions

    torch.set_num_threads(2)
    source = open_predictions(str(path))
    start = time.perf_counter()
    for _ in source.batches(8192):  # the loader alone, warm page cache: the ceiling
        pass
    read_seconds = time.perf_counter() - start
    start = time.perf_counter()
    report = score_predictions(source, kind="logits", splits=10, progress=False, track_stderr=track_stderr)
    seconds = time.perf_counter() - start
    n = source.num_samples
    return {"n": n, "track_stderr": track_stderr, "rows_per_s": n / seconds, "read_rows_per_s": n / read_seconds,
            "peak_rss_mib": peak_rss_mib(), "is_mean": report.result.is_mean,
            "stderr_nats": report.result.mutual_information_stderr_nats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--quick", action="store_true", help="N = 10^4 and 5 x 10^4 only")
    parser.add_argument("--dir", type=Path, default=None, help="where the .npy files are kept (default: a temporary folder)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import json

        path, stderr = args.child.rsplit(",", 1)
        print(json.dumps(child(Path(path), stderr == "1")))
        return
    sizes = args.sizes or ([10_000, 50_000] if args.quick else [10_000, 100_000, 1_000_000])
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for n in sizes:
            path = logits_file(folder, n)
            for track_stderr in (False, True):
                rows.append(run_child([__file__, "--child", f"{path},{int(track_stderr)}"]))
                r = rows[-1]
                print(f"N={n:>9,} stderr={track_stderr!s:>5}: {r['rows_per_s']:>9,.0f} rows/s "
                      f"(loader alone {r['read_rows_per_s']:,.0f}), peak RSS {r['peak_rss_mib']:.1f} MiB", file=sys.stderr)
    largest = max(sizes)
    plain = next(r for r in rows if r["n"] == largest and not r["track_stderr"])
    with_stderr = next(r for r in rows if r["n"] == largest and r["track_stderr"])
    rss = [r["peak_rss_mib"] for r in rows if r["track_stderr"]]
    figures = {
        "k": K, "sizes": sizes, "runs": rows,
        "rows_per_s": round(plain["rows_per_s"]), "rows_per_s_with_stderr": round(with_stderr["rows_per_s"]),
        "read_rows_per_s": round(plain["read_rows_per_s"]),
        "peak_rss_ratio_largest_to_smallest": ratio(rss[-1], rss[0]),
        "targets": TARGETS,
        "meets_targets": plain["rows_per_s"] >= TARGETS["rows_per_s_min"]
        and with_stderr["rows_per_s"] >= TARGETS["rows_per_s_with_stderr_min"],
    }
    headline = (f"Streaming IS from a K = {K} .npy at N = {largest:,}: {plain['rows_per_s']:,.0f} rows/s without the "
                f"standard error, {with_stderr['rows_per_s']:,.0f} with it (the loader alone reads "
                f"{plain['read_rows_per_s']:,.0f}); peak RSS {rss[0]:.0f} MiB at N = {sizes[0]:,} and {rss[-1]:.0f} MiB "
                f"at N = {largest:,}.")
    emit("accumulator_throughput", figures, headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
