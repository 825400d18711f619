"""Bring your own domain: loading one, its refusals, and check / matrix / audit on domains other than digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import approx_float32, assert_one_line_error, random_inception_v3

from isgame.probes.matrix.significance import needed_draws
from isgame.scoring.domains import digits_domain, load_domain
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.sources.samples import open_images


@pytest.fixture(scope="module")
def shapes(shapes_specs):
    """The second domain: RGB 12x12 images, K = 5, a TorchScript classifier (120 train, 80 real images)."""
    return shapes_specs


def test_digits_domain_is_the_built_in_split():
    from isgame.scoring.sources.digits_data import digits_split

    domain, split = load_domain("digits"), digits_split()
    assert domain.name == "digits" and domain.image_shape == (1, 8, 8) and domain.num_classes == 10
    assert torch.equal(domain.train, split.train_images) and torch.equal(domain.real, split.test_images)
    assert torch.equal(domain.train_classes, split.train_labels)
    # Naming the built-in sources explicitly is the same domain, with its true labels.
    assert load_domain("digits", train="digits:train", real="digits:test").name == "digits"


def test_a_second_domain_has_its_own_shape_and_k(shapes):
    domain = load_domain(shapes["classifier"], train=shapes["train"], real=shapes["real"])
    assert not domain.name == "digits" and domain.image_shape == (3, 12, 12) and domain.num_classes == 5
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
    # The pixel tests compare at the samples' 3x32x32 (the training digits resized to it); the scores read each
    # set at its own size.
    assert payload["pixel_space"] == {"shape": [3, 32, 32], "shapes": {"samples": [3, 32, 32], "reference": [1, 8, 8],
                                                                      "train": [1, 8, 8]},
                                      "resized": True, "at": "the samples' stored shape"}
    assert any("compare them at the samples' stored shape 3x32x32" in note for note in payload["notes"])


def test_check_without_the_attack_reports_no_ceiling(tmp_path, cli):
    result = cli("check", "digits:test", "--claimed", "9.3", "--n", "100", "--no-attack", "--json", "-",
                 "--out", tmp_path / "out")
    payload = json.loads(result.stdout)
    assert payload["gaming_ceiling"] is None and payload["n"] == 100


@pytest.fixture(scope="module")
def shapes_audit(shapes, tmp_path_factory):
    """One end-to-end ``isgame audit`` on the second domain, shrunk with --n and --steps."""
    from typer.testing import CliRunner

    from isgame.cli import app

    out = tmp_path_factory.mktemp("shapes-audit") / "run"
    result = CliRunner().invoke(app, ["audit", "-c", shapes["classifier"], "--train", shapes["train"], "--real",
                                      shapes["real"], "--n", "40", "--steps", "5", "--out", str(out), "--quiet"])
    return out, result


@pytest.mark.slow
def test_the_audit_runs_end_to_end_on_a_second_domain(shapes_audit):
    out, result = shapes_audit
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["domain"]["image_shape"] == [3, 12, 12] and report["domain"]["num_classes"] == 5
    test = report["matrix"]["test"]
    assert report["settings"] == {"n": 40, "steps": 5, "attack": True, "fast": False,
                                  "matrix_bootstrap": test["bootstrap_draws"]}
    # The audit asks for no fixed number of draws: each column gets what its Holm family's smallest level needs.
    for metric, family in test["families"].items():
        assert test["draws"][metric] >= needed_draws(family, test["alpha"]) if family else True, metric
    assert test["bootstrap_draws"] == max(test["draws"].values())
    for name in report["figures"].values():
        assert (out / name).stat().st_size > 0, name
    # Every section ran on the domain's images: noise and attacks at 3x12x12, K = 5 throughout.
    with np.load(out / "inflated.npz", allow_pickle=False) as inflated:
        assert inflated["images"].shape == (40, 3, 12, 12)
    assert report["inflate"]["num_classes"] == 5 and report["inflate"]["steps"] <= 5
    assert report["probes"]["noise"]["max_entropy_bits"] == pytest.approx(np.log2(5))
    assert [row["name"] for row in report["probes"]["domain"]["rows"]][-1] == "digits (out of domain)"
    assert [s["source"] for s in report["scores"]][:2] == [report["domain"]["real"]["source"],
                                                          report["domain"]["train"]["source"]]
    page = (out / "report.html").read_text()
    assert "id='domain'" in page and "held-out real images" in page


@pytest.mark.slow
def test_the_matrix_reference_row_is_isgame_score_of_the_real_images(shapes_audit, shapes, cli, tmp_path):
    out, _ = shapes_audit
    matrix = json.loads((out / "report.json").read_text())["matrix"]
    reference = matrix["cells"][matrix["reference_game"]]
    # The matrix scores a seeded class-stratified draw of the real images, in its own order: store exactly
    # those, in that order, and score them with isgame score.
    rows = matrix["domain"]["real_order"]["first_rows"]
    assert len(rows) == matrix["n"] and len(set(rows)) == matrix["n"]
    stored = open_images(shapes["real"]).load_all()
    drawn = tmp_path / "drawn.npy"
    np.save(drawn, (stored[rows].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    score = json.loads(cli("score", drawn, "-c", shapes["classifier"], "--splits", matrix["splits"], "--json", "-",
                           "--quiet").stdout)
    # Another process (the audit's) classified them in batches of its own: float32 rounding.
    assert reference["IS"]["value"] == approx_float32(score["is_mean"])
    assert reference["exp(I)"]["value"] == approx_float32(score["improved_is"])


@pytest.mark.slow
def test_the_audit_without_attacks_leaves_them_out(shapes, tmp_path, cli):
    result = cli("audit", "-c", shapes["classifier"], "--train", shapes["train"], "--real", shapes["real"], "--n", "21",
                 "--no-attack", "--out", tmp_path / "run", "--quiet", "--json", "-")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inflate"] is None and report["bounded"] is None and report["headline"] is None
    assert "IS-inflated noise" not in report["matrix"]["games"] and "held-out real" in report["matrix"]["games"]
    assert "inflated noise" not in [row["name"] for row in report["probes"]["noise"]["rows"]]
    assert "attacks were not run" in (tmp_path / "run" / "report.html").read_text()


@pytest.fixture(scope="module")
def inception_files(tmp_path_factory):
    """torchvision's Inception v3 with random weights in a file, and a handful of smooth 299 px RGB images."""
    folder = tmp_path_factory.mktemp("inception")
    torch.save(random_inception_v3().state_dict(), folder / "inception.pth")
    generator = torch.Generator().manual_seed(1)
    for part, n in (("samples", 8), ("real", 14), ("train", 10)):
        coarse = torch.rand((n, 3, 8, 8), generator=generator)
        images = torch.nn.functional.interpolate(coarse, size=(299, 299), mode="bilinear", align_corners=False)
        np.save(folder / f"{part}.npy", (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8))
    return folder


@pytest.mark.slow
def test_inception_v3_runs_check_and_the_matrix_on_299px_images(inception_files, cli):
    folder = inception_files
    common = ["-c", "inception-v3", "--weights", folder / "inception.pth", "--real", folder / "real.npy"]
    checked = cli("check", folder / "samples.npy", "--claimed", "1.5", "--claimed-splits", "2", *common, "--train", folder / "train.npy",
                  "--no-attack", "--out", folder / "check", "--json", folder / "check.json")
    assert checked.exit_code in (0, 3, 4, 5), checked.stderr
    payload = json.loads((folder / "check.json").read_text())
    assert payload["num_classes"] == 1000 and payload["n"] == 8 and payload["gaming_ceiling"] is None
    assert payload["memorization"] is not None and payload["images_vs_noise"]["reference_size"] == 14
    # A game of each kind (pools, gradients, pixels): every game is played on the digits and the shapes domain.
    games = ["mode dropping (1 class)", "truncation (ψ = 0.5)", "resampling (features)", "IS-inflated noise",
             "FID feature attack"]
    matrix = cli("matrix", *common, "--train", folder / "train.npy", "--n", "7", "--steps", "1", "--quiet",
                 "--bootstrap", "2", *[a for g in games for a in ("--game", g)], "--out", folder / "matrix",
                 "--json", "-")
    assert matrix.exit_code == 0, matrix.stderr
    result = json.loads(matrix.stdout)
    assert result["n"] == 7 and result["domain"]["image_shape"] == [3, 299, 299] and len(result["metrics"]) == 17  # no second or robust classifier here
    # The random network's batch norms are set on images, so the real images fall in several classes and every
    # game is played (a game the domain cannot support is left out with a note: tests/test_domain_games.py).
    assert result["games"][0] == "held-out real" and sorted(result["games"][1:]) == sorted(games)
    assert not any("not played" in note for note in result["notes"])
    assert all(np.isfinite(result["cells"][game]["FID"]["value"]) for game in result["games"])


def test_a_first_n_that_leaves_out_class_subfolders_says_so(shapes_folders, cli, tmp_path):
    """--n keeps the first N files by design (a claim's protocol, a score of the first N); in a class-per-subfolder
    folder the first 60 of 150 are classes 0 and 1 only, and a note says so (in the JSON too)."""
    real = shapes_folders["real"]
    score = cli("score", real, "-c", shapes_folders["classifier"], "--n", "60", "--quiet", "--json", "-")
    assert score.exit_code == 0, score.stderr
    expected = (f"{real}: --n 60 keeps the first 60 of its 150 images in sorted order, and they come from 2 of its 5 "
                "subfolders (class0, class1): with a subfolder per class, whole classes are left out")
    assert f"isgame: note: {expected}" in score.stderr
    assert any(note.startswith(f"{real}: n=60 keeps the first 60") for note in json.loads(score.stdout)["notes"])
    check = cli("check", real, "-c", shapes_folders["classifier"], "--claimed", "4", "--claimed-n", "90",
                "--no-attack", "--out", tmp_path / "check", "--json", "-")
    assert check.exit_code in (0, 3, 4, 5), check.stderr
    assert any("claimed_n=90 keeps the first 90 of its 150 images" in note and "3 of its 5 subfolders" in note
               for note in json.loads(check.stdout)["notes"])
    flat = cli("score", shapes_folders["real"] + "/class0", "-c", shapes_folders["classifier"], "--n", "10", "--quiet")
    assert "subfolders" not in flat.stderr  # one folder of one class: nothing left out by the order


def test_the_matrix_reference_at_n_below_the_real_set_holds_every_class(shapes_folders, cli, tmp_path):
    """The issue's case: --n 60 of 150 real images stored a class per subfolder. The held-out real game must be a
    draw over the whole set: every class present, so exp(I) near K = 5, not the 2 classes of the first 60 files."""
    result = cli("matrix", "-c", shapes_folders["classifier"], "--real", shapes_folders["real"], "--train",
                 shapes_folders["train"], "--n", "60", "--bootstrap", "2", "--metric", "exp(I)", "--metric", "FID",
                 "--game", "uniform noise", "--quiet", "--out", tmp_path / "matrix", "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.stderr
    assert "clustered order" in result.stderr and "seeded random order" in result.stderr  # said, not only in JSON
    cells = json.loads((tmp_path / "m.json").read_text())["cells"]["held-out real"]
    assert cells["exp(I)"]["value"] > 0.8 * shapes_folders["classes"]
