"""Each dialect against the reference implementation's own code on identical logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from isgame.scoring.dialects import dialect_table, score_dialect
from isgame.scoring.errors import InvalidInputError
from helpers import assert_one_line_error


@pytest.fixture(scope="module")
def logits():
    rng = np.random.default_rng(11)
    return torch.from_numpy(rng.normal(size=(1003, 50)) * rng.uniform(0.5, 5, size=(1003, 1))).float()


def test_torch_fidelity_dialect_matches_torch_fidelity(logits):
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    expected = metric_isc.isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    ours = score_dialect(logits, "torch-fidelity")
    assert ours.is_mean == pytest.approx(expected["inception_score_mean"], rel=1e-6)
    assert ours.is_std == pytest.approx(expected["inception_score_std"], rel=1e-6)


@pytest.mark.parametrize("splits", [10, 7])
def test_torchmetrics_dialect_matches_torchmetrics(logits, splits):
    inception = pytest.importorskip("torchmetrics.image.inception")
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
    assert payload["dialects"][0]["is_mean"] == pytest.approx(expected.is_mean, rel=1e-9)
    assert expected.is_mean != untruncated.is_mean
