"""Each dialect against the reference implementation's own code on identical logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import approx_float32, assert_one_line_error
from scipy.stats import entropy

from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.dialects import dialect_table, score_dialect


@pytest.fixture(scope="module")
def logits():
    rng = np.random.default_rng(11)
    return torch.from_numpy(rng.normal(size=(1003, 50)) * rng.uniform(0.5, 5, size=(1003, 1))).float()


def test_torch_fidelity_dialect_matches_torch_fidelity(logits):
    from torch_fidelity import metric_isc  # the [test] extra: imported here, not at collection (seconds)

    expected = metric_isc.isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    ours = score_dialect(logits, "torch-fidelity")
    assert ours.is_mean == pytest.approx(expected["inception_score_mean"], rel=1e-6)
    assert ours.is_std == pytest.approx(expected["inception_score_std"], rel=1e-6)


@pytest.mark.parametrize("splits", [10, 7])
def test_torchmetrics_dialect_matches_torchmetrics(logits, splits):
    from torchmetrics.image import inception  # the [test] extra: imported here, not at collection (seconds)

    metric = inception.InceptionScore(feature=torch.nn.Identity(), splits=splits)
    metric.update(logits)
    torch.manual_seed(5)  # torchmetrics draws its permutation from torch's global generator
    mean, std = metric.compute()
    ours = score_dialect(logits, "torchmetrics", splits=splits, seed=5)
    assert ours.is_mean == pytest.approx(float(mean), rel=1e-6)
    assert ours.is_std == pytest.approx(float(std), rel=1e-5)


def test_sbarratt_dialect_matches_its_numpy_loop(logits):
    preds = torch.softmax(logits, 1).numpy().astype(np.float64)
    n, splits = len(preds), 3
    split_scores = []
    for k in range(splits):
        part = preds[k * (n // splits) : (k + 1) * (n // splits), :]
        py = np.mean(part, axis=0)
        split_scores.append(np.exp(np.mean([entropy(row, py) for row in part])))
    ours = score_dialect(logits, "sbarratt", splits=splits)
    assert ours.rows_used == 1002  # 1003 // 3 * 3: the remainder is dropped
    assert ours.is_mean == pytest.approx(np.mean(split_scores), rel=1e-6)
    assert ours.is_std == pytest.approx(np.std(split_scores), rel=1e-5)


def test_openai_dialect_matches_the_improved_gan_loop(logits):
    preds = torch.softmax(logits.float(), 1).numpy()
    scores = []
    for i in range(10):
        part = preds[(i * preds.shape[0] // 10) : ((i + 1) * preds.shape[0] // 10), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    ours = score_dialect(logits, "openai")
    assert ours.is_mean == pytest.approx(np.mean(scores), rel=1e-5)
    assert ours.is_std == pytest.approx(np.std(scores), rel=1e-4)


def test_table_spread_and_improved_score(logits):
    table = dialect_table(logits)
    names = [s.dialect for s in table.scores]
    assert names == ["openai", "torch-fidelity", "torchmetrics", "sbarratt", "barratt-sharma"]
    by_name = {s.dialect: s for s in table.scores}
    # One split over all rows (sbarratt's default) equals exp(I) of the improved score.
    assert by_name["sbarratt"].is_mean == pytest.approx(by_name["barratt-sharma"].is_mean, rel=1e-5)
    assert table.spread_percent > 0


def test_unknown_dialect_and_too_many_splits():
    with pytest.raises(InvalidInputError, match="unknown dialect"):
        score_dialect(torch.zeros(5, 3), "keras")
    with pytest.raises(InvalidInputError, match="fewer than splits"):
        score_dialect(torch.zeros(5, 3), "openai")


def test_score_dialect_cli(cli, tmp_path):
    import json

    logits = np.random.default_rng(3).normal(size=(400, 12)) * 3
    np.save(tmp_path / "logits.npy", logits)
    result = cli("score", tmp_path / "logits.npy", "--input", "logits", "--dialect", "all", "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [d["dialect"] for d in payload["dialects"]] == ["openai", "torch-fidelity", "torchmetrics", "sbarratt", "barratt-sharma"]
    assert payload["dialects"][1]["is_mean"] == pytest.approx(score_dialect(logits, "torch-fidelity").is_mean, rel=1e-12)
    one = json.loads(cli("score", tmp_path / "logits.npy", "--input", "logits", "--dialect", "openai", "--splits", "4",
                         "--json", "-").stdout)
    assert one["dialects"][0]["splits"] == 4
    assert_one_line_error(cli("score", tmp_path / "logits.npy", "--input", "logits", "--dialect", "keras"), "unknown dialect")


def test_torchmetrics_dialect_truncates_float_images(cli, tmp_path, digits_classifier):
    import json

    images = torch.rand(60, 1, 8, 8, generator=torch.Generator().manual_seed(4)).numpy()
    np.save(tmp_path / "x.npy", images.astype(np.float32))
    payload = json.loads(cli("score", tmp_path / "x.npy", "--dialect", "torchmetrics", "--json", "-").stdout)
    truncated = torch.floor(torch.from_numpy(images) * 255) / 255
    with torch.no_grad():
        expected = score_dialect(digits_classifier(truncated), "torchmetrics")
        untruncated = score_dialect(digits_classifier(torch.from_numpy(images)), "torchmetrics")
    assert payload["dialects"][0]["is_mean"] == approx_float32(expected.is_mean)  # the CLI batches otherwise
    assert expected.is_mean != untruncated.is_mean


def test_shuffle_with_a_dialect_is_refused(cli, tmp_path):
    from isgame.app.scoring_commands import score_in_dialects

    np.save(tmp_path / "logits.npy", np.random.default_rng(3).normal(size=(40, 5)))
    assert_one_line_error(cli("score", tmp_path / "logits.npy", "--input", "logits", "--dialect", "openai", "--shuffle"),
                          "--shuffle does not combine with --dialect openai")
    with pytest.raises(InvalidInputError, match=r"^shuffle=True does not combine with dialect=all"):
        score_in_dialects(str(tmp_path / "logits.npy"), "all", shuffle=True, input_kind="logits")


def test_dialect_output_names_source_and_classifier_and_draws_a_progress_bar(cli, monkeypatch):
    import hashlib
    import json

    import isgame.scoring.runtime.progress
    from isgame.scoring.classifiers.digits import shipped_weights_path

    bars = []
    real_bar = isgame.scoring.runtime.progress.progress_bar

    def recording_bar(description, *, total, batches, enabled=True):
        bars.append((description, total, batches, enabled))
        return real_bar(description, total=total, batches=batches, enabled=enabled)

    monkeypatch.setattr(isgame.scoring.runtime.progress, "progress_bar", recording_bar)
    result = cli("score", "digits:test", "--dialect", "all", "--batch-size", "100", "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    sha256 = hashlib.sha256(shipped_weights_path("digits").read_bytes()).hexdigest()
    assert (payload["source"], payload["input"], payload["n"]) == ("digits:test", "images", 540)
    assert payload["classifier"]["name"] == "digits" and payload["classifier"]["weights_sha256"] == sha256
    assert payload["uint8_truncation"]["images_rerun"] == 540  # digits are multiples of 1/16: truncation moves them
    assert {"dialects", "spread_percent"} <= payload.keys()  # the keys that were there before
    assert "digits:test, N = 540, digits (weights sha256 " + sha256[:12] in result.stderr  # the table's title
    assert bars == [("classifying digits:test", 540, 6, True)]  # 6 batches of 100: the bar draws
    bars.clear()
    cli("score", "digits:test", "--dialect", "openai", "--batch-size", "100", "--quiet")
    assert bars == [("classifying digits:test", 540, 6, False)]


@pytest.fixture()
def counting_digits(monkeypatch, digits_classifier):
    """The digits classifier behind the dialect path, counting the images each forward pass sees."""
    import isgame.app.scoring_commands
    from isgame.scoring.classifiers import load_classifier

    classifier = load_classifier("digits")
    classifier.rows = []
    run_network = classifier._run_network

    def counting(model_input):
        classifier.rows.append(model_input.shape[0])
        return run_network(model_input)

    classifier._run_network = counting
    monkeypatch.setattr(isgame.app.scoring_commands, "load_classifier", lambda name, weights=None: classifier)
    return classifier


@pytest.mark.parametrize("dialect", ["torchmetrics", "all"])
def test_torchmetrics_dialect_runs_the_network_once_on_uint8_valued_images(tmp_path, counting_digits, digits_classifier,
                                                                          dialect):
    from PIL import Image

    from isgame.app.scoring_commands import score_in_dialects
    from isgame.scoring.sources.samples import open_images

    digits = np.round(open_images("digits:test", n=60).load_all().numpy()[:, 0] * 255).astype(np.uint8)
    for i, image in enumerate(digits):
        Image.fromarray(image).save(tmp_path / f"{i:03d}.png")
    report = score_in_dialects(str(tmp_path), dialect, batch_size=16, progress=False)
    assert sum(counting_digits.rows) == 60  # once per image: k/255 truncates to itself
    assert report.extra["uint8_truncation"]["images_rerun"] == 0
    with torch.no_grad():  # torchmetrics' own input: (imgs * 255).byte()
        truncated = torch.from_numpy(digits).float()[:, None] / 255
        expected = score_dialect(digits_classifier((truncated * 255).byte().float() / 255), "torchmetrics")
    scored = {s.dialect: s for s in report.scores}["torchmetrics"]
    assert scored.is_mean == pytest.approx(expected.is_mean, rel=1e-6)


def test_float_images_run_again_only_where_truncation_changes_a_pixel(tmp_path, counting_digits, digits_classifier):
    from isgame.app.scoring_commands import score_in_dialects

    images = np.round(np.random.default_rng(5).random((50, 1, 8, 8)) * 255).astype(np.float32) / 255
    changed = np.zeros(50, bool)
    changed[::5] = True  # 10 of 50 images carry a pixel that is not k/255
    images[changed, 0, 0, 0] = 0.5
    np.save(tmp_path / "x.npy", images)
    report = score_in_dialects(str(tmp_path / "x.npy"), "torchmetrics", progress=False)
    assert sum(counting_digits.rows) == 50 + 10
    assert report.extra["uint8_truncation"]["images_rerun"] == 10
    with torch.no_grad():
        expected = score_dialect(digits_classifier((torch.from_numpy(images) * 255).byte().float() / 255), "torchmetrics")
    assert report.scores[0].is_mean == pytest.approx(expected.is_mean, rel=1e-6)
