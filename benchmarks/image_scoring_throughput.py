"""Images/s and peak RSS of ``isgame score`` / ``isgame fid`` on Inception against torch-fidelity and torchmetrics.

Same weights (torch-fidelity's Inception v3, randomly initialised with seed 0, its batch norms set on seeded
pixels so that its outputs depend on the input, and saved to a file, which every implementation loads: no
download), same folder of seeded RGB PNGs, one run. Each (implementation, metric) runs in a fresh subprocess,
so its peak RSS is its own.

* isgame: the command's own path, ``score_source`` (IS) and ``fid_between`` (FID), in fp32 and with
  ``precision="bf16"`` (autocast);
* torch-fidelity: ``calculate_metrics(isc=True, isc_splits=1)`` / ``(fid=True)`` on the folders, its defaults
  otherwise;
* torchmetrics: ``InceptionScore`` / ``FrechetInceptionDistance`` on the same network, fed uint8 batches
  of 64 decoded with PIL, as a user's loop would.

Images/s counts every image the network sees (FID: both folders), over the whole call: imports, weight
loading, decoding and the network. ``rel_diff_*`` compares isgame's fp32 IS and FID with torch-fidelity's on
the same inputs.

At a few dozen images the whole-call figure is dominated by what both pay once (importing torch-fidelity,
which imports torchvision, takes about 2.4 s here), so one more child times the networks alone at steady
state: isgame's ``inception-v3-tf`` classifier and torch-fidelity's extractor on the same decoded batch,
alternating, best of ``NETWORK_ROUNDS`` each (``network`` in the JSON).

The same child times isgame's network under bf16 autocast on ``BF16_NETWORK_IMAGES`` images. ``--quick`` skips
the whole-call bf16 children: on a CPU without native bf16 (``cpu_native_bf16`` false, as on AVX2 machines)
autocast emulates it and runs about 5x slower than fp32, the slowest children of the run by far.

    python benchmarks/image_scoring_throughput.py [--quick] [--n 128] [--size 256]

Targets: isgame fp32 >= 1.4x the images/s of torch-fidelity and of torchmetrics, peak RSS no
higher than either; bf16 >= 2.5x the fp32 reference's images/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import emit, peak_rss_mib, random_tf_inception, ratio, run_child

TARGETS = {"speedup_vs_references_min": 1.4, "bf16_speedup_vs_reference_min": 2.5, "peak_rss_ratio_max": 1.0}
IMPLEMENTATIONS = ("isgame", "isgame-bf16", "torch-fidelity", "torchmetrics")
#: Alternating timed forward passes of each network in the steady-state child; the best of each counts.
NETWORK_ROUNDS = 3
#: Images the steady-state child runs through isgame's network under bf16 autocast.
BF16_NETWORK_IMAGES = 4
#: Images of the untimed first call of each network in that child.
WARM_UP_IMAGES = 4
#: IS over all rows at once in every implementation: they split N rows differently (torch-fidelity shuffles them
#: first, isgame and the original code take contiguous parts), so only with one split do all three compute the same
#: value, which ``rel_diff_vs_torch_fidelity`` compares. Splitting costs nothing next to the network.
ONE_SPLIT = 1


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


def first_images(folder: Path, target: Path, count: int) -> Path:
    """A copy of ``folder``'s first ``count`` images (sorted names) in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir())[:count]:
        shutil.copyfile(path, target / path.name)
    return target


def random_tf_inception_weights(path: Path) -> Path:
    """:func:`common.random_tf_inception` (seed 0), saved as a plain state dict."""
    import torch

    torch.save(random_tf_inception().state_dict(), path)
    return path


def run_networks(a: Path, weights: Path) -> dict:
    """Steady-state images/s of the two networks alone on the same decoded uint8 batch (TF1 resize included)."""
    import torch
    from PIL import Image
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from isgame.scoring.classifiers import load_classifier

    torch.set_num_threads(2)
    pixels = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"))).permute(2, 0, 1)
                          for f in sorted(a.iterdir())])
    ours = load_classifier("inception-v3-tf", weights=weights)
    reference = FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"], feature_extractor_weights_path=str(weights))
    networks = {"isgame": lambda batch: ours(batch.float() / 255), "torch-fidelity": lambda batch: reference(batch)[0]}
    best = dict.fromkeys(networks, float("inf"))
    outputs = {}
    with torch.no_grad():
        for network in networks.values():  # one small untimed call each: oneDNN creates its kernels on the first calls
            network(pixels[:WARM_UP_IMAGES])
        for _ in range(NETWORK_ROUNDS):
            for name, network in networks.items():
                started = time.perf_counter()
                outputs[name] = network(pixels)
                best[name] = min(best[name], time.perf_counter() - started)
        speeds = {name: len(pixels) / seconds for name, seconds in best.items()}
        difference = (outputs["isgame"] - outputs["torch-fidelity"]).abs().max() / outputs["torch-fidelity"].abs().max()
        figures = {"images": len(pixels), "images_per_s": speeds, "logits_rel_diff": float(difference)}
        if not hasattr(ours, "set_precision"):  # an isgame from before --precision (measuring "before")
            return figures
        # bf16 on a few images: the rate is per image, and emulated bf16 is the slowest thing here.
        few = pixels[:BF16_NETWORK_IMAGES].float() / 255
        ours.set_precision("bf16")
        ours(few[:WARM_UP_IMAGES])
        started = time.perf_counter()
        low = ours(few)
        speeds["isgame-bf16"] = len(few) / (time.perf_counter() - started)
    drift = (low - outputs["isgame"][: len(few)]).abs().max() / outputs["isgame"][: len(few)].abs().max()
    return {**figures, "bf16_images": len(few), "bf16_logits_rel_drift": float(drift)}


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
    images = len(list(a.iterdir())) + (len(list(b.iterdir())) if metric == "fid" else 0)
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
        return score_source(str(a), classifier_name="inception-v3-tf", weights=weights, splits=ONE_SPLIT,
                            progress=False).result.is_mean
    return fid_between(str(a), str(b), classifier_name="inception-v3-tf", weights=weights, progress=False)["fid"]


def _torch_fidelity(metric: str, a: Path, b: Path, weights: Path) -> float:
    import torch_fidelity

    options = dict(cuda=False, verbose=False, feature_extractor_weights_path=str(weights))
    if metric == "is":
        return torch_fidelity.calculate_metrics(input1=str(a), isc=True, isc_splits=1, **options)["inception_score_mean"]
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
            score = InceptionScore(feature=network, splits=ONE_SPLIT)
            for batch in batches(a):
                score.update(batch)
            return float(score.compute()[0])
        fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights))
        for folder, real in ((a, True), (b, False)):
            for batch in batches(folder):
                fid.update(batch, real=real)
        return float(fid.compute())


def summarise(rows: list[dict], network: dict, n: int, fid_n: int, size: int, quick: bool) -> None:
    import torch

    def row(implementation: str, metric: str) -> dict | None:
        return next((r for r in rows if r["implementation"] == implementation and r["metric"] == metric), None)

    figures: dict = {"n": n, "fid_n_per_folder": fid_n, "image_size": size, "runs": rows, "targets": TARGETS,
                     "cpu_native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
                     "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    meets = True
    for metric in ("is", "fid"):
        mine, bf16 = row("isgame", metric), row("isgame-bf16", metric)
        fidelity, metrics = row("torch-fidelity", metric), row("torchmetrics", metric)
        reference_speed = max(fidelity["images_per_s"], metrics["images_per_s"])
        figures[metric] = {
            "images_per_s": {r["implementation"]: round(r["images_per_s"], 2) for r in (mine, bf16, fidelity, metrics) if r},
            "speedup_vs_torch_fidelity": ratio(mine["images_per_s"], fidelity["images_per_s"]),
            "speedup_vs_torchmetrics": ratio(mine["images_per_s"], metrics["images_per_s"]),
            "peak_rss_ratio_vs_torch_fidelity": ratio(mine["peak_rss_mib"], fidelity["peak_rss_mib"]),
            "peak_rss_ratio_vs_torchmetrics": ratio(mine["peak_rss_mib"], metrics["peak_rss_mib"]),
            "rel_diff_vs_torch_fidelity": abs(mine["value"] - fidelity["value"]) / abs(fidelity["value"]),
        }
        if bf16:
            figures[metric].update({
                "bf16_speedup_vs_fp32_reference": ratio(bf16["images_per_s"], reference_speed),
                "bf16_speedup_vs_isgame_fp32": ratio(bf16["images_per_s"], mine["images_per_s"]),
                "bf16_rel_drift": abs(bf16["value"] - mine["value"]) / abs(mine["value"])})
        f = figures[metric]
        meets &= (min(f["speedup_vs_torch_fidelity"], f["speedup_vs_torchmetrics"]) >= TARGETS["speedup_vs_references_min"]
                  and max(f["peak_rss_ratio_vs_torch_fidelity"], f["peak_rss_ratio_vs_torchmetrics"]) <= 1.0)
    speeds = network["images_per_s"]
    figures["network"] = {**network, "images_per_s": {k: round(v, 2) for k, v in speeds.items()},
                          "speedup_vs_torch_fidelity": ratio(speeds["isgame"], speeds["torch-fidelity"])}
    if "isgame-bf16" in speeds:
        figures["network"].update({"bf16_speedup_vs_torch_fidelity": ratio(speeds["isgame-bf16"], speeds["torch-fidelity"]),
                                   "bf16_speedup_vs_isgame_fp32": ratio(speeds["isgame-bf16"], speeds["isgame"])})
    figures["meets_fp32_targets"] = meets
    figures["meets_network_speed_target"] = figures["network"]["speedup_vs_torch_fidelity"] >= TARGETS["speedup_vs_references_min"]
    bf16_ratios = [figures["network"]["bf16_speedup_vs_torch_fidelity"]] if "isgame-bf16" in speeds else []
    bf16_ratios += [figures[m]["bf16_speedup_vs_fp32_reference"] for m in ("is", "fid")
                    if "bf16_speedup_vs_fp32_reference" in figures[m]]
    figures["meets_bf16_target"] = bool(bf16_ratios) and min(bf16_ratios) >= TARGETS["bf16_speedup_vs_reference_min"]
    s, f = figures["is"], figures["fid"]
    s_value, f_value = row("isgame", "is")["value"], row("isgame", "fid")["value"]
    bf16_metrics = [m for m in ("is", "fid") if "bf16_rel_drift" in figures[m]]
    native = "native" if figures["cpu_native_bf16"] else "emulated: no bf16 instructions on this CPU"
    headline = (f"Inception v3 (torch-fidelity's, random weights, batch norms set on seeded pixels) on {n} PNGs of "
                f"{size}px (FID: two folders of {fid_n}), whole calls: isgame IS "
                f"{s['speedup_vs_torch_fidelity']}x torch-fidelity and {s['speedup_vs_torchmetrics']}x torchmetrics "
                f"(peak RSS {s['peak_rss_ratio_vs_torch_fidelity']}x and {s['peak_rss_ratio_vs_torchmetrics']}x), FID "
                f"{f['speedup_vs_torch_fidelity']}x and {f['speedup_vs_torchmetrics']}x (peak RSS "
                f"{f['peak_rss_ratio_vs_torch_fidelity']}x and {f['peak_rss_ratio_vs_torchmetrics']}x); the networks alone "
                f"at steady state: isgame {figures['network']['speedup_vs_torch_fidelity']}x torch-fidelity "
                f"({figures['network']['images_per_s']['isgame']} against "
                f"{figures['network']['images_per_s']['torch-fidelity']} images/s, logits within "
                f"{network['logits_rel_diff']:.1e}); isgame's IS {s_value:.6g} and FID {f_value:.6g} against "
                f"torch-fidelity's differ by {s['rel_diff_vs_torch_fidelity']:.1e} and {f['rel_diff_vs_torch_fidelity']:.1e} relative"
                + (f"; bf16 ({native}): the network at {figures['network']['bf16_speedup_vs_isgame_fp32']}x isgame's "
                   f"fp32 speed, logits within {network['bf16_logits_rel_drift']:.1e}" if "isgame-bf16" in speeds
                   else "; no bf16 (this isgame has no precision setting)")
                + "".join(f"; whole {m.upper()} call {figures[m]['bf16_speedup_vs_isgame_fp32']}x fp32, moving it by "
                          f"{figures[m]['bf16_rel_drift']:.1e} relative" for m in bf16_metrics) + ".")
    emit("image_scoring_throughput", figures, headline=headline, quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 32 images of 128 px (FID and the steady-state child: 16 per folder); bf16 in the steady-state child only")
    parser.add_argument("--n", type=int, default=None, help="images per folder (default 128; quick 32)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (default 256; quick 128)")
    parser.add_argument("--only", nargs="+", default=list(IMPLEMENTATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        implementation, metric, a, b, weights = args.child.split(",")
        if implementation == "networks":
            print(json.dumps(run_networks(Path(a), Path(weights))))
        else:
            print(json.dumps(run(implementation, metric, Path(a), Path(b), Path(weights))))
        return
    n = args.n or (32 if args.quick else 128)
    size = args.size or (128 if args.quick else 256)
    with tempfile.TemporaryDirectory() as scratch:
        a, b, weights = write_inputs(Path(scratch), n, size)
        # --quick: FID on the first halves of both folders (as many images through the network as IS), and the
        # steady-state child on one half.
        halves = first_images(a, Path(scratch) / "a-half", n // 2), first_images(b, Path(scratch) / "b-half", n // 2)
        folders = {"is": (a, b), "fid": halves if args.quick else (a, b)}
        rows = []
        for metric in ("is", "fid"):
            for implementation in args.only:
                if implementation == "isgame-bf16" and args.quick:
                    continue
                first, second = folders[metric]
                try:
                    rows.append(run_child([__file__, "--child", f"{implementation},{metric},{first},{second},{weights}"]))
                except RuntimeError as error:  # an isgame without --precision (measuring "before") has no bf16 row
                    print(f"{metric} {implementation}: failed ({str(error).strip().splitlines()[-1][:120]})", file=sys.stderr)
                    continue
                r = rows[-1]
                print(f"{metric:>3} {implementation:>15}: {r['images_per_s']:6.2f} images/s, peak RSS "
                      f"{r['peak_rss_mib']:7.1f} MiB, value {r['value']:.6g}", file=sys.stderr, flush=True)
        network = run_child([__file__, "--child", f"networks,is,{halves[0] if args.quick else a},{b},{weights}"])
        print(f"networks alone: {network['images_per_s']}", file=sys.stderr, flush=True)
    if {r["implementation"] for r in rows} >= set(IMPLEMENTATIONS) - {"isgame-bf16"}:
        summarise(rows, network, n, n // 2 if args.quick else n, size, args.quick)
    else:
        speeds = {(r["implementation"], r["metric"]): r["images_per_s"] for r in rows}
        compared = ("isgame", "torch-fidelity", "torchmetrics")
        headline = "Partial run (an implementation failed or was left out): " + "; ".join(
            f"{metric.upper()} " + ", ".join(f"{name} {speeds[(name, metric)]:.2f} images/s" for name in compared
                                             if (name, metric) in speeds)
            for metric in ("is", "fid")) + "."
        emit("image_scoring_throughput", {"n": n, "image_size": size, "runs": rows, "network": network},
             headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
