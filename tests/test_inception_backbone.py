"""torchvision Inception v3 through the real loading path, with random weights saved to a temporary file."""

from __future__ import annotations

import pickle

import pytest
import torch
from torchvision.models import inception_v3

from scoring.classifiers import load_classifier
from scoring.classifiers.inception import default_inception_weights_path
from scoring.errors import InvalidInputError, SourceNotFoundError
from tests.conftest import assert_one_line_error


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    torch.manual_seed(0)
    network = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True).eval()
    path = tmp_path_factory.mktemp("weights") / "inception.pth"
    torch.save(network.state_dict(), path)
    return network, path


def test_loads_from_a_file_and_matches_torchvision(random_inception):
    network, path = random_inception
    classifier = load_classifier("inception-v3", weights=path)
    images = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    logits, features = classifier.logits_and_features(images)
    assert logits.shape == (2, 1000) and features.shape == (2, 2048)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = network((images - mean) / std)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    classifier.train(True)
    assert not classifier.training and not classifier.network.training


def test_small_grey_images_are_converted(random_inception):
    _, path = random_inception
    classifier = load_classifier("inception-v3", weights=path)
    grey = torch.rand(2, 1, 8, 8)
    assert classifier(grey).shape == (2, 1000)
    torch.testing.assert_close(classifier(grey), classifier(grey.expand(-1, 3, -1, -1)))


def test_missing_weights_name_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(SourceNotFoundError) as info:
        load_classifier("inception-v3")
    assert str(default_inception_weights_path()) in str(info.value)
    assert "inception_v3_google-0cc3c7bd.pth" in str(info.value) and "never downloads" in str(info.value)


def test_pickled_weights_are_refused_without_running_them(tmp_path, cli):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"fc.weight": Payload()}))
    with pytest.raises(InvalidInputError, match="weights_only=True"):
        load_classifier("inception-v3", weights=path)
    assert_one_line_error(cli("score", "noise:uniform", "--n", "2", "--splits", "1", "--classifier", "inception-v3",
                              "--weights", path), "weights_only=True")
    assert not marker.exists()
    wrong = tmp_path / "wrong.pth"
    torch.save({"x": torch.zeros(1)}, wrong)
    with pytest.raises(InvalidInputError, match="does not hold torchvision Inception v3 weights"):
        load_classifier("inception-v3", weights=wrong)
