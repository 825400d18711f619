"""Declared states: reset, merge and all_reduce are generic, and a second all_reduce does not double-count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from isgame.scoring.metrics.accumulator import InceptionScoreAccumulator
from isgame.scoring.metrics.fid import FeatureStatisticsAccumulator, FrechetDistanceAccumulator, features_to_statistics
from isgame.scoring.metrics.inception_score import inception_score


def _logits(n: int = 300, k: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(scale=3.0, size=(n, k)))


@pytest.mark.parametrize("track_stderr", [True, False])
def test_two_merged_shards_equal_one_accumulator_fed_every_row(track_stderr):
    logits = _logits()
    whole = InceptionScoreAccumulator(7, splits=5, total=300, track_stderr=track_stderr)
    whole.update(logits)
    first, second = (InceptionScoreAccumulator(7, splits=5, total=300, track_stderr=track_stderr) for _ in range(2))
    first.update(logits[:130])
    second.seek(130)
    second.update(logits[130:])
    first.merge(second)
    assert first.rows_seen == 300
    for mine, theirs in zip(first.states(), whole.states()):
        torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-12)
    # An independent float64 reference on the same rows: the merged sums give its score.
    reference = inception_score(logits, splits=5, track_stderr=False)
    assert first.compute().is_mean == pytest.approx(reference.is_mean, rel=1e-12)


def test_reset_restores_every_declared_state_and_merge_refuses_another_shape():
    accumulator = InceptionScoreAccumulator(7, splits=5, total=300)
    accumulator.update(_logits())
    accumulator.reset()
    assert accumulator.rows_seen == 0 and accumulator.position == 0
    assert all(float(state.abs().sum()) == 0 for state in accumulator.states())
    assert set(accumulator.state_names) == {"prob_sum", "neg_entropy_sum", "count", "class_counts", "gram_triangle",
                                            "neg_entropy_weighted_prob_sum", "neg_entropy_sq_sum"}
    with pytest.raises(Exception, match="merge"):
        accumulator.merge(InceptionScoreAccumulator(8, splits=5, total=300))


def test_merged_feature_statistics_equal_numpy_and_drop_the_rows_they_do_not_hold():
    features = np.random.default_rng(1).normal(size=(40, 6))
    first, second = FeatureStatisticsAccumulator(6), FeatureStatisticsAccumulator(6)
    first.update(features[:25])
    second.update(features[25:])
    first.merge(second)
    merged = first.compute()
    np.testing.assert_allclose(merged.mean, features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.covariance, np.cov(features, rowvar=False), rtol=1e-10, atol=1e-12)
    assert merged.n == 40
    # Below D rows the accumulator keeps them for the low-rank FID; a merge brings sums of rows it does not hold.
    small, other = FeatureStatisticsAccumulator(6), FeatureStatisticsAccumulator(6)
    small.update(features[:3])
    assert small.compute().root_rows is not None
    other.update(features[3:5])
    small.merge(other)
    assert small.compute().root_rows is None and small.count == 5


def test_frechet_accumulator_is_fid_of_its_two_sides_and_has_a_direction():
    real, fake = (np.random.default_rng(seed).normal(size=(50, 4)) for seed in (2, 3))
    metric = FrechetDistanceAccumulator(4)
    metric.update(real, real=True)
    metric.update(fake)
    from isgame.scoring.metrics.fid import statistics_to_fid

    expected = statistics_to_fid(features_to_statistics(real), features_to_statistics(fake))
    assert metric.compute() == pytest.approx(expected, rel=1e-12)
    assert FrechetDistanceAccumulator.higher_is_better is False and InceptionScoreAccumulator.higher_is_better
    assert FeatureStatisticsAccumulator.higher_is_better is None  # statistics, not a metric


RANK_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np, torch
    from isgame.scoring.metrics.accumulator import InceptionScoreAccumulator
    from isgame.scoring.runtime.distributed import current_group

    logits = torch.from_numpy(np.random.default_rng(0).normal(scale=3.0, size=(300, 7)))
    start, stop = current_group().shard(300)
    accumulator = InceptionScoreAccumulator(7, splits=5, total=300)
    accumulator.seek(start)
    accumulator.update(logits[start:stop])
    accumulator.all_reduce()
    accumulator.all_reduce()  # a second sync must not count the rows twice
    twice = accumulator.compute().is_mean
    accumulator.reset()
    accumulator.seek(start)
    accumulator.update(logits[start:(start + stop) // 2])
    accumulator.all_reduce()  # then more rows of this rank after a sync: they add to its own sums
    accumulator.update(logits[(start + stop) // 2:stop])
    accumulator.all_reduce()
    if current_group().is_main:
        json.dump({"twice": twice, "resumed": accumulator.compute().is_mean}, open(sys.argv[1], "w"))
""")


@pytest.mark.slow
def test_a_second_all_reduce_does_not_double_count_and_rows_after_a_sync_count_once(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    out = tmp_path / "out.json"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script), str(out)], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(out.read_text())
    expected = inception_score(_logits(), splits=5, track_stderr=False).is_mean
    # float64 sums of the same rows in another order: round-off only.
    assert values["twice"] == pytest.approx(expected, rel=1e-12)
    assert values["resumed"] == pytest.approx(expected, rel=1e-12)
