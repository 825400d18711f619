"""What every benchmark script shares: its one line of JSON, child processes, peak memory, random Inception v3s.

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


def random_inception_v3(seed: int = 0) -> torch.nn.Module:
    """torchvision's Inception v3 (aux logits and ``transform_input``, as its pretrained one) with random weights, in
    eval mode, its batch norms set on four seeded images (``calibrate_batch_norms``). Freshly initialised, it gives
    every image the same logits, so a comparison or an attack on it would be blind to the input path. The test
    suite uses it too (``tests/helpers.py``)."""
    from torchvision.models import inception_v3

    from isgame.scoring.classifiers.batch_norm_calibration import calibrate_batch_norms

    torch.manual_seed(seed)
    network = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True).eval()
    calibrate_batch_norms(network, torch.randn((4, 3, 299, 299), generator=torch.Generator().manual_seed(seed + 1)))
    return network


def random_tf_inception(seed: int = 0) -> torch.nn.Module:
    """torch-fidelity's Inception v3 (``FeatureExtractorInceptionV3``, logits_unbiased) with its random
    initialisation and its batch norms set on eight seeded 64 px uint8 images. Freshly initialised, its logits are
    below 1.1e-7 for every image (IS 1, FID 3e-14 in the image benchmark), which no comparison could tell apart."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from isgame.scoring.classifiers.batch_norm_calibration import calibrate_batch_norms

    original_load, original_load_state_dict = torch.load, torch.nn.Module.load_state_dict
    torch.manual_seed(seed)
    try:  # build the network without a weights file: skip the load, keep the initialisation
        torch.load = lambda *a, **k: {}
        torch.nn.Module.load_state_dict = lambda self, state, *a, **k: None
        extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"],
                                                feature_extractor_weights_path="unused")
    finally:
        torch.load, torch.nn.Module.load_state_dict = original_load, original_load_state_dict
    pixels = torch.randint(0, 256, (8, 3, 64, 64), generator=torch.Generator().manual_seed(seed + 3), dtype=torch.uint8)
    calibrate_batch_norms(extractor, pixels)
    return extractor
