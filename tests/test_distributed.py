"""Two CPU ranks under torchrun (gloo) give the single-process numbers, splits by global index."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import DIGITS_FID_TERMS, approx_float32

from isgame.app.audit import AUDIT_FAST_SAMPLES
from isgame.app.scoring_commands import fid_between, score_in_dialects, score_source

KEYS = ("is_mean", "is_std", "mutual_information_nats", "mutual_information_stderr_nats",
        "marginal_entropy_bits", "conditional_entropy_bits")


def launch(args: list[str], *, ranks: int, cwd=None) -> subprocess.CompletedProcess:
    """``isgame ARGS`` in one process, or under torchrun with ``ranks`` CPU processes (gloo)."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m", "isgame.cli"]
    command = (launcher if ranks > 1 else [sys.executable, "-m", "isgame.cli"]) + [str(a) for a in args]
    # One thread per rank: the network is then batch-invariant bit for bit, so the shards move exactly as in one process.
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def approx_score(result: dict, key: str):
    """A score's ``key`` (IS, its std, I and the entropies) of images the ranks batched through the float32 network
    other than one process did: FLOAT32_SCORE_REL of it (helpers), and for the std of the split scores, of IS (each
    split score moves by that much of itself, and their spread is a difference of them)."""
    return approx_float32(result[key], error_scale=result["is_mean"] if key == "is_std" else 0.0)


def run_json(args: list[str], out, *, ranks: int, cwd=None) -> dict:
    result = launch([*args, "--json", out], ranks=ranks, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def run_json_here(args: list[str], out) -> dict:
    """``isgame ARGS --json OUT`` in this process with one thread: the one-process reference of a torchrun run,
    without another interpreter and torch import."""
    from typer.testing import CliRunner

    from isgame.cli import app

    result = in_one_thread(lambda: CliRunner().invoke(app, [str(a) for a in [*args, "--json", out]]))
    assert result.exit_code == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def run_score(args: list[str], out, *, ranks: int) -> dict:
    return run_json(["score", *args, "--quiet"], out, ranks=ranks)


def in_one_thread(call):
    """``call()`` in this process with one intra-op thread, as each torchrun rank runs (OMP_NUM_THREADS=1 above):
    the one-process reference without paying for another interpreter and torch import."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return call()
    finally:
        torch.set_num_threads(threads)


# The contiguous case is the quick subset's one torchrun launch; the rest of this file's launches are marked slow.
@pytest.mark.parametrize("args", [
    pytest.param(["--input", "logits", "--splits", "7", "--shuffle", "--seed", "3"], marks=pytest.mark.slow),
    ["--input", "logits", "--splits", "10"],
], ids=["shuffled-7-splits", "contiguous-10-splits"])
def test_two_ranks_equal_one_process_on_logits(tmp_path, args):
    path = tmp_path / "logits.npy"
    np.save(path, np.random.default_rng(0).normal(size=(5003, 40)) * 3)
    options = {"splits": int(args[args.index("--splits") + 1]), "shuffle": "--shuffle" in args,
               "seed": int(args[args.index("--seed") + 1]) if "--seed" in args else 0}
    single = score_source(str(path), input_kind="logits", progress=False, **options).to_dict()
    double = run_score([str(path), *args], tmp_path / "two.json", ranks=2)
    assert double["processes"] == 2 and "processes" not in single
    # Given logits: the ranks merge float64 sums of the same rows, so only float64 round-off of the sums' order differs.
    for key in KEYS:
        assert double[key] == pytest.approx(single[key], rel=1e-12), key
    assert double["split_scores"] == pytest.approx(single["split_scores"], rel=1e-12)
    assert double["class_counts"] == single["class_counts"]


@pytest.mark.slow
def test_two_ranks_equal_one_process_on_images(tmp_path):
    single = in_one_thread(lambda: score_source("digits:test", splits=5, progress=False).to_dict())
    double = run_score(["digits:test", "--splits", "5"], tmp_path / "two.json", ranks=2)
    # The float64 sums merge as above, but each rank runs the float32 network on batches of its own shard.
    for key in KEYS:
        assert double[key] == approx_score(single, key), key


@pytest.mark.slow
def test_two_ranks_extract_features_for_the_same_fid(tmp_path):
    # torchrun's parser reads "--n" as an abbreviation of its own options; --num-samples is the safe spelling.
    args = ["fid", "digits:test", "noise:uniform", "--num-samples", "300", "--quiet"]
    results = [in_one_thread(lambda: fid_between("digits:test", "noise:uniform", n=300, progress=False)),
               run_json(args, tmp_path / "2.json", ranks=2)]
    assert results[1]["processes"] == 2
    assert results[1]["n_real"] == results[0]["n_real"] and results[1]["n_fake"] == results[0]["n_fake"]
    # The float64 sums merge exactly, but each rank batches different images through a float32 network, and
    # float32 convolutions round differently with batch shape: helpers.DIGITS_FID_TERMS.
    assert results[1]["fid"] == approx_float32(results[0]["fid"], error_scale=DIGITS_FID_TERMS)


def inflate_args(out, *extra) -> list:
    return ["attack", "inflate", "--num-samples", "301", "--steps", "15", "--quiet", "--out", out, *extra]


# The attack's images come out of float32 forward and backward passes, and a float32 network does not round
# identically for every batch shape: on this CPU the digits CNN gives bit-identical rows for batches of 4 and
# more, but batches of 1-3 (the last few active samples, split across ranks) differ by ~1e-6 in the logits.
# So the shards move like one process up to float32 rounding, not bit for bit; the scores of given logits
# still merge to 1e-12 (the tests above). The scores then follow helpers.FLOAT32_SCORE_REL, and so does the mean
# absolute pixel change, a float32 mean of 19,264 pixels whose summation order moves its last ulp or two (2^-24 each).
# Pixels in [0, 1]: each of the 15 steps rounds them to float32 (an ulp, 6e-8) along gradients that differ by float32
# round-off, ~1e-6 after 15 steps (4.8e-7 measured here; 5.8e-6 over 20,000 samples, README), so 1e-5.
PIXEL_TOLERANCE = 1e-5


@pytest.mark.slow
def test_two_ranks_attack_like_one_process(tmp_path):
    # 301 samples: the shards are 150 and 151 rows, so cycling targets and splits straddle the boundary.
    single = run_json_here(inflate_args(tmp_path / "one", "--compare"), tmp_path / "one.json")
    double = run_json(inflate_args(tmp_path / "two", "--compare"), tmp_path / "two.json", ranks=2, cwd=tmp_path)
    for key in ("final_is", "final_is_uint8", "initial_is", "final_conditional_entropy_bits", "mean_abs_change"):
        assert double[key] == approx_float32(single[key]), key
    for key in ("steps", "steps_to_999_of_k", "gradient_evaluations_per_sample", "forward_evaluations_per_sample", "n"):
        assert double[key] == single[key], key
    for one, two in zip(single["trace"], double["trace"], strict=True):
        for key in ("inception_score", "mutual_information_nats", "conditional_entropy_bits"):
            assert two[key] == approx_float32(one[key]), key
        assert (two["active"], two["fraction_at_target"]) == (one["active"], one["fraction_at_target"])
    # sign, adam-logit and the batch-MI objective (whose marginal is all-reduced) shard as well.
    assert set(double["comparison"]) == {"sign", "adam-logit", "batch-MI"}
    for name, one in single["comparison"].items():
        two = double["comparison"][name]
        assert two["steps"] == one["steps"], name
        assert two["trace_is"] == approx_float32(one["trace_is"]), name
    with np.load(tmp_path / "one" / "inflated.npz", allow_pickle=False) as a, \
            np.load(tmp_path / "two" / "inflated.npz", allow_pickle=False) as b:
        assert np.abs(a["images"] - b["images"]).max() <= PIXEL_TOLERANCE
        assert np.array_equal(a["targets"], b["targets"]) and np.array_equal(a["start"], b["start"])
    # Rank 1 wrote into a scratch folder of its own: nothing else appeared beside the report.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one", "one.json", "two", "two.json"]


@pytest.mark.slow
def test_two_ranks_checkpoint_per_rank_and_resume(tmp_path):
    checkpoint = tmp_path / "ck.safetensors"
    first = launch(inflate_args(tmp_path / "a", "--steps", "5", "--optimizer", "sign", "--checkpoint", checkpoint),
                   ranks=2)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(path.name for path in tmp_path.glob("ck*")) == ["ck.rank0-of-2.safetensors", "ck.rank1-of-2.safetensors"]
    resumed = run_json(inflate_args(tmp_path / "b", "--optimizer", "sign", "--checkpoint", checkpoint, "--resume"),
                       tmp_path / "b.json", ranks=2)
    whole = run_json_here(inflate_args(tmp_path / "c", "--optimizer", "sign"), tmp_path / "c.json")
    assert resumed["steps"] == whole["steps"]
    assert resumed["final_is"] == approx_float32(whole["final_is"])
    assert [t["inception_score"] for t in resumed["trace"]] == approx_float32(
        [t["inception_score"] for t in whole["trace"]])
    # Resuming the two-rank files in one process would silently start over; it is refused instead.
    mismatch = launch(inflate_args(tmp_path / "d", "--optimizer", "sign", "--checkpoint", checkpoint, "--resume"),
                      ranks=1)
    assert mismatch.returncode == 2
    assert mismatch.stderr.strip().splitlines() == [mismatch.stderr.strip()]
    assert "another number of processes" in mismatch.stderr and "Traceback" not in mismatch.stderr


def one_process_section(audit_run, *keys: str) -> dict:
    """A section of the one-process audit (the session's shared run): the same command in one process."""
    out, result = audit_run
    assert result.exit_code == 0, result.stderr
    section = json.loads((out / "report.json").read_text())
    for key in keys:
        section = section[key]
    return section


# The size each matrix metric's float32 error follows where it is not the value's own: FID's traces
# (helpers.DIGITS_FID_TERMS); KID's two within-set means and twice the cross mean of cubic kernel entries, ~1,400 each
# for the digits features, each entry three times as sensitive as the features (a cube): 3 x 4 x 1,400. A wrong merge
# changes which rows KID's subsets draw, and KID by about its standard error (0.7 and more here), not 2e-2.
ERROR_SCALES = {"FID": DIGITS_FID_TERMS, "KID": 3 * 4 * 1400.0}


@pytest.mark.slow
def test_two_ranks_play_the_matrix_like_one_process(tmp_path):
    # Its own one-process run, not the audit's: the audit's earlier sections leave the inflate game's float32
    # batches rounding differently (FID of inflated noise moved 1e-8 relative).
    # 201 samples a game: shards of 100 and 101 rows, and the whole suite stays within its time.
    # The games are what the ranks shard; a few columns of each kind check what they hand the metrics.
    options = ["--num-samples", "201", "--bootstrap", "2", *("--metric IS --metric FID --metric KID --metric precision "
                                                             "--metric C_T --metric R-IS").split(),
               *[arg for game in ("IS-inflated noise", "ε-bounded attack (8/255)", "resampling (features)",
                                  "truncation (ψ = 0.5)") for arg in ("--game", game)]]
    single = run_json_here(["matrix", *options, "--out", tmp_path / "one"], tmp_path / "one.json")
    double = run_json(["matrix", *options, "--out", tmp_path / "two"], tmp_path / "two.json", ranks=2)
    assert double["games"] == single["games"] and double["metrics"] == single["metrics"]
    for game in single["games"]:
        for metric in single["metrics"]:
            one, two = single["cells"][game][metric], double["cells"][game][metric]
            # Every game's images go through the float32 network in batches of each rank's shard (and the inflate
            # attack's steps round on them too), so each cell is off by float32 rounding (helpers.approx_float32).
            # FID and KID are differences of larger terms; precision and C_T count comparisons of distances, exact
            # unless a float32 rounding moves one distance across another.
            tolerance = approx_float32(one["value"], error_scale=ERROR_SCALES.get(metric, 0.0))
            assert two["value"] == tolerance, (game, metric)
            assert two["fooled"] == one["fooled"], (game, metric)
    # The training digits' features (FID's reference side) are batched per rank as well: FID of the held-out subsets
    # at N = 540 (2.6) moved by 1.7e-6 relative, 4e-6 absolute, here.
    assert double["fid_sample_size_caveat"]["fid"] == approx_float32(single["fid_sample_size_caveat"]["fid"],
                                                                       error_scale=DIGITS_FID_TERMS)


@pytest.mark.slow
def test_two_ranks_score_every_dialect_like_one_process(tmp_path):
    single = in_one_thread(lambda: score_in_dialects("digits:test", "all", progress=False).to_dict())
    double = run_json(["score", "digits:test", "--dialect", "all"], tmp_path / "two.json", ranks=2)
    assert [row["dialect"] for row in double["dialects"]] == [row["dialect"] for row in single["dialects"]]
    # Each rank classifies its shard in batches of its own: float32 rounding (approx_score).
    for one, two in zip(single["dialects"], double["dialects"], strict=True):
        assert two["is_mean"] == approx_score(one, "is_mean"), one["dialect"]
        assert two["is_std"] == approx_score(one, "is_std"), one["dialect"]


@pytest.mark.slow
def test_a_bad_row_in_one_ranks_shard_is_named_by_global_row_and_rank(tmp_path):
    logits = np.random.default_rng(1).normal(size=(1000, 10))
    logits[800, 3] = np.nan  # in rank 1's shard (rows 500-999)
    np.save(tmp_path / "logits.npy", logits)
    result = launch(["score", tmp_path / "logits.npy", "--input", "logits", "--quiet"], ranks=2)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("isgame: error:")]
    assert len(ours) == 1 and "rank 1 of 2: " in ours[0] and "800" in ours[0], result.stderr[-2000:]


def test_ranks_other_than_0_write_into_one_scratch_folder_per_report(tmp_path, monkeypatch):
    import isgame.scoring.runtime.distributed
    from isgame.app.outputs import prepare_out_dir

    monkeypatch.setattr(isgame.scoring.runtime.distributed, "current_group", lambda: isgame.scoring.runtime.distributed.ProcessGroup(1, 2))
    report = tmp_path / "report"
    scratch = prepare_out_dir(report)
    assert not report.exists() and tmp_path not in scratch.parents and scratch.is_dir()
    # The audit hands its folder to every section: they must all land in the same scratch folder.
    assert prepare_out_dir(report) == scratch and prepare_out_dir(scratch) == scratch
    assert prepare_out_dir(tmp_path / "other") != scratch
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception, match="not a folder"):
        prepare_out_dir(tmp_path / "file")  # every rank validates, so all fail alike


@pytest.mark.slow
def test_two_ranks_run_the_bounded_sweep_like_one_process(tmp_path):
    # Targets and foolbox's random starts follow the global row, so each shard starts where one process would.
    args = ["attack", "bounded", "--num-samples", "101", "--norm", "both", "--eps", "0,8/255,64/255", "--steps", "10"]
    single = run_json([*args, "--out", tmp_path / "one"], tmp_path / "one.json", ranks=1)
    double = run_json([*args, "--out", tmp_path / "two"], tmp_path / "two.json", ranks=2)
    for one, two in zip(single["sweeps"], double["sweeps"], strict=True):
        assert two["real_is"] == approx_float32(one["real_is"])  # the real images, batched per rank
        for a, b in zip(one["epsilons"], two["epsilons"], strict=True):
            assert b["success_rate"] == a["success_rate"], (one["norm"], a["epsilon"])
            for key in ("inception_score", "conditional_entropy_bits", "max_distance"):
                assert b[key] == approx_float32(a[key]), (one["norm"], a["epsilon"], key)


def numbers(tree, path=""):
    """Every number in a JSON tree by path, timings left out."""
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() if "seconds" not in key for k, v in numbers(value, f"{path}/{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, value in enumerate(tree) for k, v in numbers(value, f"{path}[{i}]").items()}
    return {path: tree} if isinstance(tree, (int, float)) and not isinstance(tree, bool) else {}


@pytest.mark.slow
def test_two_ranks_run_the_sensitivity_probe_like_one_process(tmp_path, audit_run):
    # The synthetic K = 1000 sweeps are closed forms (the same on every rank); the classifier variants shard images.
    single = numbers(one_process_section(audit_run, "probes", "sensitivity"))
    # The audit fixture runs the fast profile: its probes draw AUDIT_FAST_SAMPLES samples per set.
    double = numbers(run_json(["probe", "sensitivity", "--num-samples", str(AUDIT_FAST_SAMPLES), "--out", tmp_path / "two"],
                              tmp_path / "two.json", ranks=2))
    assert single.keys() == double.keys() and len(single) > 50
    for path, value in single.items():
        assert double[path] == approx_sensitivity(path, value, single), path


def approx_sensitivity(path: str, value: float, report: dict[str, float]):
    """The tolerance of the sensitivity probe's number at ``path`` (as :func:`numbers` names it) between two runs.

    The synthetic K = 1000 sweeps are float64 closed forms of the seed: to 1e-12. The rest are scores of images the two
    runs batched through the float32 network differently (the audit's run used every thread, the ranks one each):
    helpers.approx_float32, the bf16 ones too (a float32 difference flips the bf16 rounding, 2^-8, of a fraction
    ~1e-7 / 2^-8 of the activations: ~1e-7 relative on average). A spread or shift in percent is 100 x a difference of
    two scores over a third, so off by ~200 x the scores' relative error in percentage points (300 where the largest is
    up to 1.5 x the mean); a FID shift by 200 x FID's, whose absolute error follows DIGITS_FID_TERMS."""
    if path.startswith(("/splits[1]/", "/sample_count/", "/weights_published_spread_percent/")):
        return pytest.approx(value, rel=1e-12)
    if path.endswith("/fid_shift_percent"):
        fid = report[path.replace("_shift_percent", "_fp32")]
        return approx_float32(value, error_scale=200 * DIGITS_FID_TERMS / fid)
    if path.endswith("percent"):
        return approx_float32(value, error_scale=300)
    return approx_float32(value, error_scale=DIGITS_FID_TERMS if "/fid_" in path else 0.0)
