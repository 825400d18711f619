"""FLD as a column of the robustness matrix, and fid-b as a key of ``isgame metrics``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import DIGITS_FID_TERMS, approx_float32
from scipy.spatial.distance import cdist
from scipy.special import logsumexp

from isgame.probes.matrix import available_metrics, held_out_halves, robustness_matrix
from isgame.probes.matrix import measurements as matrix_metrics
from isgame.probes.matrix.games import GAMES, REFERENCE_GAME, select_games
from isgame.probes.matrix.measurements import MatrixContext, fld_measurement
from isgame.scoring.metrics.fid import features_to_statistics, statistics_to_fid
from isgame.scoring.metrics.fld import feature_likelihood_divergence, fit_mixture
from isgame.scoring.pipeline import classify_with_features


def _fld_context(train: np.ndarray, test: np.ndarray, seed: int = 0) -> MatrixContext:
    """A context holding only what FLD reads (the other columns' fields are placeholders)."""
    return MatrixContext(seed=seed, splits=1, kid_subset_size=2, ct_cells=1, reference_features=train,
                         reference_statistics=features_to_statistics(train), train_pixels=train,
                         ct_held_out_pixels=test, fld_train=train, fld_test=test)


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(11)
    train, test = rng.normal(size=(90, 5)), rng.normal(size=(40, 5))
    test[:, 2] = 1.5  # a dead column: FLD drops it
    generated = rng.normal(size=(30, 5)) * 1.2 + 0.1
    return train, test, generated


def test_the_fld_draw_scores_the_drawn_components_of_the_fitted_mixture(synthetic):
    """At the full set the draw is the value (= the library's FLD); on a half-sample it is the test NLL of the
    mixture of the drawn rows' fitted components, less the baseline of the draw's size, here by hand in float64
    with scipy's logsumexp."""
    from isgame.scoring.metrics.fld import fld_baseline_nll

    train, test, generated = synthetic
    fld = fld_measurement(_fld_context(train, test, seed=2), generated)
    library = feature_likelihood_divergence(train, test, generated, seed=2)
    assert fld.value == pytest.approx(library.fld, rel=1e-12)
    assert fld.draw(np.arange(30)) == pytest.approx(fld.value, rel=1e-12, abs=1e-12)
    rows = np.sort(np.random.default_rng(3).choice(30, size=15, replace=False))
    # Independently: normalise by the test set's live columns, keep the fitted log-variances, the drawn rows alone.
    live = test.std(0, ddof=1) > 0
    mean, std = test[:, live].mean(0), test[:, live].std(0, ddof=1)
    t, g, x = ((a[:, live] - mean) / std for a in (test, generated, train))
    log_variances = fit_mixture(x, g, seed=2)[rows]
    dim = t.shape[1]
    log_normal = (-0.5 * cdist(t, g[rows], "sqeuclidean") / np.exp(log_variances)
                  - dim / 2 * (math.log(2 * math.pi) + log_variances))
    nll = -(logsumexp(log_normal, axis=1) - math.log(15)).mean() / dim
    assert fld.draw(rows) == pytest.approx(100 * (nll - fld_baseline_nll(x, t, size=15, seed=2)), rel=1e-10)
    assert fld.draw(rows) != pytest.approx(fld.value, rel=1e-6)


def test_a_set_of_exact_training_copies_has_infinite_fld_not_round_off(synthetic):
    """Copies of training points collapse their components' variance to the clamp: the authors' code prints
    1e16-scale values (and warns); the matrix records +inf, and the library flags the copies."""
    train, test, _ = synthetic
    copies = train[:30].copy()
    library = feature_likelihood_divergence(train, test, copies, seed=2)
    assert library.copies == 30 and library.memorised and library.fld > 1000
    fld = fld_measurement(_fld_context(train, test, seed=2), copies)
    assert fld.value == math.inf and fld.draw(np.arange(15)) == math.inf
    honest = feature_likelihood_divergence(train, test, train[:30] + 0.3, seed=2)
    assert honest.copies == 0 and math.isfinite(fld_measurement(_fld_context(train, test, seed=2), train[:30] + 0.3).value)


def test_the_baseline_is_fitted_once_per_size(synthetic, monkeypatch):
    train, test, generated = synthetic
    calls = []
    original = matrix_metrics.fld_baseline_nll
    monkeypatch.setattr(matrix_metrics, "fld_baseline_nll",
                        lambda *args, **kwargs: calls.append(kwargs["size"]) or original(*args, **kwargs))
    context = _fld_context(train, test)
    first = fld_measurement(context, generated).value
    assert fld_measurement(context, generated[::-1].copy()).value == pytest.approx(first, rel=1e-12)
    fld_measurement(context, generated[:20]).draw(np.arange(10))
    assert calls == [30, 20, 10]


def test_fld_of_a_constant_test_half_is_nan_with_one_note(synthetic):
    train, test, generated = synthetic
    context = _fld_context(train, np.ones_like(test))
    assert all(math.isnan(fld_measurement(context, generated).value) for _ in range(2))
    assert len(context.notes) == 1 and "FLD is undefined" in context.notes[0]


MATRIX_OPTIONS = dict(n=60, games=select_games(["uniform noise"]), bootstrap=None, metrics=["fld"],
                      second_classifier=None, robust_classifier=None)


@pytest.fixture(scope="module")
def noise_matrix():
    """FLD of the reference and uniform noise on the digits, 60 samples a game, the draws one test needs (20)."""
    from isgame.scoring.domains import digits_domain

    domain = digits_domain()
    return domain, robustness_matrix(domain, **MATRIX_OPTIONS)


def test_the_fld_cell_is_the_library_fld_on_the_first_held_out_half(noise_matrix):
    domain, result = noise_matrix
    assert result.metrics == ["FLD"] and result.games == [REFERENCE_GAME, "uniform noise"]
    domain = domain.in_seeded_order(0, first=60)  # the matrix's order of the held-out images
    train = domain.train_outputs[1].double().numpy()
    real = domain.real_outputs[1].double().numpy()
    first, second = held_out_halves(real.shape[0], 0)
    noise = classify_with_features(domain.classifier, GAMES["uniform noise"](domain, 60, 0, steps=None))[1]
    expected = feature_likelihood_divergence(train, real[first], noise.double().numpy(), seed=0)
    cell = result.cells["uniform noise"]["FLD"]
    assert cell.value == pytest.approx(expected.fld, rel=1e-12)
    # The reference row: the second half (270 digits, its own baseline) scored on the first half.
    reference = feature_likelihood_divergence(train, real[first], real[second], seed=0)
    assert cell.reference == pytest.approx(reference.fld, rel=1e-12)
    assert result.cells[REFERENCE_GAME]["FLD"].value == cell.reference
    assert math.isfinite(cell.stderr) and math.isfinite(cell.reference_stderr) and cell.reference_stderr > 0
    # Noise is far less likely than real digits: every one of the 20 draws says so, p = 1 / 21.
    assert cell.value > cell.reference + 10 and cell.p_value == pytest.approx(1 / 21) and cell.verdict == "detected"
    assert result.draws["FLD"] == 20 and not cell.fooled


def test_fld_is_a_feature_distance_column_chosen_in_any_spelling(noise_matrix):
    _, result = noise_matrix
    payload = result.to_dict()
    assert payload["families"]["FLD"] == "feature distance" and payload["higher_is_better"]["FLD"] is False
    assert "Jiralerspong" in payload["citations"]["FLD"]
    assert payload["scopes"]["FLD"] == ["fidelity", "diversity", "novelty"]
    assert available_metrics({}, ["Fld"]) == ["FLD"]
    order = available_metrics({})
    assert order.index("SWD") + 1 == order.index("FLD")


def test_fld_fits_to_the_training_features_beside_a_stats_file(noise_matrix, tmp_path):
    from isgame.app.scoring_commands import save_stats
    from isgame.scoring.domains import load_domain

    _, usual = noise_matrix
    save_stats("digits:train", tmp_path / "train.stats.npz", subset=50, progress=False)
    stored = robustness_matrix(load_domain("digits", real=str(tmp_path / "train.stats.npz"), allow_stats=True),
                               **MATRIX_OPTIONS)
    assert [stored.cells[g]["FLD"].value for g in stored.games] == [usual.cells[g]["FLD"].value for g in usual.games]
    assert "FLD (bandwidths fitted to the training images' features)" in stored.reference


# ---- fid-b in isgame metrics ---------------------------------------------------------------------------------------

def test_metrics_fid_b_is_fid_on_digits_b_features(cli):
    from isgame.scoring.classifiers import load_classifier
    from isgame.scoring.sources.samples import open_images

    payload = json.loads(cli("metrics", "digits:test", "noise:uniform", "--n", "80", "--seed", "2", "--metric", "fid-b",
                             "--json", "-", "--quiet").stdout)
    second = load_classifier("digits-b")
    with torch.no_grad():
        real, fake = (second.features(open_images(spec, n=80, seed=2).load_all()).double().numpy()
                      for spec in ("digits:test", "noise:uniform"))
    expected = statistics_to_fid(features_to_statistics(real), features_to_statistics(fake))
    assert payload["metrics"] == ["fid-b"] and payload["values"]["fid-b"]["classifier"] == "digits-b"
    # The command classified in batches of its own: float32 rounding, digits-b's features as the digits CNN's.
    assert payload["values"]["fid-b"]["fid"] == approx_float32(expected, error_scale=DIGITS_FID_TERMS)


def test_metrics_fid_b_without_a_second_classifier_names_the_option(cli):
    from helpers import assert_one_line_error

    assert_one_line_error(cli("metrics", "digits:test", "noise:uniform", "-c", "inception-v3", "--metric", "fid-b"),
                          "--second-classifier", "fid-b")
    assert_one_line_error(cli("metrics", "digits:test", "noise:uniform", "--second-classifier", "none", "--metric",
                              "fid-b"), "--second-classifier")


def test_games_made_of_held_out_images_leave_their_fld_cell_empty():
    """Class-sorted held-out digits contain FLD's test half: a mixture centred on its own test points would
    reward them, so the cell is NaN, neither fooled nor resisted, drawn as n/a, and a note says why."""
    import matplotlib

    matplotlib.use("Agg")
    from isgame.probes.matrix import RobustnessMatrixDisplay
    from isgame.probes.matrix.games import HELD_OUT_GAMES
    from isgame.scoring.domains import digits_domain

    assert "class-sorted order" in HELD_OUT_GAMES and REFERENCE_GAME not in HELD_OUT_GAMES
    result = robustness_matrix(digits_domain(), **{**MATRIX_OPTIONS, "metrics": ["fld", "fid"],
                                                   "games": select_games(["class-sorted order"])})
    cell = result.cells["class-sorted order"]
    assert math.isnan(cell["FLD"].value) and not cell["FLD"].fooled and math.isfinite(cell["FID"].value)
    assert math.isfinite(result.cells[REFERENCE_GAME]["FLD"].value)  # the reference row still has its halves
    assert "class-sorted order" not in result.resisted("FLD") + result.fooled_by("FLD")
    assert "FLD" not in result.unfooled_metrics()  # not fooled there, but not measured either
    assert "Not measured or undecided on: class-sorted order." in result.paragraphs()["FLD"]
    assert any(note.startswith("class-sorted order: FLD not measured") for note in result.notes)
    texts = [t.get_text() for t in RobustnessMatrixDisplay(result).plot().ax_.texts]
    assert texts.count("n/a") == 1
