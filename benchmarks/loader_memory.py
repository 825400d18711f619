"""Peak RSS of ``isgame score`` on a nested folder, a zip and a float ``.npy`` at two sizes: none may grow with N.

Writes seeded data once (unless present): 8x8 grey PNGs spread over 10 class folders, the same PNGs
in a ``.zip``, and a float32 (N, 3, 32, 32) ``.npy`` in 0-255 (so ``--range auto`` scans it once
before scoring). Then runs the real CLI in a child process under ``/usr/bin/time -v`` per source.

    python benchmarks/loader_memory.py [--images 2000 20000] [--arrays 5000 50000] [--dir /tmp/isgame-loader]
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def png(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(8, 8), dtype=np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def write_tree_and_zip(folder: Path, archive: Path, count: int) -> None:
    if archive.exists():
        return
    rng = np.random.default_rng(0)
    partial = archive.with_suffix(".part")
    with zipfile.ZipFile(partial, "w") as bundle:
        for index in range(count):
            name = f"class{index % 10}/{index:06d}.png"
            data = png(rng)
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
            bundle.writestr(name, data)
    partial.rename(archive)


def write_array(path: Path, count: int) -> None:
    if path.exists():
        return
    array = np.lib.format.open_memmap(path.with_suffix(".part.npy"), mode="w+", dtype=np.float32, shape=(count, 3, 32, 32))
    rng = np.random.default_rng(0)
    for start in range(0, count, 1000):
        stop = min(start + 1000, count)
        array[start:stop] = rng.integers(0, 256, size=(stop - start, 3, 32, 32)).astype(np.float32)
    array.flush()
    del array
    path.with_suffix(".part.npy").rename(path)


def peak_rss(source: Path, json_path: Path) -> tuple[float, float, str]:
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "isgame.cli", "score", str(source), "--quiet",
               "--json", str(json_path)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    notes = [line for line in result.stderr.splitlines() if line.startswith("isgame: note:")]
    return kib / 1024, seconds, "; ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--arrays", type=int, nargs="+", default=[5_000, 50_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/isgame-loader"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for count in args.images:
        write_tree_and_zip(args.dir / f"tree-{count}", args.dir / f"images-{count}.zip", count)
        runs += [(f"folder tree, {count} PNGs", args.dir / f"tree-{count}", count),
                 (f"zip, {count} PNGs", args.dir / f"images-{count}.zip", count)]
    for count in args.arrays:
        write_array(args.dir / f"float255-{count}.npy", count)
        runs.append((f"float .npy 0-255, {count} x 3x32x32 ({count * 3 * 32 * 32 * 4 / 2**20:.0f} MiB)",
                     args.dir / f"float255-{count}.npy", count))
    for label, source, count in runs:
        mib, seconds, notes = peak_rss(source, args.dir / "score.json")
        print(f"{label:<45} peak RSS {mib:7.1f} MiB, {seconds:6.1f} s ({count / seconds:,.0f} images/s)"
              f"{'  ' + notes if notes else ''}", flush=True)


if __name__ == "__main__":
    main()
