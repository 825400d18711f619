"""How many rows the inflate attack runs through the network at once: a memory budget, not a fixed count.

A forward pass with gradients keeps every activation the backward pass needs until the backward
pass has run; that memory grows with the rows of the chunk and with the input's size (Inception v3
at 299 px keeps ~192 MiB per image, the digits CNN on 8x8 images ~63 KiB). The rule:

    rows = clamp(activation_budget_bytes // bytes_per_row, 1, batch_size)

where ``bytes_per_row`` is measured once, on one row of the attack's own input, as the bytes of
the tensors autograd saves for the backward pass (:func:`saved_activation_bytes_per_row`). The
peak memory of one chunk is then about ``activation_budget_bytes`` plus the network's weights and
the transient buffers of one layer, whatever the input size; the attacked images themselves
(N, C, H, W) are held whole and are not part of the budget.
"""

from __future__ import annotations

import torch

from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.errors import InvalidInputError, parameter

#: 1 GiB of saved activations per chunk: 5 rows of Inception v3 at 299 px, all 1024 rows of the digits CNN.
DEFAULT_ACTIVATION_BUDGET_BYTES = 2**30


def saved_activation_bytes_per_row(classifier: ImageClassifier, model_input_row: torch.Tensor) -> int:
    """Bytes autograd saves for the backward pass of one row (1, C, H, W) of model input; one forward pass.

    Saved weights and buffers are left out (they do not grow with the rows); an activation saved by
    several operations (a ReLU's output, which the next convolution saves too) counts once per save,
    so this errs on the large side.
    """
    if model_input_row.ndim != 4 or model_input_row.shape[0] != 1:
        raise InvalidInputError(f"expected one row of model input (1, C, H, W), got shape {tuple(model_input_row.shape)}")
    fixed = {tensor.untyped_storage().data_ptr() for tensor in (*classifier.parameters(), *classifier.buffers())}
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if tensor.untyped_storage().data_ptr() not in fixed:
            saved += tensor.numel() * tensor.element_size()
        return tensor

    variable = model_input_row.detach().clone().requires_grad_(True)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        classifier.logits_from_model_input(variable)
    return max(saved, 1)


def chunk_rows(bytes_per_row: int, *, activation_budget_bytes: int, batch_size: int) -> int:
    """``clamp(activation_budget_bytes // bytes_per_row, 1, batch_size)``: rows per forward/backward chunk."""
    if activation_budget_bytes < 1:
        raise InvalidInputError(f"{parameter('activation_budget_bytes')} must be >= 1 byte, got {activation_budget_bytes}")
    return int(min(batch_size, max(1, activation_budget_bytes // max(bytes_per_row, 1))))
