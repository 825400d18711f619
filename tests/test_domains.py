"""Bring your own domain: loading one, its refusals, and check / matrix / audit on domains other than digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from factories import write_shapes_domain
from helpers import assert_one_line_error, reference_scores
from isgame.scoring.domains import digits_domain, load_domain
from isgame.scoring.errors import InvalidInputError


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The second domain: RGB 12x12 images, K = 5, a TorchScript classifier (120 train, 80 real images)."""
    return write_shapes_domain(tmp_path_factory.mktemp("shapes"))


def test_digits_domain_is_the_built_in_split():
    from isgame.scoring.digits_data import digits_split

    domain, split = load_domain("digits"), digits_split()
    assert domain.is_digits and domain.image_shape == (1, 8, 8) and domain.num_classes == 10
    assert torch.equal(domain.train, split.train_images) and torch.equal(domain.real, split.test_images)
    assert torch.equal(domain.train_classes, split.train_labels)
    # Naming the built-in sources explicitly is the same domain, with its true labels.
    assert load_domain("digits", train="digits:train", real="digits:test").is_digits


def test_a_second_domain_has_its_own_shape_and_k(shapes):
    domain = load_domain(shapes["classifier"], train=shapes["train"], real=shapes["real"])
    assert not domain.is_digits and domain.image_shape == (3, 12, 12) and domain.num_classes == 5
    assert domain.train.shape[0] == 120 and domain.real.shape[0] == 80
    # No labels in a .npy: the games use the classifier's top-1, which on this easy domain is the true class.
    assert torch.equal(domain.train_classes, shapes["train_labels"])


def test_a_classifier_without_images_is_refused_in_one_line(shapes, cli):
    with pytest.raises(InvalidInputError, match="train.*real"):
        load_domain(shapes["classifier"])
    assert_one_line_error(cli("matrix", "-c", shapes["classifier"]), "--train", "--real", "no built-in domain")
    assert_one_line_error(cli("audit", "-c", "inception-v3", "--real", shapes["real"]), "--train")


def test_class_names_must_match_k(shapes, tmp_path, cli):
    names = tmp_path / "names.txt"
    names.write_text("red\ngreen\nblue\nyellow\nmagenta\n")
    domain = load_domain(shapes["classifier"], train=shapes["train"], real=shapes["real"], class_names=str(names))
    assert domain.class_names == ("red", "green", "blue", "yellow", "magenta")
    assert_one_line_error(cli("matrix", "-c", shapes["classifier"], "--train", shapes["train"], "--real", shapes["real"],
                              "--class-names", "a,b,c"), "--class-names", "3 names", "K = 5")


def test_a_large_source_is_a_seeded_subsample_with_a_note(shapes):
    first = load_domain(shapes["classifier"], train=shapes["train"], real=shapes["real"], max_real=30, seed=4)
    again = load_domain(shapes["classifier"], train=shapes["train"], real=shapes["real"], max_real=30, seed=4)
    assert first.real.shape[0] == 30 and first.real_available == 80 and torch.equal(first.real, again.real)
    everything = load_domain(shapes["classifier"], train=shapes["train"], real=shapes["real"]).real
    # Not the first 30 rows (a folder sorted by class would give few classes), but 30 distinct rows of the source.
    assert not torch.equal(first.real, everything[:30])
    rows = {tuple(row.flatten().tolist()) for row in everything}
    assert all(tuple(row.flatten().tolist()) in rows for row in first.real)
    assert any("seeded subsample of 30" in note and "max_real" in note for note in first.notes)


def test_train_and_real_of_different_sizes_are_resized_to_the_input_with_a_note(shapes, tmp_path):
    bigger = torch.nn.functional.interpolate(
        torch.from_numpy(np.load(shapes["train"])).permute(0, 3, 1, 2).float() / 255, size=(20, 20), mode="bilinear")
    np.save(tmp_path / "train20.npy", (bigger.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    domain = load_domain(shapes["classifier"], train=str(tmp_path / "train20.npy"), real=shapes["real"])
    assert domain.image_shape == (3, 12, 12) and domain.train.shape[1:] == (3, 12, 12)
    assert any("both resized to the classifier's input 3x12x12" in note for note in domain.notes)


def test_a_module_that_fails_on_its_declared_input_is_one_line(cli):
    # factories:tiny_classifier takes 3x16x16; declaring 12x12 must be refused at load, naming the fix.
    assert_one_line_error(cli("score", "digits:test", "-c", "factories:tiny_classifier?size=12x12"), "?size=HxW")


def test_check_resizes_training_digits_to_rgb_samples_and_says_so(tmp_path, cli):
    """The issue's failure: check --train digits:train on 32x32 RGB samples said "train has D = 64 but ... 3072"."""
    samples = torch.nn.functional.interpolate(digits_domain().real[:60].expand(-1, 3, -1, -1), size=(32, 32),
                                              mode="bilinear")
    np.save(tmp_path / "rgb32.npy", (samples.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    result = cli("check", tmp_path / "rgb32.npy", "--claimed", "9", "--train", "digits:train", "--steps", "2",
                 "--out", tmp_path / "out", "--json", tmp_path / "check.json")
    assert result.exit_code in (0, 3, 4, 5), result.stderr
    payload = json.loads((tmp_path / "check.json").read_text())
    assert payload["memorization"] is not None and payload["gaming_ceiling"]["steps"] <= 2
    assert any("all resized to the classifier's input 1x8x8" in note for note in payload["notes"])


def test_check_without_the_attack_reports_no_ceiling(tmp_path, cli):
    result = cli("check", "digits:test", "--claimed", "9.3", "--n", "100", "--no-attack", "--json", "-",
                 "--out", tmp_path / "out")
    payload = json.loads(result.stdout)
    assert payload["gaming_ceiling"] is None and payload["n"] == 100
