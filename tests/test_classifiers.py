"""The embedded digits classifiers: shipped weights, accuracy, interface, preprocessing."""

from __future__ import annotations

import pickle

import pytest
import torch

from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.digits import held_out_accuracy, train_digits_cnn
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.pipeline import classify
from isgame.scoring.sources.digits_data import digits_split


def test_writing_into_the_split_changes_only_the_caller_s_copy():
    first = digits_split()
    reference = first.test_images.clone()
    first.test_images[:8] = 0
    first.train_labels[:] = 0
    again = digits_split()
    assert torch.equal(again.test_images, reference)
    assert again.train_labels.max() == 9


def test_split_is_fixed_stratified_and_at_least_a_quarter_held_out():
    split = digits_split()
    n_train, n_test = split.train_images.shape[0], split.test_images.shape[0]
    assert n_train + n_test == 1797
    assert n_test / 1797 >= 0.25
    assert split.train_images.shape[1:] == (1, 8, 8)
    assert 0.0 <= float(split.train_images.min()) and float(split.train_images.max()) <= 1.0
    assert torch.bincount(split.test_labels).min() >= 50  # every class is held out


@pytest.mark.parametrize("name", ["digits", "digits-b"])
def test_shipped_weights_load_and_reach_97_percent(name):
    classifier = load_classifier(name)
    split = digits_split()
    predicted = classify(classifier, split.test_images).argmax(dim=1)
    accuracy = float((predicted == split.test_labels).float().mean())
    assert accuracy >= 0.97
    assert held_out_accuracy(classifier.network) == pytest.approx(accuracy)


def test_the_two_classifiers_are_independent():
    a, b = load_classifier("digits"), load_classifier("digits-b")
    assert a.weights_sha256 != b.weights_sha256
    assert not torch.equal(a.network.conv1.weight, b.network.conv1.weight)


def test_retraining_is_deterministic_on_one_machine():
    first, second = train_digits_cnn(0, epochs=2), train_digits_cnn(0, epochs=2)
    for key, value in first.network.state_dict().items():
        assert torch.equal(value, second.network.state_dict()[key]), key
    other = train_digits_cnn(1, epochs=2)
    assert not torch.equal(first.network.conv1.weight, other.network.conv1.weight)


@pytest.mark.slow
def test_retraining_from_the_seed_reproduces_the_shipped_classifier():
    """Bit for bit only on the CPU that made the weights (float kernels differ between CPUs); everywhere,
    the retrained network must make the shipped network's predictions."""
    result = train_digits_cnn(0)
    shipped = load_classifier("digits")
    split = digits_split()
    with torch.no_grad():
        retrained = result.network(split.test_images)[0].argmax(dim=1)
    agreement = float((retrained == classify(shipped, split.test_images).argmax(dim=1)).float().mean())
    assert agreement >= 0.99
    assert abs(result.held_out_accuracy - held_out_accuracy(shipped.network)) <= 0.005


def test_interface_shapes_and_eval_lock(digits_classifier):
    images = digits_split().test_images[:7]
    logits, features = digits_classifier.logits_and_features(images)
    assert logits.shape == (7, digits_classifier.num_classes) == (7, 10)
    assert features.shape == (7, digits_classifier.feature_dim)
    assert torch.equal(digits_classifier.features(images), features)
    digits_classifier.train(True)
    assert not digits_classifier.training and not digits_classifier.network.training


def test_grey_rgb_and_opaque_rgba_give_the_same_logits(digits_classifier):
    grey = digits_split().test_images[:20]
    rgb = grey.expand(-1, 3, -1, -1)
    rgba = torch.cat([rgb, torch.ones_like(grey)], dim=1)
    reference = digits_classifier(grey)
    torch.testing.assert_close(digits_classifier(rgb), reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(digits_classifier(rgba), reference, rtol=1e-5, atol=1e-5)


def test_larger_images_are_resized_on_the_way_in(digits_classifier):
    split = digits_split()
    big = torch.nn.functional.interpolate(split.test_images, scale_factor=4, mode="nearest")
    assert big.shape[-2:] == (32, 32)
    accuracy = float((classify(digits_classifier, big).argmax(1) == split.test_labels).float().mean())
    assert accuracy >= 0.95


def test_preprocessing_options_take_effect():
    big = torch.nn.functional.interpolate(digits_split().test_images[:50], scale_factor=3, mode="bilinear")
    outputs = {
        (mode, aa): classify(load_classifier("digits", interpolation=mode, antialias=aa), big)
        for mode, aa in [("nearest", False), ("bilinear", True), ("bilinear", False), ("bicubic", True)]
    }
    values = list(outputs.values())
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert not torch.allclose(values[i], values[j])


def test_float64_option_takes_effect(digits_classifier):
    classifier64 = load_classifier("digits").to(torch.float64)
    images = digits_split().test_images[:10]
    logits64 = classifier64(images)
    assert logits64.dtype == torch.float64
    torch.testing.assert_close(logits64.float(), digits_classifier(images), rtol=1e-4, atol=1e-4)


def test_bad_images_and_pickled_weights_are_refused(tmp_path, digits_classifier):
    with pytest.raises(InvalidInputError, match=r"values in \[.*expected \[0, 1\]"):
        digits_classifier(torch.full((2, 1, 8, 8), 2.0))
    with pytest.raises(InvalidInputError, match="1, 3 or 4 channels"):
        digits_classifier(torch.zeros(2, 2, 8, 8))
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    weights = tmp_path / "evil.safetensors"
    weights.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(InvalidInputError, match="not a valid safetensors file"):
        load_classifier("digits", weights=weights)
    assert not marker.exists()
    with pytest.raises(InvalidInputError, match="unknown classifier"):
        load_classifier("resnet")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("command", [["score", "digits:test"], ["attack", "inflate", "--n", "20"], ["audit"]])
def test_cuda_without_cuda_is_one_line_before_any_work(cli, tmp_path, command):
    from helpers import assert_one_line_error

    out = tmp_path / "o"
    result = cli(*command, "--device", "cuda", *(["--out", out] if command[0] != "score" else []))
    assert_one_line_error(result, "CUDA is not available")
    assert not out.exists()  # refused before any folder or file was made


def test_auto_device_is_this_machines_and_is_reported(cli):
    import json

    from isgame.scoring.classifiers import load_classifier, set_default_device
    from isgame.scoring.classifiers.base import resolve_device

    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(resolve_device("auto")) == expected
    auto = json.loads(cli("score", "digits:test", "--device", "auto", "--quiet", "--json", "-").stdout)
    cpu = json.loads(cli("score", "digits:test", "--device", "cpu", "--quiet", "--json", "-").stdout)
    assert auto["classifier"]["device"] == expected and cpu["classifier"]["device"] == "cpu"
    if expected == "cpu":
        assert auto["is_mean"] == cpu["is_mean"]
    try:
        assert load_classifier("digits").device == torch.device("cpu")
        set_default_device("cpu")
        assert load_classifier("digits", device="auto").device == torch.device(expected)
    finally:
        set_default_device("cpu")


def test_foolbox_cannot_move_the_classifier(digits_classifier):
    """foolbox's PyTorchModel calls .to(its device) on the model; the wrapper exposes no parameters to move."""
    from isgame.scoring.classifiers.base import ModelInputLogits

    wrapper = ModelInputLogits(digits_classifier)
    assert list(wrapper.parameters()) == [] and list(wrapper.children()) == []
    images = digits_classifier.preprocess(torch.rand(3, 1, 8, 8))
    assert torch.equal(wrapper(images), digits_classifier.logits_from_model_input(images))


def _textbook_forward(network, x):
    """DigitsCNN as its docstring states it: ReLU before max-pooling."""
    x = torch.relu(network.conv2(torch.relu(network.conv1(x))))
    features = torch.relu(network.fc1(torch.nn.functional.max_pool2d(x, 2).flatten(1)))
    return network.fc2(features), features


def test_pooling_before_the_relu_gives_the_same_values_and_gradients():
    """The network pools before its second ReLU (a quarter of the elements); values and input gradients must be
    those of ReLU-then-pool exactly, blank pixels (tied windows) included, in float64 and float32."""
    from isgame.scoring.classifiers.digits import DigitsCNN

    torch.manual_seed(0)
    for dtype in (torch.float64, torch.float32):
        network = DigitsCNN().to(dtype)
        images = digits_split().test_images[:64].to(dtype)
        images[:8] = 0  # all-blank images: every pooling window of the bias alone is tied
        targets = torch.arange(64) % 10
        pair = []
        for forward in (network, lambda x: _textbook_forward(network, x)):
            x = images.clone().requires_grad_(True)
            logits, features = forward(x)
            loss = torch.nn.functional.cross_entropy(logits, targets) + features.sum()
            pair.append((logits.detach(), features.detach(), torch.autograd.grad(loss, x)[0]))
        for ours, textbook in zip(*pair):
            assert torch.equal(ours, textbook)


def test_the_classifier_runs_nhwc_with_the_network_s_numbers():
    """The classifier converts its network to channels_last (oneDNN's fast layout): its logits must match the
    NCHW network's within float round-off and make the same predictions; identical images stay identical."""
    from isgame.scoring.classifiers.digits import load_digits_network, shipped_weights_path

    classifier = load_classifier("digits")
    assert classifier.network.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    plain, _ = load_digits_network(shipped_weights_path("digits"))
    assert plain.conv2.weight.is_contiguous()
    images = digits_split().test_images
    with torch.no_grad():
        reference = plain(images)[0]
        logits = classifier.logits_and_features(images)[0]
        repeated = classifier.logits_and_features(images[:10][torch.arange(100) % 10])[0]
    assert torch.allclose(logits, reference, rtol=1e-5, atol=1e-5)
    assert torch.equal(logits.argmax(dim=1), reference.argmax(dim=1))
    assert torch.equal(repeated, repeated[:10].repeat(10, 1))
