"""Two CPU ranks under torchrun (gloo) give the single-process numbers, splits by global index."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

KEYS = ("is_mean", "is_std", "mutual_information_nats", "mutual_information_stderr_nats",
        "marginal_entropy_bits", "conditional_entropy_bits")


def run_score(args: list[str], out, *, ranks: int) -> dict:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m", "cli"]
    command = (launcher if ranks > 1 else [sys.executable, "-m", "cli"]) + ["score", *args, "--quiet", "--json", str(out)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("args", [
    ["--input", "logits", "--splits", "7", "--shuffle", "--seed", "3"],
    ["--input", "logits", "--splits", "10"],
], ids=["shuffled-7-splits", "contiguous-10-splits"])
def test_two_ranks_equal_one_process_on_logits(tmp_path, args):
    path = tmp_path / "logits.npy"
    np.save(path, np.random.default_rng(0).normal(size=(5003, 40)) * 3)
    single = run_score([str(path), *args], tmp_path / "one.json", ranks=1)
    double = run_score([str(path), *args], tmp_path / "two.json", ranks=2)
    assert double["processes"] == 2 and "processes" not in single
    for key in KEYS:
        assert double[key] == pytest.approx(single[key], rel=1e-12), key
    assert double["split_scores"] == pytest.approx(single["split_scores"], rel=1e-12)
    assert double["class_counts"] == single["class_counts"]


def test_two_ranks_equal_one_process_on_images(tmp_path):
    single = run_score(["digits:test", "--splits", "5"], tmp_path / "one.json", ranks=1)
    double = run_score(["digits:test", "--splits", "5"], tmp_path / "two.json", ranks=2)
    for key in KEYS:
        assert double[key] == pytest.approx(single[key], rel=1e-12), key


def test_two_ranks_extract_features_for_the_same_fid(tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cli"]
    results = []
    for prefix, out in (([sys.executable, "-m", "cli"], tmp_path / "one.json"), (launcher, tmp_path / "two.json")):
        # torchrun's parser reads "--n" as an abbreviation of its own options; --num-samples is the safe spelling.
        command = prefix + ["fid", "digits:test", "noise:uniform", "--num-samples", "300", "--quiet", "--json", str(out)]
        run = subprocess.run(command, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert run.returncode == 0, run.stderr[-3000:]
        results.append(json.loads(out.read_text()))
    assert results[1]["processes"] == 2
    assert results[1]["n_real"] == results[0]["n_real"] and results[1]["n_fake"] == results[0]["n_fake"]
    # The float64 sums merge exactly, but each rank batches different images through a float32 network, and
    # float32 convolutions round differently with batch shape; the FID's matrix square root amplifies that to ~1e-9.
    assert results[1]["fid"] == pytest.approx(results[0]["fid"], rel=1e-6)
