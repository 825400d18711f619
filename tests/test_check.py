"""``isgame check`` on the digits default: the three verdicts of the issue, with their evidence."""

from __future__ import annotations

import json

import pytest

from isgame.attacks.inflate import InflateAttack
from isgame.probes.claim import check_claim, claim_rounding
from isgame.scoring.samples import open_images
from helpers import assert_one_line_error


@pytest.fixture(scope="module")
def split_held_out():
    real = open_images("digits:test").load_all()
    return real[:270], real[270:]  # honest samples, and real reference images they are not part of


def test_claim_rounding():
    assert claim_rounding(8.67) == pytest.approx(0.005)
    assert claim_rounding(9.0) == pytest.approx(0.5)
    assert claim_rounding(11.25) == pytest.approx(0.005)


def test_true_claim_is_reproduced_and_20_percent_more_is_not(split_held_out):
    honest, reference = split_held_out
    probe = check_claim(honest, claimed=5.0, reference=reference)
    true_is = probe.recomputed["dialect openai"]
    assert check_claim(honest, claimed=true_is, reference=reference).verdict == "reproduced"
    inflated_claim = check_claim(honest, claimed=1.2 * true_is, reference=reference)
    assert inflated_claim.verdict == "not reproduced"
    assert any("outside the recomputed spread" in reason for reason in inflated_claim.reasons)


def test_inflated_noise_is_flagged_with_its_evidence(digits_classifier, split_held_out):
    _, reference = split_held_out
    attacked = InflateAttack()(digits_classifier, open_images("noise:uniform", n=300, seed=3).load_all()).images
    result = check_claim(attacked, claimed=9.99, reference=reference)
    assert result.verdict == "not meaningful"
    assert result.images_vs_noise["fraction_nearer_noise_than_real"] > 0.9
    assert result.noise_baseline["samples_bits"] < 0.1 * result.noise_baseline["reference_bits"]
    assert any("nearer a noise image" in reason for reason in result.reasons)
    assert any("suspiciously confident" in reason for reason in result.reasons)


def test_replayed_training_set_is_flagged_as_copied(split_held_out):
    _, reference = split_held_out
    train = open_images("digits:train").load_all()
    result = check_claim(train[:400], claimed=9.2, reference=reference, train=train)
    assert result.memorization["authenticity"] == 0.0 and result.memorization["ct_statistic"] < -3
    assert any("copied from the training set" in reason for reason in result.reasons)


def test_check_cli_writes_json_and_html(cli, tmp_path):
    result = cli("check", "digits:test", "--claimed", "8.67", "--out", tmp_path, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads((tmp_path / "c.json").read_text())
    assert payload["verdict"] == "reproduced"
    assert {"recomputed", "sample_count", "noise_baseline", "gaming_ceiling", "class_histogram", "reasons"} <= payload.keys()
    assert "Verdict: reproduced" in (tmp_path / "check.html").read_text()
    assert_one_line_error(cli("check", "digits:test", "--claimed", "-3", "--out", tmp_path / "x"), "--claimed")
