"""Peak RSS of ``isgame score`` on folders of 10^4 and 10^5 PNG images: it must stream.

Writes seeded 8x8 grey PNGs once (unless present), then runs the real CLI in a child process
under ``/usr/bin/time -v`` for each folder and prints peak RSS and images/s.

    python benchmarks/folder_memory.py [--quick] [--sizes 10000 100000] [--dir /tmp/isgame-folders]

Ends with one JSON line (benchmarks/common.py); ``--quick`` uses 1000 and 10000 PNGs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from common import cli_peak_rss, emit, ratio
from PIL import Image


def write_folder(folder: Path, count: int) -> None:
    if folder.is_dir() and sum(1 for _ in folder.iterdir()) >= count:
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, size=(8, 8), dtype=np.uint8), mode="L").save(folder / f"{index:06d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="default 10000 100000 (quick: 1000 10000)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/isgame-folders"))
    args = parser.parse_args()
    runs = []
    for count in args.sizes or ([1_000, 10_000] if args.quick else [10_000, 100_000]):
        folder = args.dir / f"png-{count}"
        write_folder(folder, count)
        mib, seconds, _ = cli_peak_rss(["score", str(folder), "--quiet", "--json", str(args.dir / f"score-{count}.json")])
        runs.append({"images": count, "peak_rss_mib": mib, "seconds": seconds, "images_per_s": count / seconds})
        print(f"{count:>7} PNGs: peak RSS {mib:7.1f} MiB, {seconds:6.1f} s ({count / seconds:,.0f} images/s)",
              file=sys.stderr, flush=True)
    small, large = runs[0], runs[-1]
    growth = ratio(large["peak_rss_mib"], small["peak_rss_mib"])
    headline = (f"A folder of {large['images']:,} 8x8 PNGs scores with peak RSS {large['peak_rss_mib']:.1f} MiB against "
                f"{small['peak_rss_mib']:.1f} MiB for {small['images']:,} ({growth}x), at {large['images_per_s']:,.0f} "
                "images/s including start-up.")
    emit("folder_memory", {"runs": runs, "peak_rss_ratio": growth}, headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
