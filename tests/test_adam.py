"""TensorAdam is torch.optim.Adam's single-tensor step, bit for bit."""

from __future__ import annotations

import pytest
import torch

from isgame.attacks.adam import TensorAdam


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_adam_iterates_equal_torch_adam(dtype):
    generator = torch.Generator().manual_seed(4)
    target = torch.randn(7, 5, generator=generator, dtype=dtype)
    start = torch.randn(7, 5, generator=generator, dtype=dtype)
    ours, theirs = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    mine, reference = TensorAdam(ours, lr=0.15), torch.optim.Adam([theirs], lr=0.15)
    for _ in range(25):
        for param, optimiser in ((ours, mine), (theirs, reference)):
            optimiser.zero_grad()
            ((param - target) ** 4).sum().backward()  # a non-quadratic loss: the moments differ step to step
            optimiser.step()
        assert torch.equal(ours, theirs)
    assert not torch.equal(ours, start)
