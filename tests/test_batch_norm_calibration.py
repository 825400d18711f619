"""calibrate_batch_norms: each batch norm ends with the statistics of its own input on the batch given."""

from __future__ import annotations

import torch
from torch import nn

from isgame.scoring.classifiers.batch_norm_calibration import calibrate_batch_norms


class StaysInEval(nn.Module):
    """A wrapper whose train() refuses training mode, as torch-fidelity's feature extractor does."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3),
                                  nn.BatchNorm2d(5, momentum=0.3))

    def train(self, mode: bool = True) -> "StaysInEval":
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_each_batch_norm_gets_the_statistics_of_its_own_input():
    torch.manual_seed(0)
    network = StaysInEval().eval().double()
    images = torch.rand((6, 3, 9, 9), dtype=torch.float64) * 5 + 2
    conv1, norm1, relu, conv2, norm2 = network.body
    assert calibrate_batch_norms(network, images) == 2
    with torch.no_grad():
        first = conv1(images)
        # The second batch norm's input comes after the first one normalised with the batch's own statistics.
        standardised = (first - first.mean((0, 2, 3), keepdim=True)) / torch.sqrt(
            first.var((0, 2, 3), unbiased=False, keepdim=True) + norm1.eps)
        second = conv2(relu(standardised * norm1.weight.view(1, -1, 1, 1) + norm1.bias.view(1, -1, 1, 1)))
    for norm, values in ((norm1, first), (norm2, second)):
        torch.testing.assert_close(norm.running_mean, values.mean((0, 2, 3)), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(norm.running_var, values.var((0, 2, 3), unbiased=True), rtol=1e-12, atol=1e-12)
    # Every module is back in its mode, with its own momentum; in eval mode the block nearly standardises this batch
    # (not exactly: eval mode divides by the unbiased variance, training mode by the biased one, 294 values here).
    assert not any(module.training for module in network.modules())
    assert (norm1.momentum, norm2.momentum) == (0.1, 0.3)
    with torch.no_grad():
        out = network(images)
    assert float(out.mean((0, 2, 3)).abs().max()) < 1e-2
    torch.testing.assert_close(out.var((0, 2, 3)), torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-2)


def test_a_forward_function_feeds_the_network():
    torch.manual_seed(1)
    network = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).eval()
    images = torch.rand(4, 1, 6, 6)
    calibrate_batch_norms(network, images, forward=lambda batch: network(batch * 10))
    with torch.no_grad():
        torch.testing.assert_close(network[1].running_mean, network[0](images * 10).mean((0, 2, 3)))
