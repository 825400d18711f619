"""TensorAdam is torch.optim.Adam, bit for bit, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

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


def test_tensor_adam_refuses_a_step_without_a_gradient():
    with pytest.raises(RuntimeError, match="no gradient"):
        TensorAdam(torch.zeros(3, requires_grad=True), lr=0.1).step()


def test_tensor_adam_does_not_import_torch_dynamo():
    program = ("import sys, torch\nfrom isgame.attacks.adam import TensorAdam\n"
               "p = torch.zeros(4, requires_grad=True)\no = TensorAdam(p, lr=0.1)\n"
               "for _ in range(3):\n    o.zero_grad(); (p - 1).pow(2).sum().backward(); o.step()\n"
               "print('torch._dynamo' in sys.modules, float(p[0]) > 0)")
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True"]
