"""Peak RSS of ``isgame score`` on folders of 10^4 and 10^5 PNG images: it must stream.

Writes seeded 8x8 grey PNGs once (unless present), then runs the real CLI in a child process
under ``/usr/bin/time -v`` for each folder and prints peak RSS and images/s.

    python benchmarks/folder_memory.py [--sizes 10000 100000] [--dir /tmp/isgame-folders]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/isgame-folders"))
    args = parser.parse_args()
    for count in args.sizes:
        folder = args.dir / f"png-{count}"
        write_folder(folder, count)
        command = ["/usr/bin/time", "-v", sys.executable, "-m", "isgame.cli", "score", str(folder), "--quiet",
                   "--json", str(args.dir / f"score-{count}.json")]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
        kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
        print(f"{count:>7} PNGs: peak RSS {kib / 1024:7.1f} MiB, {seconds:6.1f} s ({count / seconds:,.0f} images/s)", flush=True)


if __name__ == "__main__":
    main()
