"""Fold eval-mode batch norms into the convolutions before them (Inception's ``BasicConv2d`` blocks).

In eval mode a batch norm is a per-channel affine map, so ``bn(conv(x))`` equals one convolution with
weights ``w * g / sqrt(v + eps)`` and bias ``(b - m) * g / sqrt(v + eps) + beta``. Folding it removes
one full pass over every activation map and changes the outputs only by float rounding (the suite bounds the
change by float32's own error against float64; ``benchmarks/image_scoring_throughput.py`` measures the time).
The fold itself is :func:`torch.nn.utils.fusion.fuse_conv_bn_eval`, PyTorch's own.

Both Inception implementations isgame loads (torchvision's and torch-fidelity's) build every convolution
as a ``BasicConv2d`` with a ``conv`` (``nn.Conv2d``) and a ``bn`` (``nn.BatchNorm2d``) applied in that
order, then a ReLU; that convention is what :func:`fold_batch_norms` looks for.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norms(network: nn.Module) -> int:
    """Fold each ``bn`` into the ``conv`` of the same block, in place; return how many were folded.

    ``network`` must be in eval mode (the fold uses the running statistics). A folded block keeps its
    ``bn`` attribute as ``nn.Identity``, so its own ``forward`` runs unchanged. The new weights keep the
    old ``requires_grad``; gradients with respect to the input flow as before.
    """
    if network.training:
        raise ValueError("fold_batch_norms needs a network in eval mode: batch norm in training mode uses batch statistics")
    folded = 0
    for block in network.modules():
        conv, norm = getattr(block, "conv", None), getattr(block, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats:
            block.conv = fuse_conv_bn_eval(conv, norm)
            block.bn = nn.Identity()
            folded += 1
    return folded
