"""isgame stats save: float64 statistics, a seeded feature subset and a key; refused when the settings differ."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from helpers import assert_one_line_error, assert_statistics_close

from isgame.app.check import run_check
from isgame.app.scoring_commands import fid_between, save_stats
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.digits import shipped_weights_path
from isgame.scoring.domains import load_domain
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.fid import load_statistics
from isgame.scoring.sources.digits_data import digits_split
from isgame.scoring.sources.stats_file import load_reference_stats


@pytest.fixture(scope="module")
def stats_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("stats") / "real.stats.npz"
    save_stats("digits:test", path, subset=100, seed=3, batch_size=64, progress=False)
    return path


@pytest.fixture(scope="module")
def held_out_features():
    with np.errstate(all="ignore"):
        import torch

        with torch.no_grad():
            return load_classifier("digits").features(digits_split().test_images).double().numpy()


def test_statistics_and_subset_match_an_independent_computation(stats_path, held_out_features):
    stats = load_reference_stats(stats_path, classifier=load_classifier("digits"))
    assert stats.statistics.n == 540 and stats.statistics.mean.dtype == np.float64
    # save_stats classified in batches of 64: float32 rounding.
    assert_statistics_close(stats.statistics.mean, stats.statistics.covariance, held_out_features)
    rows = np.sort(np.random.default_rng(3).choice(540, size=100, replace=False))
    np.testing.assert_array_equal(stats.subset_rows, rows)
    np.testing.assert_allclose(stats.features_subset, held_out_features[rows], rtol=1e-6, atol=1e-6)
    key = stats.key
    assert key.weights_sha256 and key.feature_dim == 128 and key.dtype == "float32" and key.n == 540
    assert key.preprocessing["resize"] == "bilinear" and len(key.input_fingerprint) == 64


def test_file_is_plain_arrays_and_pytorch_fid_compatible(stats_path):
    with np.load(stats_path, allow_pickle=False) as archive:  # no object arrays anywhere
        assert {"mu", "sigma", "n", "features_subset", "isgame_key"} <= set(archive.files)
        assert json.loads(str(archive["isgame_key"]))["classifier"] == "digits"
    assert load_statistics(stats_path).n == 540  # the older reader still reads it


def test_refused_after_the_weights_change(stats_path):
    with pytest.raises(InvalidInputError) as other_name:
        load_reference_stats(stats_path, classifier=load_classifier("digits-b"))
    assert "classifier: stored digits, here digits-b" in str(other_name.value)
    with pytest.raises(InvalidInputError) as same_name:
        load_reference_stats(stats_path, classifier=load_classifier("digits", weights=shipped_weights_path("digits-b")))
    message = str(same_name.value)
    assert "weights_sha256: stored" in message and "classifier:" not in message and "\n" not in message


def test_fid_takes_the_file_and_refuses_other_weights(cli, stats_path):
    from_images = fid_between("digits:test", "digits:train", progress=False)["fid"]
    assert fid_between(str(stats_path), "digits:train", progress=False)["fid"] == pytest.approx(from_images, rel=1e-6)
    assert_one_line_error(cli("fid", stats_path, "digits:train", "-c", "digits-b", "-q"), "weights_sha256", "stats save")


def test_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "keep.stats.npz"
    path.write_bytes(b"old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(InvalidInputError, match="cannot write"):
        save_stats("digits:test", path, n=50, progress=False)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["keep.stats.npz"]


def test_the_matrix_takes_it_as_the_reference_of_its_distribution_metrics(cli, stats_path, tmp_path):
    """Statistics of the training digits with a 300-row subset: FID comes from their moments (those of all 1257 rows,
    so the usual FID), KID and RBF-MMD from the subset (so not the usual values, but those of the subset)."""
    from isgame.probes.matrix import robustness_matrix
    from isgame.probes.matrix.games import REFERENCE_GAME, held_out_real, uniform_noise
    from isgame.scoring.metrics.kid import kernel_inception_distance
    from isgame.scoring.metrics.rbf_mmd import rbf_mmd

    train_stats = tmp_path / "train.stats.npz"
    save_stats("digits:train", train_stats, subset=300, progress=False)
    assert_one_line_error(cli("probe", "noise", "--real", train_stats), "holds feature statistics, not images")
    domain = load_domain("digits", real=str(train_stats), allow_stats=True)
    subset = domain.reference_stats.features_subset
    assert domain.real_source == "digits:test" and subset.shape == (300, 128)
    options = dict(games={REFERENCE_GAME: held_out_real, "uniform noise": uniform_noise}, bootstrap=2,
                   metrics=["fid", "KID", "rbf-mmd"], second_classifier=None, robust_classifier=None)
    stored, usual = robustness_matrix(domain, **options), robustness_matrix(load_domain("digits"), **options)
    assert stored.metrics == ["FID", "KID", "RBF-MMD"]
    # The matrix scores the real images in its seeded order (KID's subsets are drawn by row).
    features = {REFERENCE_GAME: load_domain("digits").in_seeded_order(0, first=540).real, "uniform noise": None}
    for game in stored.games:
        assert stored.cells[game]["FID"].value == pytest.approx(usual.cells[game]["FID"].value, rel=1e-5)
        assert stored.cells[game]["KID"].value != pytest.approx(usual.cells[game]["KID"].value, rel=1e-3)
    held_out = load_classifier("digits").features(features[REFERENCE_GAME]).detach().double().numpy()
    kid = kernel_inception_distance(subset, held_out, subsets=50, subset_size=200, seed=0).mean
    assert stored.cells[REFERENCE_GAME]["KID"].value == pytest.approx(kid, rel=1e-6)
    assert stored.cells[REFERENCE_GAME]["RBF-MMD"].value == pytest.approx(rbf_mmd(subset, held_out).mmd2, rel=1e-6)
    assert stored.to_dict()["distribution_reference"].startswith("stored statistics")
    assert stored.to_dict()["domain"]["reference_stats"]["source"] == str(train_stats)
    # Training images must be images; a file made under other weights is refused, naming the field.
    with pytest.raises(InvalidInputError, match="holds feature statistics, not images"):
        load_domain("digits", train=str(stats_path), real="digits:test", allow_stats=True)
    assert_one_line_error(cli("matrix", "--real", stats_path, "-c", "digits-b"), "classifier", "stats save")


def test_check_takes_it_as_the_real_images(stats_path, tmp_path):
    report = run_check("digits:test", claimed=8.0, n=30, real=str(stats_path), attack=False, out_dir=tmp_path)
    reference = report.to_dict()["reference_statistics"]
    expected = fid_between(str(stats_path), "digits:test", n=30, progress=False)["fid"]
    assert reference["n"] == 540 and reference["fid"] == pytest.approx(expected, rel=1e-6)
    assert any("holds feature statistics" in note for note in report.notes)


def test_stats_save_cli(cli, tmp_path):
    out = cli("stats", "save", "digits:test", "-o", tmp_path / "s.npz", "--n", "80", "--json", "-", "-q")
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["n"] == 80 and (tmp_path / "s.npz").is_file()
    assert_one_line_error(cli("stats", "save", "nope/missing", "-o", tmp_path / "t.npz"), "not found")
