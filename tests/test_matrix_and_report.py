"""The robustness matrix and the audit's self-contained HTML page (rendered in headless Chromium)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tempfile

import pytest
import torch
from helpers import approx_float32, reference_scores

from isgame.probes.matrix import METRICS
from isgame.probes.matrix.games import GAMES, REFERENCE_GAME
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.sources.digits_data import digits_split


@pytest.mark.parametrize("game", list(GAMES))
def test_games_return_images_in_the_box(digits_classifier, game):
    images = GAMES[game](digits_classifier, 60, 0)
    assert images.shape == (60, 1, 8, 8)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


def test_histogram_matching_matches_the_real_predicted_histogram(digits_classifier):
    real, matched = GAMES["held-out real"](digits_classifier, 200, 0), GAMES["class-histogram matching"](digits_classifier, 200, 0)
    with torch.no_grad():
        real_hist = torch.bincount(digits_classifier(real).argmax(1), minlength=10)
        matched_hist = torch.bincount(digits_classifier(matched).argmax(1), minlength=10)
    assert torch.equal(real_hist, matched_hist)


@pytest.mark.slow
def test_matrix_cli_json(cli, tmp_path):
    from isgame.scoring.classifiers.digits import SHIPPED_DIGITS_WEIGHTS

    # The headline games keep the test short; every game is played in test_games_return_images_in_the_box and on
    # the shapes domain, the test's statistics in test_matrix_statistics.py.
    headline = ["training replay", "class-sorted order", "IS-inflated noise", "FID feature attack"]
    result = cli("matrix", "--out", tmp_path, *[a for g in headline for a in ("--game", g)],
                 "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads((tmp_path / "m.json").read_text())
    robust = "digits-robust" in SHIPPED_DIGITS_WEIGHTS
    assert payload["games"] == [REFERENCE_GAME, *headline]
    assert payload["metrics"] == [m for m in METRICS if robust or m not in ("R-IS", "R-FID")]
    assert payload["test"]["alpha"] == 0.05 and payload["test"]["draws"]["IS"] == 60  # 3 tests (replay is outside IS's scope)
    cells = payload["cells"]
    # The reference row is the held-out digits: its IS is that of an independent float64 computation (scipy), on
    # logits of one batch, where the matrix classified in batches of its own: float32 rounding.
    from isgame.scoring.domains import digits_domain

    seeded = digits_domain().in_seeded_order(0, first=540).real  # the matrix scores the real images in this order
    assert sorted(seeded.reshape(540, -1).sum(1).tolist()) == sorted(digits_split().test_images.reshape(540, -1)
                                                                     .sum(1).tolist())
    with torch.no_grad():
        held_out_logits = load_classifier("digits")(seeded)
    expected = reference_scores(held_out_logits.double().numpy(), 10)
    assert cells[REFERENCE_GAME]["IS"]["value"] == approx_float32(expected["is_mean"])
    assert cells[REFERENCE_GAME]["exp(I)"]["value"] == approx_float32(math.exp(expected["mi_nats"]))
    for game in payload["games"]:
        for metric in payload["metrics"]:
            assert {"value", "reference", "fooled", "stderr", "z", "p_value", "verdict", "p_adjusted"} <= \
                cells[game][metric].keys()
    # The reference row scores exactly its own reference; the headline games behave as the literature says.
    assert all(cells[REFERENCE_GAME][m]["value"] == cells[REFERENCE_GAME][m]["reference"] for m in payload["metrics"])
    assert cells["IS-inflated noise"]["IS"]["verdict"] == "missed" and cells["IS-inflated noise"]["IS"]["fooled"]
    assert cells["IS-inflated noise"]["FID"]["verdict"] == "detected"
    # IS does not claim to see copies: replay is outside its scope; C_T, which claims it, detects it.
    assert cells["training replay"]["IS"]["verdict"] == "not_applicable" and not cells["training replay"]["IS"]["fooled"]
    assert cells["training replay"]["C_T"]["verdict"] == "detected"
    assert cells["FID feature attack"]["FID"]["verdict"] == "missed"
    # Sorting the real images by class changes no distribution metric but collapses IS under contiguous splits: a
    # false alarm, since nothing about the images is worse.
    assert cells["class-sorted order"]["FID"]["value"] == pytest.approx(cells[REFERENCE_GAME]["FID"]["value"])
    assert cells["class-sorted order"]["FID"]["verdict"] == "no_alarm"
    assert cells["class-sorted order"]["IS"]["value"] < 0.5 * cells[REFERENCE_GAME]["IS"]["value"]
    assert cells["class-sorted order"]["IS"]["verdict"] == "false_alarm"
    if robust:  # the adversarially trained classifier is not inflated to real data's level by the same noise
        assert cells["IS-inflated noise"]["R-IS"]["value"] < cells[REFERENCE_GAME]["R-IS"]["value"]
    assert (tmp_path / "matrix.png").is_file()
    caveat = payload["fid_sample_size_caveat"]
    assert caveat["fid"][0] > caveat["fid"][-1] > 0  # real data's FID shrinks with N but never reaches 0


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_report_html_renders_every_figure_and_the_headline(audit_run):
    """Open report.html offline in headless Chromium; the page's own script counts decoded figures."""
    out, _ = audit_run
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    report = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img[^>]* src="([^"]{0,40})', page)
    assert len(sources) >= 14 and all(src.startswith("data:image/png;base64,") for src in sources)  # self-contained
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", (out / "report.html").as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout
    total = len(sources)
    assert f'data-loaded="{total}" data-total="{total}"' in dom
    headline = report["headline"]
    assert f"{headline['inflated_is']:.4f}" in dom and f"{headline['real_is']:.3f}" in dom
    assert "The robustness matrix" in dom and "not measured here" in dom
