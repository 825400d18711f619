"""User classifiers: TorchScript files and module:function factories with declared input and normalisation."""

from __future__ import annotations

import json

import pytest
import torch
from factories import TinyNet
from helpers import assert_one_line_error
from PIL import Image

from isgame.scoring.classifiers import load_classifier
from isgame.scoring.errors import InvalidInputError


@pytest.fixture()
def scripted(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(TinyNet().eval()), str(path))
    return path


def test_torchscript_classifier_applies_the_declared_normalisation(scripted):
    classifier = load_classifier(f"torchscript:{scripted}?size=16x16&channels=3&mean=0.5&std=0.25")
    assert classifier.num_classes == 5 and classifier.feature_dim == 12 and classifier.input_size == (16, 16)
    images = torch.rand(4, 3, 16, 16)
    expected_logits, expected_features = TinyNet().eval()((images - 0.5) / 0.25)
    logits, features = classifier.logits_and_features(images)
    torch.testing.assert_close(logits, expected_logits)
    torch.testing.assert_close(features, expected_features)
    assert classifier(torch.rand(2, 1, 40, 40)).shape == (2, 5)  # grey and larger: converted on the way in


def test_factory_classifier_scores_through_the_cli(cli):
    result = cli("score", "noise:uniform", "--n", "50", "--splits", "5", "--classifier",
                 "factories:tiny_classifier?size=16x16", "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["num_classes"] == 5 and payload["classifier"]["name"] == "factories:tiny_classifier"


@pytest.mark.parametrize("spec,fragment", [
    ("torchscript:/nowhere/model.pt", "not found"),
    ("factories:missing", "cannot load classifier factory"),
    ("factories:tiny_classifier?size=big", "expected HxW"),
    ("factories:tiny_classifier?size=16x16&colour=red", "unknown classifier option"),
])
def test_bad_user_classifiers(spec, fragment, cli):
    with pytest.raises(Exception) as info:
        load_classifier(spec)
    assert fragment in str(info.value)
    assert_one_line_error(cli("score", "noise:uniform", "--n", "20", "--splits", "1", "--classifier", spec), fragment)


def test_a_non_torchscript_file_is_refused(tmp_path):
    path = tmp_path / "fake.pt"
    path.write_bytes(b"not an archive")
    with pytest.raises(InvalidInputError, match="not a TorchScript archive"):
        load_classifier(f"torchscript:{path}?size=16x16")


def test_a_classifier_without_a_size_reads_it_from_images_of_one_size_and_says_so(shapes_specs, cli, tmp_path):
    """ShapesNet pools globally, so it runs at any size: without ?size= it must not silently run at 299 px."""
    bare, real = shapes_specs["classifier"].partition("?")[0], shapes_specs["real"]
    inferred = cli("score", real, "-c", bare, "--quiet", "--json", "-")
    assert inferred.exit_code == 0, inferred.stderr
    payload = json.loads(inferred.stdout)
    declared = json.loads(cli("score", real, "-c", shapes_specs["classifier"], "--quiet", "--json", "-").stdout)
    assert payload["provenance"]["preprocessing"]["input_size"] == [12, 12]
    assert payload["is_mean"] == declared["is_mean"]
    assert any("declares no input size: using 12x12, the size of every image of" in note for note in payload["notes"])
    assert "isgame: note: classifier torchscript:" in inferred.stderr
    # Images of several sizes, or none at all (noise is made at whatever size is asked): refused, naming ?size=.
    folder = tmp_path / "mixed"
    folder.mkdir()
    for size in (12, 16):
        Image.new("RGB", (size, size)).save(folder / f"{size}.png")
    assert_one_line_error(cli("score", folder, "-c", bare), "declares no input size", "2 sizes", "?size=HxW")
    assert_one_line_error(cli("score", "noise:uniform", "--n", "20", "-c", bare), "declares no input size",
                          "?size=HxW")
    with pytest.raises(InvalidInputError, match=r"declares no input size; declare it as .*\?size=HxW"):
        load_classifier(bare)


def test_a_domain_of_a_classifier_without_a_size_keeps_the_size_it_read(shapes_specs):
    from isgame.scoring.domains import load_domain

    bare = shapes_specs["classifier"].partition("?")[0]
    domain = load_domain(bare, train=shapes_specs["train"], real=shapes_specs["real"])
    assert domain.classifier.input_size == (12, 12) and domain.classifier_name == f"{bare}?size=12x12"
    assert domain.classifier_variant(interpolation="nearest").input_size == (12, 12)  # reloads keep it
    assert any("declares no input size: using 12x12" in note for note in domain.notes)


def test_features_that_are_the_logits_are_named_so_wherever_features_are_used(shapes_specs, cli, tmp_path):
    from factories import LogitsOnly, train_shapes_network

    path = tmp_path / "logits_only.pt"
    torch.jit.save(torch.jit.script(LogitsOnly(train_shapes_network())), str(path))
    spec = f"torchscript:{path}?size=12x12"
    assert load_classifier(spec).features_are_logits and not load_classifier(shapes_specs["classifier"]).features_are_logits
    fid = cli("fid", shapes_specs["real"], shapes_specs["train"], "-c", spec)
    assert fid.exit_code == 0, fid.stderr
    printed = " ".join(fid.stdout.split())  # rich wraps the line at the terminal's width
    assert "on 5-d torchscript:" in printed and "logits (it returns no features)" in printed
    assert "returns only logits, so its features are the 5-d logits" in fid.stderr
    metrics = cli("metrics", shapes_specs["real"], shapes_specs["train"], "-c", spec, "--metric", "fid", "--quiet",
                  "--json", tmp_path / "m.json")
    payload = json.loads((tmp_path / "m.json").read_text())
    assert payload["classifier"]["features_are_logits"] is True
    assert any("returns only logits" in note for note in payload["notes"])
    assert "logits (it returns no features)" in " ".join(metrics.stdout.split())
    with_features = cli("metrics", shapes_specs["real"], shapes_specs["train"], "-c", shapes_specs["classifier"],
                        "--metric", "fid", "--quiet")
    assert "returns only logits" not in with_features.stderr and "features" in with_features.stdout
