"""User classifiers: TorchScript files and module:function factories with declared input and normalisation."""

from __future__ import annotations

import json

import pytest
import torch
from factories import TinyNet
from helpers import assert_one_line_error

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
