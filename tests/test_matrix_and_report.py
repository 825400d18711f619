"""The robustness matrix and the audit's self-contained HTML page (rendered in headless Chromium)."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

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


def test_figure_text_is_at_least_9_css_px_at_its_displayed_width(tmp_path):
    """The matrix figure of all 20 columns fits the report's page (no shrinking) with its 7 pt values 9.3 CSS px
    tall; a figure wider than the page is shrunk, and its smallest text with it, by the same helper."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from isgame.app.figures import REPORT_CONTENT_WIDTH, figure_layout, save_display, save_figure_atomic
    from isgame.probes.matrix import MatrixResult, RobustnessMatrixDisplay
    from isgame.probes.matrix.verdicts import VERDICTS, MatrixCell

    games = [REFERENCE_GAME, *list(GAMES)[1:]]
    verdicts = [*VERDICTS, None]
    cells = {g: {m: MatrixCell(value=-0.000537 * (i + 1) * 10 ** j, reference=1.0, fooled=False, margin=0.0,
                               verdict=verdicts[(i + j) % len(verdicts)]) for j, m in enumerate(METRICS)}
             for i, g in enumerate(games)}
    result = MatrixResult(games=games, metrics=list(METRICS), cells=cells, n=540, seed=0)
    save_display(RobustnessMatrixDisplay(result).plot(), tmp_path / "matrix.png")
    layout = figure_layout(tmp_path / "matrix.png")
    assert layout["displayed_width"] <= REPORT_CONTENT_WIDTH
    assert layout["min_text_px"] == pytest.approx(7 * 192 / 72 / 2, rel=0.01)  # shown at half its pixels: 9.33 px
    figure, ax = plt.subplots(figsize=(25, 3))  # 2400 CSS px wide: shown at half size, 8 pt text 5.3 px
    ax.set_title("wide", fontsize=8)
    save_figure_atomic(figure, tmp_path / "wide.png")
    plt.close(figure)
    wide = figure_layout(tmp_path / "wide.png")
    assert wide["displayed_width"] == REPORT_CONTENT_WIDTH and wide["min_text_px"] < 9


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


#: injected into a copy of report.html: once the page has loaded, what a reader at 1280 x 800 sees, as JSON in the DOM
MEASURE = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var card = document.getElementById('answer'), rect = card.getBoundingClientRect();
  var matrix = document.querySelector('table.matrix');
  var out = document.createElement('pre');
  out.id = 'measurements';
  out.textContent = JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
    innerHeight: window.innerHeight, cardTop: rect.top, cardBottom: rect.bottom,
    cardIsFirstSection: document.querySelector('section, h2') === card,
    images: images.length,
    loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    matrixRows: matrix ? matrix.tBodies[0].rows.length : -1,
    matrixBoxScrolls: matrix ? getComputedStyle(matrix.parentElement).overflowX : null,
    stickyHeader: matrix ? getComputedStyle(matrix.tHead.rows[0].cells[0]).position : null,
    stickyFirstColumn: matrix ? getComputedStyle(matrix.tBodies[0].rows[0].cells[0]).position : null,
    details: document.querySelectorAll('details').length
  });
  document.body.appendChild(out);
});
</script>"""

BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,800", "--hide-scrollbars"]


def measure_in_chromium(browser: str, page: Path) -> dict:
    """Open a copy of ``page`` with :data:`MEASURE` in headless Chromium at 1280 x 800; its measurements."""
    with tempfile.TemporaryDirectory() as profile:
        copy = Path(profile) / "measured.html"
        copy.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
        dom = subprocess.run([browser, *BROWSER_FLAGS, f"--user-data-dir={profile}/chromium",
                              "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="measurements">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
def test_report_html_answers_first_and_fits_the_screen(audit_run):
    """Open report.html offline in headless Chromium at 1280 x 800: the answer card on the first screen, no
    sideways scrolling of the page, every figure decoded, the matrix table with a row per game."""
    out, _ = audit_run
    report = json.loads((out / "report.json").read_text())
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img[^>]* src="([^"]{0,40})', page)
    assert len(sources) >= 14 and all(src.startswith("data:image/png;base64,") for src in sources)  # self-contained
    assert "figures loaded" not in page and "<script" not in page
    # Every figure's smallest text is at least 9 CSS px at the width the page shows it (image grids have none).
    assert report["figures_min_text_px"].keys() == report["figures"].keys()
    assert all(px is None or px >= 9 for px in report["figures_min_text_px"].values()), report["figures_min_text_px"]
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    seen = measure_in_chromium(browser, out / "report.html")
    assert seen["innerWidth"] == 1280 and seen["scrollWidth"] <= seen["innerWidth"], seen
    assert seen["cardIsFirstSection"] and seen["cardTop"] < seen["innerHeight"], seen
    assert seen["cardBottom"] <= seen["innerHeight"], seen
    assert seen["loaded"] == seen["images"] == len(sources), seen
    matrix = report["matrix"]
    assert seen["matrixRows"] == len(matrix["games"]), seen
    assert seen["matrixBoxScrolls"] == "auto" and seen["stickyHeader"] == seen["stickyFirstColumn"] == "sticky"
    assert seen["details"] == len(matrix["paragraphs"])
    # The card states the three numbers and names the metrics, by name.
    numbers = report["headline"]["numbers"]
    card = re.search(r"<section class='card' id='answer'>(.*?)</section>", page, re.S).group(1)
    assert f"{numbers['noise_to_k']['steps']} gradient step" in card
    assert f"{numbers['epsilon_for_5_percent']['epsilon'] * 255:.3g}/255" in card
    assert f"{numbers['training_replay']['percent_above_held_out']:+.1f}%" in card
    assert all(html.escape(metric) in card for metric in matrix["metrics"])
