"""The robustness matrix's games and the matrix itself on a domain other than the digits (the shapes domain:
RGB 12x12, K = 5, a TorchScript classifier, no true labels), the refusals, and the digits defaults."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import approx_float32, reference_scores

from isgame.probes import matrix as matrix_module
from isgame.probes.matrix import MATRIX_SAMPLES, robustness_matrix
from isgame.probes.matrix import games as games_module
from isgame.probes.matrix.games import (
    ATTACK_GAMES,
    GAMES,
    HELD_OUT_GAMES,
    REFERENCE_GAME,
    attack_classifier,
    mode_collapse,
)
from isgame.probes.matrix.measurements import Measurement
from isgame.scoring.domains import digits_domain, load_domain
from isgame.scoring.errors import InvalidInputError

SHAPE = (3, 12, 12)


@pytest.fixture(scope="session")
def shapes(shapes_specs):
    return load_domain(shapes_specs["classifier"], train=shapes_specs["train"], real=shapes_specs["real"])


def test_every_game_gives_float32_images_of_the_domain_shape(shapes):
    assert set(ATTACK_GAMES) <= set(GAMES) and REFERENCE_GAME in GAMES
    for name, play in GAMES.items():
        images = play(shapes, 20, 0, steps=2)
        assert images.dtype == torch.float32 and images.shape == (20, *SHAPE), name
        assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0, name
    assert torch.equal(GAMES[REFERENCE_GAME](shapes, 20, 0), shapes.real[:20])


@pytest.mark.slow
def test_matrix_on_the_shapes_domain(shapes):
    n = 40
    result = robustness_matrix(shapes, n=n, seed=0, steps=2)
    payload = result.to_dict()
    assert payload["n"] == n and payload["steps"] == 2 and payload["splits"] == 10 and payload["kid_subset_size"] == n
    assert payload["domain"]["name"] == "custom" and payload["domain"]["image_shape"] == list(SHAPE)
    assert "held-out real images" in payload["fid_sample_size_caveat"]["note"]
    assert payload["fid_sample_size_caveat"]["sizes"] == [25, 50, 80]  # the 80 real images end the curve
    for game in result.games:
        for metric in result.metrics:
            value = result.cells[game][metric].value
            # C_T may be undefined at small n (no k-means cell with more than 20 samples), and FLD is not measured on
            # the games made of held-out images; a note names the game either way. FLD of exact training copies is
            # +inf (their mixture collapses).
            empty_allowed = metric == "C_T" or (metric == "FLD" and game in HELD_OUT_GAMES)
            copies = metric == "FLD" and game in ("training replay", "mode collapse") and value == math.inf
            assert math.isfinite(value) or copies or (
                empty_allowed and any(note.startswith(f"{game}:") for note in result.notes)), (game, metric, value)
    with torch.no_grad():  # the matrix scores the real images in its seeded order
        logits = shapes.classifier(shapes.in_seeded_order(0, first=n).real[:n]).double().numpy()
    expected = reference_scores(logits, 10)
    # The matrix classified the images in batches of its own: float32 rounding.
    assert result.cells[REFERENCE_GAME]["IS"].value == approx_float32(expected["is_mean"])
    assert result.cells[REFERENCE_GAME]["exp(I)"].value == approx_float32(math.exp(expected["mi_nats"]))
    assert not result.cells["uniform noise"]["precision"].fooled  # noise is off the real manifold
    # Noise falls in one k-means cell, so its C_T is defined even at this n: far above 0 (underfitting).
    assert result.cells["uniform noise"]["C_T"].value > 3 and not result.cells["uniform noise"]["C_T"].fooled
    assert all("is undefined (NaN)" in note or "FLD not measured" in note for note in result.notes)


def test_mode_collapse_without_labels_cycles_over_the_predicted_classes_present(shapes):
    assert shapes.train_labels is None
    with torch.no_grad():
        predicted = shapes.classifier(shapes.train).argmax(dim=1)
    assert torch.equal(shapes.train_classes, predicted)
    # Keep only the training images predicted as classes 1 and 3 (and 4): the others are absent, not empty slots.
    kept = (predicted == 1) | (predicted == 3) | (predicted == 4)
    partial = replace(shapes, train=shapes.train[kept])
    images = mode_collapse(partial, 7, 0)
    firsts = {c: partial.train[(partial.train_classes == c).nonzero()[0, 0]] for c in (1, 3, 4)}
    for i, c in enumerate([1, 3, 4, 1, 3, 4, 1]):
        assert torch.equal(images[i], firsts[c])
    assert len(torch.unique(images.reshape(7, -1), dim=0)) == len(torch.unique(partial.train_classes)) == 3


def test_too_few_real_images_are_refused_in_one_line(shapes):
    with pytest.raises(InvalidInputError) as error:
        robustness_matrix(replace(shapes, real=shapes.real[:6]), steps=2)
    message = error.value.render()
    assert "\n" not in message and "real images" in message and "gives 6" in message
    with pytest.raises(InvalidInputError) as error:
        robustness_matrix(shapes, n=81, steps=2)  # more than the 80 real images
    assert "in 7..80" in error.value.render() and "got 81" in error.value.render()
    with pytest.raises(InvalidInputError, match="steps"):
        GAMES["IS-inflated noise"](shapes, 4, 0, steps=0)


def test_a_game_the_domain_cannot_support_is_left_out_with_a_note(shapes, monkeypatch):
    """Mode dropping needs real images of two predicted classes; on images all of one class it is not played."""
    with torch.no_grad():
        predicted = shapes.classifier(shapes.real).argmax(dim=1)
    one_class = shapes.real[predicted == predicted.mode().values].repeat(10, 1, 1, 1)[:20]
    monkeypatch.setattr(matrix_module, "measure_game", lambda context, game, metrics: {m: Measurement(0.0, stderr=0.0)
                                                                                         for m in metrics})
    games = {name: GAMES[name] for name in (REFERENCE_GAME, "mode dropping (1 class)", "mode dropping (K/2 classes)")}
    result = robustness_matrix(replace(shapes, real=one_class), n=10, steps=1, games=games)
    assert result.games == [REFERENCE_GAME]
    assert [note.split(" (")[0] for note in result.notes if "not played" in note] == ["mode dropping", "mode dropping"]
    assert all("at least 2 predicted classes" in note for note in result.notes if "not played" in note)


def test_attack_games_step_on_the_domain_images_when_the_classifier_reads_another_size(shapes_specs, tmp_path):
    """Images of 24x24 with a classifier of 12x12 input: the attacks step through the resize and keep 24x24."""
    for part in ("train", "real"):
        array = np.load(shapes_specs[part])
        np.save(tmp_path / f"{part}.npy", array.repeat(2, axis=1).repeat(2, axis=2))
    large = load_domain(shapes_specs["classifier"], train=str(tmp_path / "train.npy"), real=str(tmp_path / "real.npy"))
    assert large.image_shape == (3, 24, 24) and attack_classifier(large) is not large.classifier
    for name in ATTACK_GAMES:
        images = GAMES[name](large, 6, 0, steps=1)
        assert images.shape == (6, 3, 24, 24) and float(images.min()) >= 0 and float(images.max()) <= 1, name


@pytest.mark.slow
def test_digits_matrix_defaults_and_the_steps_budget(digits_classifier, monkeypatch):
    digits = digits_domain(classifier=digits_classifier)
    for name in ATTACK_GAMES:
        one, two = GAMES[name](digits, 10, 0, steps=1), GAMES[name](digits, 10, 0, steps=2)
        assert not torch.equal(one, two), name  # the budget reaches the attack
    seen = {}

    def reference(domain, n, seed, *, steps=None):
        seen.update(n=n, steps=steps)
        return domain.real[:n].clone()

    # The matrix's plumbing alone: every metric but C_T stubbed (tested on the shapes domain above).
    def cheap(context, game, metrics):
        return {m: Measurement(0.0, stderr=0.0) for m in metrics}

    monkeypatch.setattr(matrix_module, "measure_game", cheap)
    result = robustness_matrix(digits_classifier, games={REFERENCE_GAME: reference}, steps=3)
    assert seen == {"n": MATRIX_SAMPLES, "steps": 3} and result.n == 540 == MATRIX_SAMPLES
    payload = result.to_dict()
    assert payload["fid_sample_size_caveat"]["sizes"] == [25, 50, 100, 200, 400, 540]
    assert "held-out digits" in payload["fid_sample_size_caveat"]["note"]
    assert payload["steps"] == 3 and payload["domain"]["name"] == "digits" and payload["kid_subset_size"] == 200
    assert games_module.INFLATE_STEPS == 30 and games_module.FEATURE_ATTACK_STEPS == 60


def test_kde_of_large_images_runs_in_float32_chunks_with_the_same_samples(shapes, monkeypatch):
    """The float32 path (for training matrices over 5e7 values) gives the float64 path's samples to float32 precision."""
    from isgame.probes import generators

    exact = generators.KdeGenerator(shapes.train, seed=0)
    monkeypatch.setattr(generators, "KDE_FLOAT32_ABOVE", 0)
    monkeypatch.setattr(generators, "KDE_CHUNK_VALUES", 5 * math.prod(SHAPE))  # 5 rows a chunk
    light = generators.KdeGenerator(shapes.train, seed=0)
    assert exact.dtype == np.float64 and light.dtype == np.float32 and light.pca.components_.dtype == np.float32
    a, b = exact.sample(12, bandwidth=0.4, seed=1), light.sample(12, bandwidth=0.4, seed=1)
    assert b.dtype == torch.float32 and b.shape == (12, *SHAPE)
    assert torch.allclose(a, b, atol=1e-3) and not torch.equal(a, b)
