"""What every benchmark script shares: its one line of JSON, child processes, peak memory.

Every script in ``benchmarks/`` ends by printing one line of JSON (:func:`emit`) with its figures,
its ratios, the targets it checks and a one-sentence ``headline``; ``run_all.py`` collects those
lines and regenerates the README's benchmark section from them. Scripts take ``--quick`` for a
smaller run of the same measurement.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys

import torch


def emit(name: str, figures: dict, *, headline: str, quick: bool) -> dict:
    """Print the benchmark's one JSON line (its last line of output) and return it."""
    line = {"benchmark": name, "quick": quick, **figures, "headline": headline, "machine": machine()}
    print(json.dumps(line), flush=True)
    return line


def machine() -> dict:
    """The CPU, its core count and the torch build, so that figures from two machines are not confused."""
    return {"cpu": _cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version()}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_child(arguments: list[str]) -> dict:
    """Run ``python ARGUMENTS`` in a fresh process (its own peak RSS) and parse its last line of JSON."""
    out = subprocess.run([sys.executable, *arguments], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator rounded to 3 significant decimals, for the JSON line."""
    return round(numerator / denominator, 3)


def cli_peak_rss(arguments: list[str]) -> tuple[float, float, str]:
    """Run ``isgame ARGUMENTS`` under ``/usr/bin/time -v``: (its peak RSS in MiB, wall seconds, its stderr)."""
    import re
    import time

    command = ["/usr/bin/time", "-v", sys.executable, "-m", "isgame.cli", *arguments]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return kib / 1024, seconds, result.stderr
