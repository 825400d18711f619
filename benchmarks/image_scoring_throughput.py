"""Images/s and peak RSS of ``isgame score`` / ``isgame fid`` on Inception against torch-fidelity and torchmetrics.

Same weights (torch-fidelity's Inception v3, randomly initialised with seed 0 and saved to a file, which
every implementation loads: no download), same folder of seeded RGB PNGs, one run. Each (implementation,
metric) runs in a fresh subprocess, so its peak RSS is its own.

* isgame: the command's own path, ``score_source`` (IS) and ``fid_between`` (FID), in fp32 and with
  ``precision="bf16"`` (autocast);
* torch-fidelity: ``calculate_metrics(isc=True)`` / ``(fid=True)`` on the folders, its defaults otherwise;
* torchmetrics: ``InceptionScore`` / ``FrechetInceptionDistance`` on the same network, fed uint8 batches
  of 64 decoded with PIL, as a user's loop would.

Images/s counts every image the network sees (FID: both folders). ``rel_diff_*`` compares isgame's
fp32 IS and FID with torch-fidelity's on the same inputs.

    python benchmarks/image_scoring_throughput.py [--quick] [--n 128] [--size 256]

Targets (issue 16): isgame fp32 >= 1.4x the images/s of torch-fidelity and of torchmetrics, peak RSS no
higher than either; bf16 >= 2.5x the fp32 reference's images/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import emit, peak_rss_mib, ratio, run_child

TARGETS = {"speedup_vs_references_min": 1.4, "bf16_speedup_vs_reference_min": 2.5, "peak_rss_ratio_max": 1.0}
IMPLEMENTATIONS = ("isgame", "isgame-bf16", "torch-fidelity", "torchmetrics")


def write_inputs(folder: Path, n: int, size: int) -> tuple[Path, Path, Path]:
    """Two folders of n seeded size x size RGB PNGs (smooth blobs plus noise) and random TF-Inception weights."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folders = (folder / "a", folder / "b")
    grid = np.linspace(0, 1, size, dtype=np.float32)
    for index, target in enumerate(folders):
        target.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            centre = rng.random((3, 2), dtype=np.float32)
            blobs = np.stack([np.exp(-((grid[None, :] - cx) ** 2 + (grid[:, None] - cy) ** 2) * 20) for cx, cy in centre], -1)
            pixels = np.clip(blobs * 0.8 + rng.random((size, size, 3), dtype=np.float32) * (0.2 + 0.1 * index), 0, 1)
            Image.fromarray((pixels * 255).astype(np.uint8)).save(target / f"{i:05d}.png")
    return folders[0], folders[1], random_tf_inception_weights(folder / "weights-inception.pth")


def random_tf_inception_weights(path: Path) -> Path:
    """torch-fidelity's Inception v3 with its random initialisation (seed 0), saved as a plain state dict."""
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    original_load, original_load_state_dict = torch.load, torch.nn.Module.load_state_dict
    torch.manual_seed(0)
    try:  # build the network without a weights file: skip the load, keep the initialisation
        torch.load = lambda *a, **k: {}
        torch.nn.Module.load_state_dict = lambda self, state, *a, **k: None
        extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"], feature_extractor_weights_path="unused")
    finally:
        torch.load, torch.nn.Module.load_state_dict = original_load, original_load_state_dict
    torch.save(extractor.state_dict(), path)
    return path


def run(implementation: str, metric: str, a: Path, b: Path, weights: Path) -> dict:
    import torch

    torch.set_num_threads(2)
    start = time.perf_counter()
    if implementation.startswith("isgame"):
        value = _isgame(metric, a, b, weights, "bf16" if implementation.endswith("bf16") else "fp32")
    elif implementation == "torch-fidelity":
        value = _torch_fidelity(metric, a, b, weights)
    else:
        value = _torchmetrics(metric, a, b, weights)
    seconds = time.perf_counter() - start
    images = len(list(a.iterdir())) * (2 if metric == "fid" else 1)
    return {"implementation": implementation, "metric": metric, "value": value, "seconds": seconds,
            "images_per_s": images / seconds, "peak_rss_mib": peak_rss_mib()}


def _isgame(metric: str, a: Path, b: Path, weights: Path, precision: str) -> float:
    from isgame.app.scoring_commands import fid_between, score_source
    from isgame.scoring import classifiers

    if hasattr(classifiers, "set_default_precision"):
        classifiers.set_default_precision(precision)
    elif precision != "fp32":
        raise RuntimeError("this isgame has no precision setting")
    if metric == "is":
        return score_source(str(a), classifier_name="inception-v3-tf", weights=weights, progress=False).result.is_mean
    return fid_between(str(a), str(b), classifier_name="inception-v3-tf", weights=weights, progress=False)["fid"]


def _torch_fidelity(metric: str, a: Path, b: Path, weights: Path) -> float:
    import torch_fidelity

    options = dict(cuda=False, verbose=False, feature_extractor_weights_path=str(weights))
    if metric == "is":
        return torch_fidelity.calculate_metrics(input1=str(a), isc=True, **options)["inception_score_mean"]
    return torch_fidelity.calculate_metrics(input1=str(a), input2=str(b), fid=True, **options)["frechet_inception_distance"]


def _torchmetrics(metric: str, a: Path, b: Path, weights: Path) -> float:
    import torch
    from PIL import Image
    from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
    from torchmetrics.image.inception import InceptionScore

    def batches(folder: Path):
        files = sorted(folder.iterdir())
        for first in range(0, len(files), 64):
            yield torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"))).permute(2, 0, 1)
                               for f in files[first : first + 64]])

    with torch.no_grad():
        if metric == "is":
            network = NoTrainInceptionV3(name="inception-v3-compat", features_list=["logits_unbiased"],
                                         feature_extractor_weights_path=str(weights))
            score = InceptionScore(feature=network, splits=10)
            for batch in batches(a):
                score.update(batch)
            return float(score.compute()[0])
        fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights))
        for folder, real in ((a, True), (b, False)):
            for batch in batches(folder):
                fid.update(batch, real=real)
        return float(fid.compute())


def summarise(rows: list[dict], n: int, size: int, quick: bool) -> None:
    def row(implementation: str, metric: str) -> dict:
        return next(r for r in rows if r["implementation"] == implementation and r["metric"] == metric)

    figures: dict = {"n": n, "image_size": size, "runs": rows, "targets": TARGETS}
    meets = True
    for metric in ("is", "fid"):
        mine, bf16 = row("isgame", metric), row("isgame-bf16", metric)
        fidelity, metrics = row("torch-fidelity", metric), row("torchmetrics", metric)
        reference_speed = max(fidelity["images_per_s"], metrics["images_per_s"])
        figures[metric] = {
            "images_per_s": {r["implementation"]: round(r["images_per_s"], 2) for r in (mine, bf16, fidelity, metrics)},
            "speedup_vs_torch_fidelity": ratio(mine["images_per_s"], fidelity["images_per_s"]),
            "speedup_vs_torchmetrics": ratio(mine["images_per_s"], metrics["images_per_s"]),
            "bf16_speedup_vs_fp32_reference": ratio(bf16["images_per_s"], reference_speed),
            "bf16_speedup_vs_isgame_fp32": ratio(bf16["images_per_s"], mine["images_per_s"]),
            "peak_rss_ratio_vs_torch_fidelity": ratio(mine["peak_rss_mib"], fidelity["peak_rss_mib"]),
            "peak_rss_ratio_vs_torchmetrics": ratio(mine["peak_rss_mib"], metrics["peak_rss_mib"]),
            "rel_diff_vs_torch_fidelity": abs(mine["value"] - fidelity["value"]) / abs(fidelity["value"]),
            "bf16_rel_drift": abs(bf16["value"] - mine["value"]) / abs(mine["value"]),
        }
        f = figures[metric]
        meets &= (min(f["speedup_vs_torch_fidelity"], f["speedup_vs_torchmetrics"]) >= TARGETS["speedup_vs_references_min"]
                  and max(f["peak_rss_ratio_vs_torch_fidelity"], f["peak_rss_ratio_vs_torchmetrics"]) <= 1.0)
    figures["meets_fp32_targets"] = meets
    figures["meets_bf16_target"] = all(figures[m]["bf16_speedup_vs_fp32_reference"] >= TARGETS["bf16_speedup_vs_reference_min"]
                                       for m in ("is", "fid"))
    s, f = figures["is"], figures["fid"]
    headline = (f"Inception v3 (torch-fidelity's, random weights) on {n} PNGs of {size}px: isgame IS "
                f"{s['speedup_vs_torch_fidelity']}x torch-fidelity and {s['speedup_vs_torchmetrics']}x torchmetrics "
                f"(peak RSS {s['peak_rss_ratio_vs_torch_fidelity']}x and {s['peak_rss_ratio_vs_torchmetrics']}x), FID "
                f"{f['speedup_vs_torch_fidelity']}x and {f['speedup_vs_torchmetrics']}x; bf16 runs at "
                f"{s['bf16_speedup_vs_isgame_fp32']}x isgame's fp32 speed, moving IS by {s['bf16_rel_drift']:.1e} and "
                f"FID by {f['bf16_rel_drift']:.1e} relative.")
    emit("image_scoring_throughput", figures, headline=headline, quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 32 images of 128 px")
    parser.add_argument("--n", type=int, default=None, help="images per folder (default 128; quick 32)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (default 256; quick 128)")
    parser.add_argument("--only", nargs="+", default=list(IMPLEMENTATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        implementation, metric, a, b, weights = args.child.split(",")
        print(json.dumps(run(implementation, metric, Path(a), Path(b), Path(weights))))
        return
    n = args.n or (32 if args.quick else 128)
    size = args.size or (128 if args.quick else 256)
    with tempfile.TemporaryDirectory() as scratch:
        a, b, weights = write_inputs(Path(scratch), n, size)
        rows = []
        for metric in ("is", "fid"):
            for implementation in args.only:
                try:
                    rows.append(run_child([__file__, "--child", f"{implementation},{metric},{a},{b},{weights}"]))
                except RuntimeError as error:  # an isgame without --precision (measuring "before") has no bf16 row
                    print(f"{metric} {implementation}: failed ({str(error).strip().splitlines()[-1][:120]})", file=sys.stderr)
                    continue
                r = rows[-1]
                print(f"{metric:>3} {implementation:>15}: {r['images_per_s']:6.2f} images/s, peak RSS "
                      f"{r['peak_rss_mib']:7.1f} MiB, value {r['value']:.6g}", file=sys.stderr, flush=True)
    if {r["implementation"] for r in rows} == set(IMPLEMENTATIONS):
        summarise(rows, n, size, args.quick)
    else:
        speeds = {(r["implementation"], r["metric"]): r["images_per_s"] for r in rows}
        headline = "Partial run (no bf16): " + "; ".join(
            f"{metric.upper()} isgame {speeds[('isgame', metric)]:.2f} images/s, torch-fidelity "
            f"{speeds[('torch-fidelity', metric)]:.2f}, torchmetrics {speeds[('torchmetrics', metric)]:.2f}"
            for metric in ("is", "fid") if ("isgame", metric) in speeds and ("torchmetrics", metric) in speeds) + "."
        emit("image_scoring_throughput", {"n": n, "image_size": size, "runs": rows}, headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
