"""Batch norms folded into Inception's convolutions compute the same function as the unfolded network."""

from __future__ import annotations

import copy

import pytest
import torch
from torchvision.models import inception_v3

from isgame.scoring.classifiers.batch_norm_calibration import calibrate_batch_norms
from isgame.scoring.classifiers.batch_norm_folding import fold_batch_norms


@pytest.fixture(scope="module")
def inception_with_trained_looking_norms():
    """torchvision's Inception v3 whose every batch norm has non-trivial statistics and affine terms (seeded):
    with the default (0, 1, 1, 0) the fold would be nearly the identity and prove little, and the network's output
    would hardly depend on its input. The statistics are set on images first (so the output does depend on it),
    then each is perturbed, with the affine terms, so that no block is an exact standardisation."""
    torch.manual_seed(0)
    network = inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
    calibrate_batch_norms(network, torch.rand(4, 3, 96, 96, generator=torch.Generator().manual_seed(5)))
    generator = torch.Generator().manual_seed(1)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.add_(torch.randn(size, generator=generator) * 0.1 * module.running_var.sqrt())
            module.running_var.mul_(torch.rand(size, generator=generator) * 0.2 + 0.9)
            module.weight.data.copy_(torch.rand(size, generator=generator) * 0.2 + 0.9)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)
    images = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = network(images)
    assert float((logits[0] - logits[1]).abs().max() / logits.abs().max()) > 1e-2  # the input shows in the output
    return network


@pytest.mark.slow
def test_folding_every_basic_conv_keeps_the_function_in_float64(inception_with_trained_looking_norms):
    reference = copy.deepcopy(inception_with_trained_looking_norms).double()
    folded = copy.deepcopy(reference)
    count = fold_batch_norms(folded)
    norms_left = [m for m in folded.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert count == 94 and not norms_left  # Inception v3 without its auxiliary head: 94 BasicConv2d blocks
    images = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        expected, got = reference(images), folded(images)
    # The fold is exact algebra: folded and run in float64, only rounding separates the two.
    assert float((got - expected).abs().max() / expected.abs().max()) < 1e-10


@pytest.mark.slow
def test_folded_float32_logits_are_as_close_to_float64_as_the_unfolded_ones(inception_with_trained_looking_norms):
    """Folding costs no accuracy beyond float32's own: on this network float32 itself ends ~1e-5 (relative to the
    largest logit) from the float64 logits, folded or not, so the fold is judged against that, not a fixed bound."""
    reference = inception_with_trained_looking_norms
    folded = copy.deepcopy(reference)
    fold_batch_norms(folded)
    images = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        exact = copy.deepcopy(reference).double()(images.double())
        unfolded_error, folded_error = (float((out.double() - exact).abs().max() / exact.abs().max())
                                        for out in (reference(images), folded(images)))
    assert unfolded_error < 1e-4
    assert folded_error < 2 * unfolded_error


@pytest.mark.slow
def test_input_gradients_match_after_folding(inception_with_trained_looking_norms):
    reference = copy.deepcopy(inception_with_trained_looking_norms).double()
    folded = copy.deepcopy(reference)
    fold_batch_norms(folded)
    gradients = []
    for network in (reference, folded):
        images = torch.rand(1, 3, 80, 80, generator=torch.Generator().manual_seed(4), dtype=torch.float64,
                            requires_grad=True)
        network(images)[0, 7].backward()
        gradients.append(images.grad)
    torch.testing.assert_close(gradients[1], gradients[0], rtol=1e-9, atol=1e-12)


def test_a_network_in_training_mode_is_refused():
    block = torch.nn.Module()
    block.conv, block.bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(block)
    assert fold_batch_norms(block.eval()) == 1 and isinstance(block.bn, torch.nn.Identity)
