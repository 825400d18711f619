"""``isgame metrics`` and :func:`isgame.compute_metrics`: the registry, the options, the values, the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error

import isgame
from isgame.app import metrics_command
from isgame.app.metrics_command import METRICS, compute_metrics, register_metric
from isgame.scoring.metrics.copy_detectors import authenticity, data_copying_test
from isgame.scoring.metrics.fid import features_to_statistics, frechet_distance, save_statistics
from isgame.scoring.metrics.kid import kernel_inception_distance
from isgame.scoring.metrics.prdc import precision_recall_density_coverage
from isgame.scoring.sources.samples import open_images


def features(classifier, spec: str, n: int | None = None) -> np.ndarray:
    with torch.no_grad():
        return classifier.features(open_images(spec, n=n).load_all()).double().numpy()


def test_metrics_cli_values_equal_the_library_functions_on_the_same_features(cli, digits_classifier, tmp_path):
    from isgame.scoring.sources.digits_data import digits_split

    np.save(tmp_path / "train.npy", digits_split().train_images[:400].numpy())
    payload = json.loads(cli("metrics", "digits:test", "noise:uniform", "--n", "120", "--train", tmp_path / "train.npy",
                             "--kid-subsets", "5", "--kid-subset-size", "40", "--seed", "3", "--json", "-",
                             "--quiet").stdout)
    real, train = features(digits_classifier, "digits:test", 120), features(digits_classifier, str(tmp_path / "train.npy"))
    with torch.no_grad():
        fake = digits_classifier.features(open_images("noise:uniform", n=120, seed=3).load_all()).double().numpy()
    values = payload["values"]
    assert payload["metrics"] == ["fid", "kid", "precision-recall", "density-coverage", "ct", "authenticity", "vendi",
                                  "sliced-wasserstein", "rbf-mmd", "fld", "fid-infinity", "is-infinity", "wavelet-fd",
                                  "fid-b"]  # a digits classifier has digits-b as its second classifier
    assert (payload["n_real"], payload["n_fake"], payload["n_train"]) == (120, 120, 400)  # --n spares TRAIN
    assert values["fid"]["fid"] == pytest.approx(frechet_distance(real, fake), rel=1e-6)
    kid = kernel_inception_distance(real, fake, subsets=5, subset_size=40, seed=3)
    assert values["kid"]["mean"] == pytest.approx(kid.mean, rel=1e-5) and values["kid"]["subset_size"] == 40
    assert values["kid"]["std_ddof"] == 0
    manifold = precision_recall_density_coverage(real, fake)
    assert values["precision-recall"]["precision"] == manifold.precision
    assert values["density-coverage"]["coverage"] == manifold.coverage
    ct = data_copying_test(train, real, fake, seed=3)
    assert values["ct"]["ct_statistic"] == pytest.approx(ct.ct_statistic, abs=1e-6) and values["ct"]["verdict"] == ct.verdict
    assert values["authenticity"]["authenticity"] == pytest.approx(authenticity(train, fake), abs=1e-12)


def test_metrics_cli_passes_every_option_to_the_library(cli, monkeypatch):
    received = {}

    def fake_compute(real, fake, **options):
        received.update(real=real, fake=fake, **options)
        return metrics_command.MetricsResult(real=real, fake=fake, train=None, classifier={"name": "digits"},
                                             feature_dim=128, n_real=1, n_fake=1, n_train=None,
                                             real_is_statistics=False, seed=0, values={"fid": {"fid": 1.5}})

    monkeypatch.setattr(metrics_command, "compute_metrics", fake_compute)
    result = cli("metrics", "a", "b", "--metric", "kid", "--metric", "fid", "--train", "t", "-c", "digits-b", "--n", "7",
                 "--seed", "4", "--batch-size", "3", "--kid-subsets", "9", "--kid-subset-size", "11", "--quiet",
                 "--device", "cpu", "--range", "0-255", "--json", "-")
    assert result.exit_code == 0, result.stderr
    assert received == dict(real="a", fake="b", metrics=["kid", "fid"], train="t", classifier_name="digits-b",
                            weights=None, n=7, seed=4, batch_size=3, kid_subsets=9, kid_subset_size=11, progress=False,
                            value_range="0-255", second_classifier="auto")
    assert json.loads(result.stdout)["values"] == {"fid": {"fid": 1.5}}


def test_stored_statistics_as_real_give_fid_only(cli, digits_classifier, tmp_path):
    real = features(digits_classifier, "digits:test")
    save_statistics(features_to_statistics(real), tmp_path / "real.npz")
    payload = json.loads(cli("metrics", tmp_path / "real.npz", "digits:train", "--train", "nowhere/at/all", "--json", "-",
                             "--quiet").stdout)
    assert payload["metrics"] == ["fid"] and payload["real_is_statistics"] is True
    # FID alone needs no training images: --train is not read (a missing folder is no error), and a note says so.
    assert payload["n_train"] is None and any("not read" in note for note in payload["notes"])
    assert payload["values"]["fid"]["fid"] == pytest.approx(frechet_distance(real, features(digits_classifier, "digits:train")),
                                                            rel=1e-6)
    assert_one_line_error(cli("metrics", tmp_path / "real.npz", "digits:train", "--metric", "kid"),
                          "kid needs features of real images", "REAL is stored statistics")


@pytest.mark.parametrize("args,fragments", [
    (["--metric", "ct"], ["ct needs the generator's training images", "--train SOURCE"]),
    (["--metric", "telepathy"], ["unknown --metric 'telepathy'", "fid, kid"]),
    (["--kid-subsets", "0"], ["--kid-subsets must be >= 1"]),
    (["--kid-subset-size", "1"], ["--kid-subset-size must be >= 2"]),
])
def test_metrics_cli_errors_are_one_line(cli, args, fragments):
    assert_one_line_error(cli("metrics", "digits:test", "digits:train", *args), *fragments)


@pytest.fixture
def restored_registry():
    """The registry as it was before the test (it is the process's; a test's metrics must not outlive it)."""
    saved = dict(METRICS)
    yield
    METRICS.clear()
    METRICS.update(saved)


def test_a_new_metric_joins_by_registering_one_function(restored_registry):
    register_metric("mean-gap", headline=("gap",))(
        lambda inputs: {"gap": float(np.abs(inputs.real.mean(0) - inputs.fake.mean(0)).sum())})
    result = isgame.compute_metrics("digits:test", "digits:train", n=50, progress=False)
    assert list(result.values) == ["fid", "kid", "precision-recall", "density-coverage", "vendi", "sliced-wasserstein",
                                   "rbf-mmd", "fid-infinity", "is-infinity", "wavelet-fd", "fid-b", "mean-gap"]
    only = compute_metrics("digits:test", "digits:train", metrics=["mean-gap"], n=50, progress=False)
    assert only.values["mean-gap"]["gap"] == pytest.approx(result.values["mean-gap"]["gap"], rel=1e-12)
    assert only.values["mean-gap"]["gap"] > 0


def test_a_plug_in_from_the_top_level_may_not_replace_a_metric_silently_and_may_return_numpy(restored_registry):
    assert isgame.register_metric is register_metric and isgame.MetricInputs is metrics_command.MetricInputs
    with pytest.raises(isgame.InvalidInputError, match=r"name='fid' is taken by isgame's own metric.*override=True"):
        isgame.register_metric("fid", headline=("fid",))
    isgame.register_metric("numpy-gap", headline=("gap",))(lambda inputs: {
        "gap": np.float32(np.abs(inputs.real.mean(0) - inputs.fake.mean(0)).sum()),
        "per_feature": np.abs(inputs.real.mean(0) - inputs.fake.mean(0))[:3], "count": np.int64(3)})
    with pytest.raises(isgame.InvalidInputError, match="'numpy-gap' is taken by a metric registered earlier"):
        isgame.register_metric("numpy-gap")
    result = isgame.compute_metrics("digits:test", "digits:train", metrics=["fid", "numpy-gap"], n=50, progress=False)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["values"]["numpy-gap"]["count"] == 3 and len(payload["values"]["numpy-gap"]["per_feature"]) == 3
    assert payload["values"]["numpy-gap"]["gap"] > 0 and payload["values"]["fid"]["fid"] > 0  # fid is still FID
    # A replacement that is meant says so.
    isgame.register_metric("fid", headline=("fid",), override=True)(lambda inputs: {"fid": 0.0})
    assert compute_metrics("digits:test", "digits:train", metrics=["fid"], n=50, progress=False).values["fid"]["fid"] == 0


def test_the_default_choice_says_which_metrics_it_skipped_and_why(cli, digits_classifier, tmp_path):
    save_statistics(features_to_statistics(features(digits_classifier, "digits:test")), tmp_path / "real.npz")
    stats = cli("metrics", tmp_path / "real.npz", "digits:train", "--n", "60", "--quiet", "--json", tmp_path / "s.json")
    assert stats.exit_code == 0, stats.stderr
    payload = json.loads((tmp_path / "s.json").read_text())
    assert payload["metrics"] == ["fid"]
    assert set(payload["skipped"]) == set(METRICS) - {"fid"} and payload["skipped"]["kid"] == "real features"
    assert "isgame: note: skipped kid, precision-recall" in stats.stderr
    assert f"REAL {tmp_path / 'real.npz'} is stored statistics (mu, sigma), which give FID only" in stats.stderr
    images = cli("metrics", "digits:test", "digits:train", "--n", "60", "--metric", "kid", "--quiet", "--json", "-")
    assert json.loads(images.stdout)["skipped"] == {}  # a choice the user made skips nothing
    default = compute_metrics("digits:test", "noise:uniform", n=60, progress=False)
    assert default.skipped == {"ct": "training images", "authenticity": "training images", "fld": "training images"}
    assert any(note.startswith("skipped ct, authenticity, fld: they need the generator's training images; pass them "
                               "as train=SOURCE") for note in default.notes)


def test_the_copying_metrics_name_their_space_and_why_check_differs():
    result = compute_metrics("digits:test", "digits:test", train="digits:train", metrics=["ct", "authenticity"], n=300,
                             progress=False)
    for name in ("ct", "authenticity"):
        assert result.values[name]["space"] == "features (128-d, the classifier's)"
        assert result.values[name]["held_out"] == "REAL" and "pixels" in result.values[name]["check_differs"]


def test_an_isgame_stats_file_gives_the_feature_metrics_its_stored_rows(cli, digits_classifier, tmp_path):
    """isgame stats save keeps a seeded subset of the feature rows: KID and the k-NN metrics compare against those
    rows (checked against KID of the same rows computed directly), FID against the moments; the pixel metrics
    (wavelet-fd) and a second classifier's FID need real images and are skipped, saying so."""
    from isgame.scoring.metrics.kid import kernel_inception_distance
    from isgame.scoring.sources.stats_file import load_reference_stats

    saved = cli("stats", "save", "digits:test", "-o", tmp_path / "real.stats.npz", "--quiet")
    assert saved.exit_code == 0, saved.stderr
    result = cli("metrics", tmp_path / "real.stats.npz", "noise:uniform", "--n", "60", "--quiet", "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {"fid", "kid", "precision-recall", "vendi"} <= set(payload["metrics"])
    assert payload["skipped"]["wavelet-fd"] == "real images" and payload["skipped"]["fid-b"] == "real images"
    assert payload["skipped"]["ct"] == "training images"
    stats = load_reference_stats(tmp_path / "real.stats.npz")
    fake = features(digits_classifier, "noise:uniform", n=60)
    expected = kernel_inception_distance(np.asarray(stats.features_subset, np.float64), fake, seed=0).mean
    assert payload["values"]["kid"]["mean"] == pytest.approx(expected, rel=1e-6)
    assert any("stored feature rows" in note for note in payload["notes"])
