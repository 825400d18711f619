"""Throughput and peak RSS of isgame's streaming IS against torchmetrics and torch-fidelity.

Same images (seeded uniform noise, 1x8x8), same classifier, one run. The classifier is either
the embedded ``digits`` CNN (K = 10) or a seeded linear head with K = 1000 (so that memory that
grows with N, i.e. stored logits, becomes visible). Each (implementation, N) runs in a fresh
subprocess, so ru_maxrss is its own peak.

* isgame: ``score_images`` streaming into the accumulator (with the standard error's K x K sums);
* torchmetrics: ``InceptionScore(feature=classifier)``, ``update`` per batch, ``compute``;
* torch-fidelity: its IS needs a registered extractor, so its pipeline is reproduced: all logits
  are kept (as ``extract_featuresdict_from_input`` does), then ``isc_features_to_metric``.

    python benchmarks/throughput_vs_references.py [--quick] [--sizes 10000 100000] [--classes 10 1000]

Ends with one JSON line (benchmarks/common.py); ``--quick`` uses K = 1000 and N = 3 x 10^4 only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from common import emit, ratio

BATCH = 1000


def classifier_for(classes: int):
    from isgame.scoring.classifiers import load_classifier

    if classes == 10:
        return load_classifier("digits")
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, classes)).eval()
    from isgame.scoring.classifiers.user import UserClassifier

    return UserClassifier(head, name=f"linear-{classes}", input_size=(8, 8), input_channels=1, mean=(0.0,), std=(1.0,))


def run(implementation: str, n: int, classes: int) -> dict:
    from isgame.scoring.sources.samples import noise_source

    torch.set_num_threads(2)
    classifier = classifier_for(classes)
    source = noise_source("uniform", n=n, seed=0)
    started = time.perf_counter()
    if implementation == "isgame":
        from isgame.scoring.pipeline import score_images

        value = score_images(source, classifier, splits=10, batch_size=BATCH, progress=False).result.is_mean
    elif implementation == "torchmetrics":
        from torchmetrics.image.inception import InceptionScore

        metric = InceptionScore(feature=classifier, splits=10)
        with torch.no_grad():
            for batch in source.batches(BATCH):
                metric.update(batch)
            value = float(metric.compute()[0])
    else:
        from torch_fidelity.metric_isc import isc_features_to_metric

        with torch.no_grad():
            logits = torch.cat([classifier(batch) for batch in source.batches(BATCH)])
        value = isc_features_to_metric(logits, splits=10)["inception_score_mean"]
    seconds = time.perf_counter() - started
    return {"implementation": implementation, "n": n, "classes": classes, "seconds": seconds,
            "samples_per_s": n / seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "is": value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="default 10000 100000 (quick: 30000 only)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        implementation, n, classes = args.child.split(",")
        print(json.dumps(run(implementation, int(n), int(classes))))
        return
    args.sizes = args.sizes or ([30_000] if args.quick else [10_000, 100_000])
    args.classes = [1000] if args.quick and args.classes == [10, 1000] else args.classes
    rows = []
    for classes in args.classes:
        for n in args.sizes:
            for implementation in ("isgame", "torchmetrics", "torch-fidelity"):
                out = subprocess.run([sys.executable, __file__, "--child", f"{implementation},{n},{classes}"],
                                     capture_output=True, text=True, check=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"K={classes:>5} N={n:>7} {implementation:>15}: {r['samples_per_s']:>10,.0f} samples/s, "
                      f"peak RSS {r['peak_rss_mib']:7.1f} MiB, IS {r['is']:.4f}", file=sys.stderr, flush=True)
    comparisons = []
    for classes in args.classes:
        for n in args.sizes:
            mine = next(r for r in rows if r["implementation"] == "isgame" and r["n"] == n and r["classes"] == classes)
            for other in ("torchmetrics", "torch-fidelity"):
                theirs = next(r for r in rows if r["implementation"] == other and r["n"] == n and r["classes"] == classes)
                comparisons.append({"classes": classes, "n": n, "reference": other,
                                    "speedup": ratio(mine["samples_per_s"], theirs["samples_per_s"]),
                                    "peak_rss_ratio": ratio(mine["peak_rss_mib"], theirs["peak_rss_mib"]),
                                    "is_rel_diff": abs(mine["is"] - theirs["is"]) / abs(theirs["is"])})
    k, n = max(args.classes), max(args.sizes)
    top = {c["reference"]: c for c in comparisons if c["classes"] == k and c["n"] == n}
    headline = (f"Streaming IS of classifier outputs at K = {k}, N = {n:,}: isgame is {top['torchmetrics']['speedup']}x "
                f"torchmetrics' InceptionScore and {top['torch-fidelity']['speedup']}x torch-fidelity's pipeline, with "
                f"{top['torchmetrics']['peak_rss_ratio']}x and {top['torch-fidelity']['peak_rss_ratio']}x their peak RSS "
                "(they keep every logit).")
    emit("throughput_vs_references", {"runs": rows, "comparisons": comparisons}, headline=headline, quick=args.quick)


if __name__ == "__main__":
    main()
