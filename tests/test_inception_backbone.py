"""torchvision Inception v3 through the real loading path, with random weights saved to a temporary file."""

from __future__ import annotations

import pickle

import pytest
import torch
from helpers import assert_one_line_error, random_inception_v3, random_tf_inception

from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.inception import default_inception_weights_path
from isgame.scoring.errors import InvalidInputError, SourceNotFoundError


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    network = random_inception_v3()
    path = tmp_path_factory.mktemp("weights") / "inception.pth"
    torch.save(network.state_dict(), path)
    return network, path


@pytest.mark.slow
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
    # The classifier runs channels-last (faster on the CPU); the reference, the default layout.
    assert classifier.network.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert float((logits - expected).abs().max() / expected.abs().max()) < 1e-5
    # The comparison sees the input: the two images' logits differ by far more than the tolerance.
    assert float((expected[0] - expected[1]).abs().max() / expected.abs().max()) > 1e-2
    classifier.train(True)
    assert not classifier.training and not classifier.network.training


@pytest.mark.slow
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


@pytest.fixture(scope="module")
def random_tf_inception_file(tmp_path_factory):
    """torch-fidelity's network with random weights set on images, saved as the plain state dict a user would pass."""
    path = tmp_path_factory.mktemp("tf") / "weights-inception.pth"
    torch.save(random_tf_inception().state_dict(), path)
    return path


@pytest.mark.slow
def test_tf_inception_matches_torch_fidelity_on_uint8_input(random_tf_inception_file):
    from torch_fidelity import feature_extractor_inceptionv3 as fidelity  # the [test] extra, imported when needed

    classifier = load_classifier("inception-v3-tf", weights=random_tf_inception_file)
    reference = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"],
                                                     feature_extractor_weights_path=str(random_tf_inception_file))
    pixels = torch.randint(0, 256, (2, 3, 40, 40), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    ours = classifier(pixels.float() / 255)
    (expected,) = reference(pixels)
    assert ours.shape == (2, 1008)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    assert float((expected[0] - expected[1]).abs().max()) > 0.1  # the input shows in the logits, at unit scale


@pytest.mark.slow
def test_tf_inception_lets_gradients_flow(random_tf_inception_file):
    classifier = load_classifier("inception-v3-tf", weights=random_tf_inception_file)
    images = torch.rand(1, 3, 32, 32, requires_grad=True)
    classifier(images)[0, 3].backward()
    assert images.grad is not None and float(images.grad.abs().sum()) > 0


def test_tf_inception_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(SourceNotFoundError, match="weights-inception-2015-12-05-6726825d.pth"):
        load_classifier("inception-v3-tf")
