"""Batch-norm statistics set from images, so that a randomly initialised network's outputs depend on its input.

A freshly built Inception v3 (PyTorch's default initialisation; batch norms with running mean 0 and variance 1,
which in eval mode normalise nothing) shrinks the scale of its activations at every convolution. After its 94
convolutions the input hardly shows (seed 0):

* torchvision's network: the logits of four different images differ by 3.7e-9 at most, and the logits are its
  final bias (0.022);
* torch-fidelity's network: its features differ by 1.2e-8, at a scale of 4.5e-7.

Every image then gets the same prediction: IS = 1 and FID ≈ 1e-14. A comparison of two implementations on such a
network checks the final layer and nothing of the resize, the normalisation or the convolutions. Setting each
batch norm's running statistics to the statistics of its own input on a batch of images (the "recalibration"
done after pruning or quantisation) makes every block's output standardised on that batch. The outputs then
depend on the input at unit scale, and the weights stay random: nothing is downloaded or trained.

This is what the test suite and the Inception benchmarks do to the random weights they save; a user without
weights can do the same to try a command on a network that is at least not constant.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def calibrate_batch_norms(network: nn.Module, images: torch.Tensor,
                          forward: Callable[[torch.Tensor], object] | None = None) -> int:
    """Set every ``nn.BatchNorm2d`` of ``network`` to the batch statistics of its input on ``images``, in place.

    ``images`` is one batch in whatever form ``forward`` (default: ``network`` itself) takes. Only the batch
    norms run in training mode during that one forward pass, with a cumulative average, so each one's running
    mean and (unbiased) variance become exactly those of its input on this batch; every module is left in the
    mode it was in. Returns the number of batch norms set. The batch must hold more than one value per
    channel at the smallest feature map (Inception v3 at 299 px: 8 x 8 per image, so two images suffice).
    """
    norms = [module for module in network.modules() if isinstance(module, nn.BatchNorm2d) and module.track_running_stats]
    saved = [(norm.training, norm.momentum) for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: after one batch, the running statistics are that batch's
        norm.training = True  # the module alone, not .train(): some wrappers override train() to stay in eval
    try:
        with torch.no_grad():
            (network if forward is None else forward)(images)
    finally:
        for norm, (training, momentum) in zip(norms, saved):
            norm.training, norm.momentum = training, momentum
    return len(norms)
